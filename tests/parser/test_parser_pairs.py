"""Tests: the parser's pairs path (``EventParser._pairs``), for chunks of `data: value` + blank line pairs.

That path splits a chunk at "<line end><line end>data: " and checks the pieces for stray line ends instead
of splitting every line, so these properties build streams that are nearly such pairs, with everything that
must make the path step aside or carry state correctly: the three line ends, mixed within a stream and
within one separator, a CR or LF inside a value, `data:` without the space or with two, `id:`, `event:`,
`retry:` and comment lines, extra blank lines, a BOM, multi-byte and invalid UTF-8, ASCII-only and
non-ASCII values, and chunk cuts anywhere (inside a separator, after a chunk's final CR, inside the prefix).
Every chunking must give exactly what feeding the stream whole, feeding it one byte at a time and the
independent reference give.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tracemalloc
from itertools import pairwise
from typing import Any

import pytest
from _chunking import feed_chunks, feed_until_error
from _reference import reference_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_toolkit import Event, EventParser
from sse_toolkit.parser import _parser

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_EOLS = [b"\r\n", b"\n", b"\r"]
# Value characters: ASCII (JSON-like), every UTF-8 length, a colon and spaces; never a line end here.
_VALUE_CHARS = st.sampled_from(
    ["a", "{", '"', ":", " ", "0", "\u00e9", "\u0142", "\u20ac", "\u6771", "\U0001f642", "\ufeff", "\0"]
)
_ASCII_CHARS = st.sampled_from(["a", "{", '"', ":", " ", "0", "}", ","])
_STRAY = [b"\r", b"\n", b"\r\n"]
_INVALID = [b"\xff", b"\x80", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80"]
_ODD_LINES = [
    b"id: 7",
    b"id: \x00",
    b"event: update",
    b"retry: 1500",
    b": keep-alive",
    b"",
    b"data:tight",
    b"data:  two spaces",
    b"data",
    b"dat",
    b"foo: bar",
]


@st.composite
def _value(draw: st.DrawFn, ascii_only: bool) -> bytes:
    chars = _ASCII_CHARS if ascii_only else st.one_of(_VALUE_CHARS, _ASCII_CHARS)
    raw = "".join(draw(st.lists(chars, max_size=30))).encode()
    roll = draw(st.integers(0, 19))
    if roll == 0:  # a stray line end inside the value: the line ends there
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from(_STRAY)) + raw[at:]
    elif roll == 1 and not ascii_only:  # invalid UTF-8, or a sequence the line end cuts short
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from(_INVALID)) + raw[at:]
    return raw


@st.composite
def pair_streams(draw: st.DrawFn) -> bytes:
    """`data: value` + blank line pairs, nearly always with one line end, with odd lines now and then."""
    ascii_only = draw(st.booleans())
    eol = draw(st.sampled_from(_EOLS))
    parts = [b"\xef\xbb\xbf"] if draw(st.integers(0, 5)) == 0 else []
    if draw(st.integers(0, 4)) == 0:  # start inside a block: an id or an event type already read
        parts.append(draw(st.sampled_from([b"id: first", b"event: first", b"retry: 9"])) + eol)
    for _ in range(draw(st.integers(0, 14))):
        roll = draw(st.integers(0, 29))
        if roll == 0:
            parts.append(draw(st.sampled_from(_ODD_LINES)) + draw(st.sampled_from(_EOLS)))
            continue
        # Mostly the stream's own line end; sometimes another one for the line, the blank line, or both.
        line_end = eol if roll > 2 else draw(st.sampled_from(_EOLS))
        blank_end = eol if roll != 2 else draw(st.sampled_from(_EOLS))
        parts.append(b"data: " + draw(_value(ascii_only)) + line_end + blank_end)
    ending = draw(st.integers(0, 4))
    if ending == 1:  # an unfinished last line
        parts.append(b"data: " + draw(_value(ascii_only)))
    elif ending == 2:  # a data line whose blank line never comes
        parts.append(b"data: " + draw(_value(ascii_only)) + eol)
    return b"".join(parts)


@st.composite
def cuts(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at hypothesis-chosen places (empty chunks possible), sometimes also right after every CR
    (where a CRLF's LF must not end a second line) or every LF."""
    points = draw(st.lists(st.integers(0, len(data)), max_size=10))
    after = draw(st.sampled_from([None, None, 13, 10]))
    if after is not None:
        points += [index + 1 for index, byte in enumerate(data) if byte == after]
    points.sort()
    return [data[a:b] for a, b in pairwise([0, *points, len(data)])]


@_SETTINGS
@given(st.data())
def test_pair_streams_give_the_same_result_in_every_chunking(data: st.DataObject) -> None:
    stream = data.draw(pair_streams(), label="stream")
    chunks = data.draw(cuts(stream), label="chunks")
    whole = feed_chunks([stream])
    assert feed_chunks(chunks) == whole
    assert feed_chunks([stream[i : i + 1] for i in range(len(stream))]) == whole
    assert tuple(whole) == reference_parse(stream)


@_SETTINGS
@given(st.data())
def test_pair_streams_near_the_size_limit_fail_or_pass_the_same_in_every_chunking(
    data: st.DataObject,
) -> None:
    stream = data.draw(pair_streams(), label="stream")
    chunks = data.draw(cuts(stream), label="chunks")
    limit = data.draw(st.integers(1, 80), label="max_event_size")
    events, exc, parser = feed_until_error(chunks, limit)
    whole_events, whole_exc, whole_parser = feed_until_error([stream], limit)
    assert events == whole_events
    assert (exc is None, exc and exc.offset) == (whole_exc is None, whole_exc and whole_exc.offset)
    if exc is None:
        assert (parser.last_event_id, parser.retry) == (whole_parser.last_event_id, whole_parser.retry)


# -- the path is taken where it should be (so that the properties above exercise it) -------------------------


class _Counting(EventParser):
    """Counts the chunks the pairs path decoded (returned events for)."""

    __slots__ = ("taken",)

    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def _pairs(self, *args: Any) -> Any:
        events = super()._pairs(*args)
        self.taken += events is not None
        return events


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"])
@pytest.mark.parametrize("text", ['ascii {"a": 1}', "zaż\u00f3łć \u6771\u4eac \U0001f642"])
def test_the_pairs_path_decodes_nearly_every_chunk_of_a_pairs_stream(eol: bytes, text: str) -> None:
    stream = b"".join(b"data: " + f"{i} {text}".encode() + eol + eol for i in range(400))
    chunks = [stream[i : i + 97] for i in range(0, len(stream), 97)]
    parser = _Counting()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    assert [event.data for event in events] == [f"{i} {text}" for i in range(400)]
    # The chunks cut inside a separator, or right after a data line, take the other paths.
    assert parser.taken >= len(chunks) * 2 // 3


def test_the_pairs_path_carries_the_cr_that_ends_a_chunk() -> None:
    # The chunk ends with the blank line's CR: an LF that starts the next chunk ends no line.
    parser = _Counting()
    assert [event.data for event in parser.feed(b"data: a\r\rdata: b\r\r")] == ["a", "b"]
    assert parser.taken == 1
    assert [event.data for event in parser.feed(b"\ndata: c\r\r")] == ["c"]
    assert parser.taken == 2


@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\r\n\r\ndata: b\nc\r\n\r\n",  # a lone LF inside a value ends its line
        b"data: a\r\n\r\ndata: b\rc\r\n\r\n",  # and so does a lone CR
        b"data: a\n\ndata: b\r\n\n",  # a CRLF in an LF stream
        b"data: a\r\n\r\ndata:b\r\n\r\n",  # no space after the colon
        b"data: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n",
        b"data: a\r\n\r\n\r\ndata: b\r\n\r\n",  # an extra blank line
        b"data: a\r\n\r\ndata: b\r\n",  # the last blank line has not come
        b"data: \xe2\x82\r\n\r\ndata: \xff\r\n\r\n",  # invalid UTF-8: U+FFFD
    ],
)
def test_streams_that_are_almost_pairs_give_the_reference_result_in_every_chunking(stream: bytes) -> None:
    expected = reference_parse(stream)
    for cut in range(len(stream) + 1):
        assert tuple(feed_chunks([stream[:cut], stream[cut:]])) == expected, cut


# -- the C twin of the pairs path (sse_toolkit/parser/_speedups.c) -------------------------------------------

_SEPARATORS = [b"\r\r", b"\n\n", b"\r\n\r\n"]
try:
    from sse_toolkit.parser import _speedups
except ImportError:  # not built: no C compiler at install time
    _speedups = None  # type: ignore[assignment]

needs_speedups = pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")


@st.composite
def pair_inputs(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, str]:
    """``(partial, chunk, sep, last_id)`` as the parser hands them to the pairs path, and beyond: a stream's
    unfinished first line (no line end) and a cut of the stream after it, or random SSE-ish bytes, with any
    separator (not only the one the chunk's line ends would choose)."""
    if draw(st.integers(0, 3)):
        stream = draw(pair_streams())
        line_end = min([i for i in (stream.find(b"\r"), stream.find(b"\n")) if i >= 0] or [len(stream)])
        start = draw(st.integers(0, line_end))
        stop = draw(st.integers(start, len(stream)))
        partial, chunk = stream[:start], stream[start:stop]
    else:
        tokens = [b"data: ", b"data:", b"\r", b"\n", b"\r\n", b"a", b"\xff", b"\xc3\xa9", b" "]
        alphabet = st.sampled_from(tokens)
        partial = b"".join(draw(st.lists(st.sampled_from([b"data: ", b"da", b"x", b"\xe2\x82"]), max_size=3)))
        chunk = b"".join(draw(st.lists(alphabet, max_size=40)))
    sep = draw(st.sampled_from(_SEPARATORS))
    last_id = draw(st.sampled_from(["", "7", "z\u00e9\U0001f642"]))
    return partial, chunk, sep, last_id


@needs_speedups
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair_inputs())
def test_the_c_pairs_path_returns_exactly_what_the_python_reference_returns(
    case: tuple[bytes, bytes, bytes, str],
) -> None:
    partial, chunk, sep, last_id = case
    expected = _parser._pairs_reference(partial, chunk, sep, last_id)
    got = _speedups.pairs(partial, chunk, sep, last_id)
    assert got == expected
    if got is not None:
        assert all(type(event) is Event for event in got[0])
        assert type(got[1]) is bytes


@needs_speedups
def test_the_c_pairs_path_builds_real_events_and_keeps_the_rest() -> None:
    events, rest = _speedups.pairs(b"dat", b'a: "x"\n\ndata: \xff\n\ndata: par', b"\n\n", "4")
    assert events == [Event("message", '"x"', "4", None), Event("message", "\ufffd", "4", None)]
    assert repr(events[0]) == "Event(data='\"x\"', id='4')" and events[0].json() == "x"
    assert rest == b"data: par"
    assert _speedups.pairs(b"", b"id: 1\n\n", b"\n\n", "") is None


@needs_speedups
@pytest.mark.parametrize(
    "args",
    [
        ("", b"", b"\n\n", ""),
        (b"", bytearray(b"data: a\n\n"), b"\n\n", ""),
        (b"", b"data: a\n\n", b"\n\n", b""),
        (b"", b"data: a\n\n", b"\n\n", "", Event),  # the event type is fixed: Event
        (b"", b"data: a\n\n", b"", ""),
        (b"", b"data: a\n\n", b"\n", ""),
        (b"", b"data: a\n\n", b"\n\r", ""),
        (b"data: a\n", b"data: a\n\n", b"\n\n", ""),  # the unfinished line holds no line end
        (b"", b"data: a\n\n"),
    ],
)
def test_the_c_pairs_path_rejects_arguments_outside_its_contract(args: tuple[Any, ...]) -> None:
    with pytest.raises((TypeError, ValueError)):
        _speedups.pairs(*args)


@needs_speedups
def test_the_c_pairs_path_builds_nothing_for_a_chunk_that_is_not_pairs_in_the_end() -> None:
    # A stray line end after many pairs: no event is decoded (the shape is checked first), the answer None.
    chunk = b"data: " + b"\r\n\r\ndata: ".join([b"x" * 100] * 5000) + b"\r\n\r\n\n"
    tracemalloc.start()
    try:
        assert _speedups.pairs(b"", chunk, b"\r\n\r\n", "") is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # 5,000 events of 100 characters decoded would peak near a megabyte


@needs_speedups
def test_the_c_pairs_path_leaks_nothing() -> None:
    chunk = b"".join(b"data: " + b"\xc5\xbc" * 40 + b"\r\n\r\n" for _ in range(8)) + b"data: cut"
    tracemalloc.start()
    try:
        for _ in range(200):
            _speedups.pairs(b"data: ", chunk[6:], b"\r\n\r\n", "")
            _speedups.pairs(b"dat", chunk[3:] + b"\n", b"\r\n\r\n", "")  # not pairs: the partial copy freed
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            _speedups.pairs(b"data: ", chunk[6:], b"\r\n\r\n", "")
            _speedups.pairs(b"dat", chunk[3:] + b"\n", b"\r\n\r\n", "")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024  # 5,000 rounds of 8 events each would hold megabytes if any were kept


def test_the_c_extension_is_used_wherever_a_c_compiler_built_it() -> None:
    """A fresh ``pip install -e .`` on a machine with a C compiler builds it (the CI machine has one)."""
    if os.environ.get("SSE_TOOLKIT_PURE_PYTHON"):
        assert not _parser.SPEEDUPS
        return
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the package runs pure Python")
    assert _speedups is not None and _parser.SPEEDUPS


def test_sse_toolkit_pure_python_picks_the_python_reference_with_the_same_events() -> None:
    stream = b"".join(b"data: " + str(i).encode() + b"\r\n\r\n" for i in range(50)) + b"data: last\n\n"
    code = (
        "import sys; from sse_toolkit.parser import _parser, iter_events; "
        "print(_parser.SPEEDUPS, _parser._split_pairs.__name__); "
        "data = sys.stdin.buffer.read(); "
        "print([e.data for e in iter_events(data[i:i + 100] for i in range(0, len(data), 100))])"
    )
    env = {**os.environ, "SSE_TOOLKIT_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=stream, capture_output=True, check=True, env=env
    ).stdout.decode()
    assert out.splitlines() == [
        "False _pairs_reference",
        repr([str(i) for i in range(50)] + ["last"]),
    ]


@needs_speedups
def test_the_c_pairs_path_refuses_an_event_type_it_cannot_build_like_a_tuple() -> None:
    # A struct sequence has a tuple's sizes but frees all its declared fields: the extension must not load
    # with one as Event (the parser then runs its Python path), where it would build events that crash.
    code = (
        "import os, sys, types\n"
        "fake = types.ModuleType('sse_toolkit.parser._event')\n"
        "fake.Event, fake.__all__ = os.stat_result, ['Event']\n"
        "sys.modules['sse_toolkit.parser._event'] = fake\n"
        "from sse_toolkit.parser import _parser\n"
        "print(_parser.SPEEDUPS)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "SSE_TOOLKIT_PURE_PYTHON"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
