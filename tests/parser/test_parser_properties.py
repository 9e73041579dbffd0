"""Tests: hypothesis properties of the parser.

1. Any split of any stream into chunks gives the same events, ``last_event_id`` and ``retry`` as feeding it
   whole (streams of random fields, comments and blank lines with mixed CR/LF/CRLF, an optional BOM,
   multi-byte UTF-8 up to 4 bytes cut anywhere, invalid bytes, long lines).
2. The parser equals the independent ``_reference`` on arbitrary byte strings and on structured streams.
3. ``iter_events`` and ``aiter_events`` (asyncio) equal ``parse``.
4. Fuzz invariant (h11 fuzz/afl-server.py): with a small ``max_event_size`` only ``SSEProtocolError`` ever
   escapes, and when nothing is raised the result is still the reference's.
5. A huge line (an inline image's size, any field, multi-byte and invalid UTF-8 cut anywhere) fed in chunks
   of any mix of sizes, tiny to larger than a socket read, gives the same result as feeding it whole, also
   under a ``max_event_size`` just around its length.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from itertools import cycle, pairwise

from _chunking import feed_chunks, feed_until_error
from _reference import reference_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_toolkit import Event, aiter_events, iter_events, parse

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that exercise every UTF-8 length, NUL, BOM, colon and space, but never a line end.
_SPECIAL = st.sampled_from(
    ["a", "b", "0", "7", " ", ":", "\0", "\t", "\u00e9", "\u20ac", "\ufeff", "\U0001f600"]
)
_TEXT = st.lists(
    st.one_of(_SPECIAL, _SPECIAL, st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")),
    max_size=12,
).map("".join)
_EOL = st.sampled_from([b"\n", b"\r", b"\r\n"])
_INVALID = st.sampled_from([b"\xff", b"\x80", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xed\xa0\x80"])


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            ["data", "data", "event", "id", "retry", "comment", "unknown", "blank", "blank", "bare"]
        )
    )
    if kind == "blank":
        return b""
    if kind == "comment":
        return b":" + draw(_TEXT).encode()
    if kind == "bare":
        return draw(st.sampled_from([b"data", b"event", b"id", b"retry", b"foo"]))
    if kind == "retry":
        value = draw(
            st.sampled_from(["0", "15", "007", "-1", "+1", "1_0", "1.5", "", " 3", "\u0661"]) | _TEXT
        )
    elif kind == "unknown":
        return draw(st.sampled_from([b"foo", b"Data", b"data "])) + b":" + draw(_TEXT).encode()
    else:
        value = draw(_TEXT)
    raw = value.encode()
    if draw(st.integers(0, 9)) == 0:  # sometimes invalid UTF-8 inside the value
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(_INVALID) + raw[at:]
    if draw(st.integers(0, 19)) == 0:  # sometimes a long line
        raw += b"x" * draw(st.integers(1000, 5000))
    separator = draw(st.sampled_from([b":", b": ", b":  "]))
    return kind.encode() + separator + raw


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """A plausible event stream: random lines, each with its own CR/LF/CRLF, optional BOM, maybe no end."""
    parts = [b"\xef\xbb\xbf"] if draw(st.booleans()) else []
    for line in draw(st.lists(_line(), max_size=25)):
        parts.append(line + draw(_EOL))
    if draw(st.booleans()):
        parts.append(draw(_line()))  # an unterminated last line
    return b"".join(parts)


_ANY_STREAM = (
    streams() | st.binary(max_size=300) | st.binary(max_size=60).map(lambda b: b.replace(b"\x00", b"\n"))
)


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at hypothesis-chosen places (possibly with empty chunks)."""
    if not data:
        return [b""] if draw(st.booleans()) else []
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


@FAST
@given(st.data())
def test_any_split_gives_the_same_result_as_feeding_whole(data: st.DataObject) -> None:
    stream = data.draw(_ANY_STREAM, label="stream")
    chunks = data.draw(split(stream), label="chunks")
    assert feed_chunks(chunks) == feed_chunks([stream])


@FAST
@given(streams())
def test_byte_by_byte_gives_the_same_result_as_feeding_whole(stream: bytes) -> None:
    assert feed_chunks([stream[i : i + 1] for i in range(len(stream))]) == feed_chunks([stream])


@FAST
@given(st.binary(max_size=400))
def test_parser_equals_reference_on_arbitrary_bytes(stream: bytes) -> None:
    assert feed_chunks([stream]) == reference_parse(stream)


@FAST
@given(st.data())
def test_parser_equals_reference_on_structured_streams_in_any_split(data: st.DataObject) -> None:
    stream = data.draw(streams(), label="stream")
    chunks = data.draw(split(stream), label="chunks")
    assert feed_chunks(chunks) == reference_parse(stream)


async def _agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def _collect(chunks: list[bytes]) -> list[Event]:
    return [event async for event in aiter_events(_agen(chunks))]


@settings(FAST, max_examples=60)
@given(st.data())
def test_iter_events_and_aiter_events_equal_parse(data: st.DataObject) -> None:
    stream = data.draw(_ANY_STREAM, label="stream")
    chunks = data.draw(split(stream), label="chunks")
    expected = parse(stream)
    assert list(iter_events(iter(chunks))) == expected
    assert asyncio.run(_collect(chunks)) == expected


@FAST
@given(st.data())
def test_only_protocol_errors_escape_under_a_small_limit(data: st.DataObject) -> None:
    stream = data.draw(_ANY_STREAM, label="stream")
    limit = data.draw(st.integers(1, 64), label="max_event_size")
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        events, exc, parser = feed_until_error(chunks, limit)
        if exc is not None:
            assert isinstance(exc.offset, int) and 0 <= exc.offset <= len(stream)
            assert str(exc.offset) in str(exc)
            # What came out before the error is a prefix of what an unlimited parser gives.
            assert events == reference_parse(stream)[0][: len(events)]
        else:
            assert (events, parser.last_event_id, parser.retry) == reference_parse(stream)


# Chunk sizes around the parser's thresholds: tiny reads, about a kilobyte, a socket read, more.
_CHUNK_SIZES = st.sampled_from([1, 2, 5, 511, 1023, 1024, 1025, 4096, 65536])
# Bytes for a huge line: ASCII, NUL, a colon and a space, every UTF-8 length, and invalid or cut sequences.
_HUGE_ALPHABET = [b"a", b"Z", b"0", b"+", b"/", b"=", b":", b" ", b"\x00", b"\xc3\xa9", b"\xe2\x82\xac"]
_HUGE_ALPHABET += [b"\xf0\x9f\x98\x80", b"\xff", b"\xe2\x82"]


@st.composite
def _huge_line_stream(draw: st.DrawFn) -> tuple[bytes, int]:
    """An event, one huge line (any field, a random body), its end, and one more event; the line's length."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    body = b"".join(rng.choices(_HUGE_ALPHABET, k=draw(st.integers(2_000, 150_000))))
    line = draw(st.sampled_from([b"data: ", b"data:", b"event: ", b"id: ", b"retry: ", b":", b""])) + body
    eol = draw(_EOL)
    return b"data: before\r\n\r\n" + line + eol + eol + b"data: after\n\n", len(line)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_huge_line_in_chunks_of_any_sizes_gives_the_same_result_as_whole(data: st.DataObject) -> None:
    stream, line_length = data.draw(_huge_line_stream(), label="stream")
    sizes = cycle(data.draw(st.lists(_CHUNK_SIZES, min_size=1, max_size=6), label="chunk sizes"))
    chunks = []
    position = 0
    while position < len(stream):
        size = next(sizes)
        chunks.append(stream[position : position + size])
        position += size
    assert feed_chunks(chunks) == feed_chunks([stream])
    limit = line_length + data.draw(st.integers(-2, 2), label="max_event_size - line length")
    events, exc, _ = feed_until_error(chunks, limit)
    whole_events, whole_exc, _ = feed_until_error([stream], limit)
    assert events == whole_events
    assert (exc is None, exc and exc.offset) == (whole_exc is None, whole_exc and whole_exc.offset)
