"""Tests: the parser's size limit (``max_event_size``), its error, and memory/time bounds.

The limit is tested the way h11's ``test_max_incomplete_event_size_countermeasure`` does: an endless field,
a limit just above its size (passes) and just below (raises). Memory is measured with tracemalloc (a memory
test, not a timing test). Linearity is shown without timing: a 1 MiB line fed one byte at a time completes
and gives the right event (quadratic joining would take minutes).
"""

from __future__ import annotations

import tracemalloc

import pytest
from _chunking import chunkings, feed_all_ways, feed_until_error

from sse_toolkit import DEFAULT_MAX_EVENT_SIZE, Event, EventParser, SSEError, SSEProtocolError

PREFIX = b"data: a\n\n"  # one complete event before the trouble, so offsets are not 0


# --- an endless field (h11 style) --------------------------------------------------------------------------


def _endless_field(size: int, step: int = 100) -> list[bytes]:
    field = b"data: " + b"x" * (size - 6)
    return [field[i : i + step] for i in range(0, len(field), step)]


def test_endless_field_just_under_the_limit_is_kept() -> None:
    parser = EventParser(max_event_size=5000)
    assert parser.feed(PREFIX) == [Event(data="a")]
    for chunk in _endless_field(5000):
        assert parser.feed(chunk) == []  # the whole 5000-byte line is pending, no error


def test_endless_field_just_over_the_limit_raises_with_its_offset() -> None:
    parser = EventParser(max_event_size=4999)
    assert parser.feed(PREFIX) == [Event(data="a")]
    chunks = _endless_field(5000)
    for chunk in chunks[:-1]:
        assert parser.feed(chunk) == []
    with pytest.raises(SSEProtocolError) as info:
        parser.feed(chunks[-1])
    assert info.value.offset == len(PREFIX)
    assert f"offset {len(PREFIX)}" in str(info.value)
    assert "max_event_size" in str(info.value)
    assert isinstance(info.value, SSEError)


def test_offsets_count_the_raw_bytes_including_a_bom() -> None:
    _events, exc, _ = feed_until_error([b"\xef\xbb\xbf" + b"data: " + b"x" * 100 + b"\n"], limit=50)
    assert exc is not None and exc.offset == 3


# --- a complete over-long line ---------------------------------------------------------------------------


LINE_100 = b"data: " + b"x" * 94  # a 100-byte line


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_line_exactly_at_the_limit_passes_in_every_chunking(eol: bytes) -> None:
    stream = PREFIX + LINE_100 + eol + eol
    assert feed_all_ways(stream, max_event_size=100).events == [Event(data="a"), Event(data="x" * 94)]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_line_one_byte_over_the_limit_raises_at_its_offset_in_every_chunking(eol: bytes) -> None:
    stream = PREFIX + LINE_100 + eol + eol + b"data: later\n\n"
    for name, chunks in chunkings(stream):
        events, exc, _ = feed_until_error(chunks, limit=99)
        assert exc is not None, name
        assert exc.offset == len(PREFIX), name
        assert f"offset {len(PREFIX)}" in str(exc), name
        assert events == [Event(data="a")], name  # nothing parsed before the error is lost


def test_too_long_complete_line_inside_one_chunk_keeps_the_events_before_it() -> None:
    parser = EventParser(max_event_size=99)
    with pytest.raises(SSEProtocolError) as info:
        parser.feed(PREFIX + b"data: b\n\n" + LINE_100 + b"\n\n")
    assert info.value.events == [Event(data="a"), Event(data="b")]
    assert info.value.offset == 2 * len(PREFIX)


def test_too_long_unterminated_rest_inside_one_chunk_keeps_the_events_before_it() -> None:
    parser = EventParser(max_event_size=100)
    with pytest.raises(SSEProtocolError) as info:
        parser.feed(PREFIX + b"x" * 200)
    assert info.value.offset == len(PREFIX)
    assert info.value.events == [Event(data="a")]


def test_first_limit_violation_is_reported_the_same_in_every_chunking() -> None:
    stream = b"data: aaaaa\ndata: bbbbb\n" + b"x" * 30
    offsets = {}
    for name, chunks in chunkings(stream):
        _events, exc, _ = feed_until_error(chunks, limit=11)  # line 1 fits; lines 1+2 make 12 data characters
        assert exc is not None, name
        offsets[name] = exc.offset
    assert set(offsets.values()) == {12}, offsets


# --- many small data lines ----------------------------------------------------------------------------------


def test_data_of_many_small_lines_up_to_the_limit_passes() -> None:
    # Each "data: abcd" adds 4 characters plus the joining LF: 100 lines collect exactly 500.
    stream = b"data: abcd\n" * 100 + b"\n"
    assert feed_all_ways(stream, max_event_size=500).events == [Event(data="\n".join(["abcd"] * 100))]


def test_data_of_many_small_lines_over_the_limit_raises_at_the_crossing_line() -> None:
    stream = PREFIX + b"data: abcd\n" * 200 + b"\n"
    crossing = len(PREFIX) + 100 * len(b"data: abcd\n")  # the 101st line takes the data past 500
    for name, chunks in chunkings(stream):
        events, exc, _ = feed_until_error(chunks, limit=500)
        assert exc is not None, name
        assert exc.offset == crossing, name
        assert str(crossing) in str(exc), name
        assert events == [Event(data="a")], name


def test_default_limit_is_generous_and_used_by_default() -> None:
    assert EventParser().max_event_size == DEFAULT_MAX_EVENT_SIZE >= 16 * 1024 * 1024


# --- memory and time ----------------------------------------------------------------------------------------


def test_memory_stays_bounded_over_a_50_mb_stream_of_normal_events() -> None:
    event = b"id: 123456\nevent: update\ndata: " + b"y" * 900 + b"\n\n"
    block = event * (1024 * 1024 // len(event) + 1)
    chunks = [block[i : i + 65536] for i in range(0, len(block), 65536)]  # splits land mid-event
    repeats = 50 * 1024 * 1024 // len(block) + 1
    parser = EventParser()
    count = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for _ in range(repeats):
            for chunk in chunks:
                count += len(parser.feed(chunk))  # the caller drops the events, as a streaming consumer does
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == repeats * (len(block) // len(event))
    assert repeats * len(block) >= 50 * 1024 * 1024
    assert peak < 4 * 1024 * 1024, f"peak traced memory {peak} bytes"


def test_memory_of_an_endless_line_is_bounded_by_the_limit_not_the_stream() -> None:
    limit = 1024 * 1024
    chunk = b"x" * 65536
    parser = EventParser(max_event_size=limit)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(SSEProtocolError) as info:
            for _ in range(50 * 16):  # up to 50 MiB: the error must come after about 1 MiB
                parser.feed(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.offset == 0
    assert peak < 3 * limit, f"peak traced memory {peak} bytes"


def test_one_mib_line_fed_one_byte_at_a_time_completes() -> None:
    # Linear-time check without a clock: a quadratic join would need ~5*10^11 byte copies here.
    stream = b"data: " + b"x" * (1024 * 1024) + b"\n\n"
    parser = EventParser()
    events: list[Event] = []
    for index in range(len(stream)):
        events.extend(parser.feed(stream[index : index + 1]))
    assert events == [Event(data="x" * (1024 * 1024))]


@pytest.mark.slow
def test_an_unfinished_line_in_tiny_chunks_costs_about_its_own_size_in_memory() -> None:
    import tracemalloc

    line = b"x" * (1024 * 1024)
    parser = EventParser()
    tracemalloc.start()
    try:
        for i in range(0, len(line), 2):  # 2-byte reads: as a list of fragments this would cost ~40 MiB
            parser.feed(line[i : i + 2])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(line)
    assert parser.feed(b"\n\n") == []  # a field named xxx…: ignored, and nothing is dispatched


def test_an_unfinished_line_in_large_chunks_is_held_without_a_copy_until_it_ends() -> None:
    # The chunks of an unfinished line are kept as they are and joined once, when the line ends; growing
    # a copy instead would allocate the line's size (and more, moving it as it grows) before its end.
    size = 4 * 1024 * 1024
    line = b"data: " + b"x" * (size - 6)
    chunks = [line[i : i + 65536] for i in range(0, size, 65536)]
    parser = EventParser()
    tracemalloc.start()
    try:
        for chunk in chunks:
            assert parser.feed(chunk) == []
        _, held = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        events = parser.feed(b"\n\n")
        _, ending = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == [Event(data="x" * (size - 6))]
    assert held < 64 * 1024, f"peak traced memory {held} bytes while the line was unfinished"
    assert ending < 4 * size, f"peak traced memory {ending} bytes when the line ended"


def test_a_reconnecting_parser_reports_the_id_it_resumed_from() -> None:
    parser = EventParser(last_event_id="41")
    assert parser.feed(b"data: a\n\nid: 42\ndata: b\n\n") == [
        Event(data="a", id="41"),
        Event(data="b", id="42"),
    ]
    assert parser.last_event_id == "42"
