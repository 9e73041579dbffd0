"""Tests: our port of web-platform-tests ``eventsource/format-*`` (and ``event-data``) as byte vectors.

Each WPT test points an ``EventSource`` at a tiny server script; the vectors below are the exact bodies those
scripts send (``resources/message.py`` appends ``"\\n\\n"`` unless ``newline=none`` and then always one more
``"\\n"``), and the expectations are the WPT assertions restated for one connection: the events in order,
plus ``last_event_id`` / ``retry`` where the WPT case is about them. Every vector is fed whole, byte by byte
and in random splits (``_chunking.feed_all_ways``) and also checked against ``_reference.reference_parse``.

Not ported, because they test the browser rather than the parser: ``format-mime-*`` (Content-Type checks)
and the timing half of ``format-field-retry*`` (how long the browser waits: here we check the value).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from _chunking import feed_all_ways
from _reference import reference_parse

from sse_toolkit import Event

LONG = "x" * 2048  # format-comments: "cannot make the string too long; causes timeout"


def _message_py(message: bytes, newline: bool = True) -> bytes:
    """The body WPT's resources/message.py sends for ``?message=...`` (``&newline=none`` -> newline=False)."""
    return message + (b"\n\n" if newline else b"") + b"\n"


def _last_event_id_py(idvalue: bytes = "\u2026".encode()) -> bytes:
    """The first body of WPT's resources/last-event-id.py (no Last-Event-ID request header yet)."""
    return b"id: " + idvalue + b"\nretry: 200\ndata: hello\n\n"


@dataclass
class Case:
    wpt: str  # the WPT file (and sub-test) this vector comes from
    stream: bytes
    events: list[Event]
    last_event_id: str | None = None  # checked when not None
    retry: int | str | None = field(default="unchecked")


CASES = [
    Case(
        "format-bom",  # one leading BOM is ignored; a BOM later on is part of the field name "\ufeffdata"
        _message_py(b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3"),
        [Event(data="1"), Event(data="3")],
    ),
    Case(
        "format-bom-2",  # only ONE leading BOM is ignored: the second makes "\ufeffdata:1" an unknown field
        _message_py(b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3"),
        [Event(data="2"), Event(data="3")],
    ),
    Case(
        "format-comments",  # comments (with NUL, CR, CRLF, long ones) between data lines change nothing
        _message_py(
            f"data:1\r:\0\n:\r\ndata:2\n:{LONG}\rdata:3\n:data:fail\r:{LONG}\ndata:4\n".encode(),
            newline=False,
        ),
        [Event(data="1\n2\n3\n4")],
    ),
    Case(
        "format-data-before-final-empty-line",  # the unfinished last block is dropped, and its id too
        _message_py(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", newline=False),
        [Event(data="test1", retry=1000)],
        last_event_id="",
        retry=1000,
    ),
    Case(
        "format-field-data",  # "data:" and "data" both append an empty line
        _message_py(b"data:\n\ndata\ndata\n\ndata:test"),
        [Event(data=""), Event(data="\n"), Event(data="test")],
    ),
    Case(
        "format-field-event",
        _message_py(b"event:test\ndata:x\n\ndata:x"),
        [Event(event="test", data="x"), Event(data="x")],
    ),
    Case(
        "format-field-event-empty",  # "event: " has an empty value: the type stays "message"
        _message_py(b"event: \ndata:data"),
        [Event(data="data")],
    ),
    Case(
        "format-field-id",  # first connection of last-event-id.py: id "…" (U+2026, non-ASCII)
        _last_event_id_py(),
        [Event(data="hello", id="\u2026", retry=200)],
        last_event_id="\u2026",
        retry=200,
    ),
    Case(
        "format-field-id-3 persists",
        b"id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n",
        [Event(data="1", id="1"), Event(data="2", id="1"), Event(data="3", id="2"), Event(data="4", id="2")],
        last_event_id="2",
    ),
    Case(
        "format-field-id-3 resets",  # "id:" (empty value) resets the last event ID
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [Event(data="1", id="1"), Event(data="2"), Event(data="3")],
        last_event_id="",
    ),
    Case(
        "format-field-id-3 resets (id without colon)",  # "id" alone is the field with an empty value
        b"id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n",
        [Event(data="1", id="1"), Event(data="2"), Event(data="3")],
        last_event_id="",
    ),
    *(
        Case(
            f"format-field-id-null {idvalue!r}",  # an id containing NUL is ignored
            _last_event_id_py(idvalue),
            [Event(data="hello", retry=200)],
            last_event_id="",
        )
        for idvalue in (b"\0\0", b"x\0", b"\0x", b"x\0x", b" \0")
    ),
    Case(
        "format-field-parsing",  # field names are case-sensitive, exact, and NUL is just a character
        _message_py(
            b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n"
            b" data:32\ndata:4\n",
            newline=False,
        ),
        [Event(data="\0\n 2\n1\n3\n\n4")],
    ),
    Case(
        "format-field-retry",  # "03000" is 3000 (decimal, not octal)
        _message_py(b"retry:03000\ndata:x"),
        [Event(data="x", retry=3000)],
        retry=3000,
    ),
    Case(
        "format-field-retry-bogus",  # "1000x" is not all digits: ignored, 3000 stays
        _message_py(b"retry:3000\nretry:1000x\ndata:x"),
        [Event(data="x", retry=3000)],
        retry=3000,
    ),
    Case(
        "format-field-retry-empty",  # "retry" without a value is ignored and breaks nothing
        _message_py(b"retry\ndata:test"),
        [Event(data="test")],
        retry=None,
    ),
    Case(
        "format-field-unknown",  # unknown fields, a line starting with a space, text without colon, comments
        _message_py(b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test"),
        [Event(data="test\n\ntest")],
    ),
    Case(
        "format-leading-space",  # only one SPACE is stripped, a TAB is kept; a lone CR ends a line
        _message_py(b"data:\ttest\rdata: \ndata:test"),
        [Event(data="\ttest\n\ntest")],
    ),
    Case(
        "format-newlines",  # CRLF, LF and a final CR + the script's LF (one CRLF) as line ends
        _message_py(b"data:test\r\ndata\ndata:test\r\n\r", newline=False),
        [Event(data="test\n\ntest")],
    ),
    Case(
        "format-null-character",
        _message_py(b"data:\0\n\n"),
        [Event(data="\0")],
    ),
    Case(
        "format-utf-8",  # always UTF-8, whatever charset the Content-Type claims (windows-1252 there)
        _message_py(b"data:ok\xe2\x80\xa6"),
        [Event(data="ok\u2026")],
    ),
    Case(
        "event-data",  # one round of resources/message2.py
        b"data:msg\ndata: msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData:data\n\ndata\n\ndata:end\n\n",
        [Event(data="msg\nmsg"), Event(data=""), Event(data="end")],
    ),
    Case(
        "eventsource-onmessage",  # message.py's default body
        _message_py(b"data: data"),
        [Event(data="data")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.wpt for case in CASES])
def test_wpt_vector_gives_the_browser_events_in_every_chunking(case: Case) -> None:
    outcome = feed_all_ways(case.stream)
    assert outcome.events == case.events
    if case.last_event_id is not None:
        assert outcome.last_event_id == case.last_event_id
    if case.retry != "unchecked":
        assert outcome.retry == case.retry


@pytest.mark.parametrize("case", CASES, ids=[case.wpt for case in CASES])
def test_wpt_vector_agrees_with_the_reference(case: Case) -> None:
    # Cross-checks the reference too: it must pass the same WPT expectations before it may judge the parser.
    events, last_event_id, retry = reference_parse(case.stream)
    assert events == case.events
    assert feed_all_ways(case.stream, seeds=2) == (events, last_event_id, retry)


@pytest.mark.parametrize("connections", [2, 3], ids=["format-field-id", "format-field-id-2"])
def test_wpt_field_id_reconnection_sends_and_echoes_the_last_event_id(connections: int) -> None:
    # The browser reconnects with Last-Event-ID: parser.last_event_id of the previous connection, and
    # last-event-id.py then echoes it as data. (Keeping lastEventId across connections is the client's job.)
    first = feed_all_ways(_last_event_id_py())
    assert first.events == [Event(data="hello", id="\u2026", retry=200)]
    header = first.last_event_id
    for _ in range(connections - 1):
        again = feed_all_ways(b"data: " + header.encode() + b"\n\n")
        assert again.events == [Event(data="\u2026")]
        assert again.last_event_id == ""  # this body has no id: a new parser keeps none
