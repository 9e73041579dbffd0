"""Tests: every rule of DESIGN.md "Parser rules worth repeating" and issue 3 item 3, as explicit byte vectors.

Each vector goes through ``_chunking.feed_all_ways`` (whole, byte by byte, seeded random splits, all equal)
and, where the expectation is a spec fact, also through the independent ``_reference``. Tests that are about
one particular chunking (a BOM in three chunks, a CR at a chunk's end) feed those chunks explicitly.
"""

from __future__ import annotations

import pickle

import pytest
from _chunking import Outcome, feed_all_ways, feed_chunks
from _reference import reference_parse

from sse_toolkit import Event, EventParser, SSEError, SSEUsageError, parse

BOM = b"\xef\xbb\xbf"


def check(stream: bytes, events: list[Event], last_event_id: str = "", retry: int | None = None) -> None:
    """The full outcome of ``stream`` in every chunking, and the reference's, equal the expectation."""
    expected = Outcome(events, last_event_id, retry)
    assert feed_all_ways(stream) == expected
    assert reference_parse(stream) == expected


# --- BOM ---------------------------------------------------------------------------------------------------


def test_one_leading_bom_is_stripped() -> None:
    check(BOM + b"data: a\n\n", [Event(data="a")])


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\xef", b"\xbb", b"\xbf", b"data: a\n\n"],
        [b"\xef", b"", b"\xbb", b"", b"\xbf", b"", b"data: a\n\n"],
        [b"\xef", b"\xbb\xbfdata: a\n\n"],
        [b"\xef\xbb", b"\xbfdata: a\n\n"],
        [b"\xef", b"\xbb", b"\xbfdata: a\n", b"\n"],
    ],
    ids=["3-chunks", "3-chunks-with-empties", "1+rest", "2+rest", "1+1+rest"],
)
def test_leading_bom_split_over_chunks_is_stripped(chunks: list[bytes]) -> None:
    assert feed_chunks(chunks).events == [Event(data="a")]


def test_second_bom_is_kept_as_part_of_the_field_name() -> None:
    # "\ufeffdata" is an unknown field, so the first block has no data.
    check(BOM + BOM + b"data: a\n\ndata: b\n\n", [Event(data="b")])


def test_bom_after_the_start_of_the_stream_is_not_stripped() -> None:
    check(b"data: a\n\n" + BOM + b"data: b\n\n", [Event(data="a")])
    check(b"data: " + BOM + b"x\n\n", [Event(data="\ufeffx")])


def test_a_partial_bom_is_invalid_utf8_not_a_bom() -> None:
    # EF BB followed by "d" is one invalid sequence (U+FFFD), which then starts the field name.
    check(b"\xef\xbbdata: a\n\ndata: b\n\n", [Event(data="b")])
    check(b"\xef\xbb", [])


def test_a_stream_of_only_a_bom_gives_nothing() -> None:
    check(BOM, [])


# --- line ends ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_each_line_end_ends_lines_and_blocks(eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"event: e" + eol + b"data: c" + eol + eol
    check(stream, [Event(data="a\nb"), Event(event="e", data="c")])


def test_mixed_line_ends_in_one_stream() -> None:
    check(b"data: a\rdata: b\r\ndata: c\n\r\ndata: d\r\r", [Event(data="a\nb\nc"), Event(data="d")])


def test_cr_lf_is_one_line_end_but_lf_cr_is_two() -> None:
    check(b"data: a\r\ndata: b\r\n\r\n", [Event(data="a\nb")])
    check(b"data: a\n\rdata: b\n\r", [Event(data="a"), Event(data="b")])


def test_cr_at_chunk_end_dispatches_the_event_at_once() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r\r") == [Event(data="a")]


def test_lf_after_a_chunk_final_cr_is_skipped() -> None:
    # Were the LF a line end of its own, it would be a blank line dispatching "a" alone.
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\n\n") == [Event(data="a\nb")]


def test_lf_alone_after_a_chunk_final_cr_is_skipped() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"data: b\n\n") == [Event(data="a\nb")]


def test_cr_after_a_chunk_final_cr_is_a_blank_line() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\r") == [Event(data="a")]


def test_empty_feed_does_not_disturb_a_pending_lf_skip() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\ndata: b\n\n") == [Event(data="a\nb")]


def test_only_one_lf_is_skipped_after_a_chunk_final_cr() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\n") == [Event(data="a")]


# --- lines that span chunks ---------------------------------------------------------------------------------

LONG_VALUE = (
    "A" * 20_000 + "\u00e9\u20ac\U0001f600" + "B" * 3_000
)  # multi-byte characters cut in some chunkings


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"data: ", Event(event="image", data=LONG_VALUE + "\ntail", id="7")),
        (b"data:", Event(event="image", data=LONG_VALUE + "\ntail", id="7")),
        (b"event: ", Event(event=LONG_VALUE, data="tail", id="7")),
        (b"id: ", Event(event="image", data="tail", id=LONG_VALUE)),
    ],
    ids=["data", "data-no-space", "event", "id"],
)
def test_a_long_line_spanning_chunks_in_a_block_of_several_fields(
    line: bytes, event: Event, eol: bytes
) -> None:
    # Not the one-data-line shape of the batch path: the long line goes through the general loop whole.
    block = [b"event: image", b"id: 7", line + LONG_VALUE.encode(), b"data: tail", b""]
    check(eol.join(block) + eol, [event], last_event_id=event.id)


# --- fields -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"data:a", "a"),
        (b"data: a", "a"),
        (b"data:  a", " a"),  # only one space is removed
        (b"data:\ta", "\ta"),  # a tab is not a space
        (b"data: ", ""),
        (b"data:", ""),
        (b"data", ""),  # no colon: the whole line is the name, the value is empty
        (b"data: a:b: c", "a:b: c"),  # only the first colon separates
        (b"data: a ", "a "),  # trailing spaces stay
    ],
)
def test_field_value_loses_exactly_one_optional_leading_space(line: bytes, data: str) -> None:
    check(line + b"\n\n", [Event(data=data)])


@pytest.mark.parametrize("name", [b"Data", b"DATA", b"data ", b" data", b"dat", b"datas", b"\tdata"])
def test_field_names_match_exactly(name: bytes) -> None:
    check(name + b": x\n\n", [])


def test_comment_lines_are_ignored() -> None:
    check(b": hello\ndata: a\n:\n:data: b\ndata: c\n\n", [Event(data="a\nc")])


def test_comment_only_block_dispatches_nothing() -> None:
    check(b": keep-alive\n\n:another\n\n", [])


def test_unknown_fields_are_ignored() -> None:
    check(b"foo: bar\ndata: a\nfoo\nx:\nretries: 5\n\n", [Event(data="a")])


def test_data_lines_are_joined_with_lf() -> None:
    check(b"data: a\ndata: b\ndata: c\n\n", [Event(data="a\nb\nc")])
    check(b"data\ndata\n\n", [Event(data="\n")])
    check(b"data: a\ndata:\n\n", [Event(data="a\n")])


@pytest.mark.parametrize(
    "line", [b"", b"event\n", b"event:\n", b"event: \n"], ids=["none", "bare", "colon", "space"]
)
def test_empty_event_type_means_message(line: bytes) -> None:
    check(line + b"data: x\n\n", [Event(event="message", data="x")])


def test_event_type_applies_to_its_block_only() -> None:
    check(b"event: a\ndata: 1\n\ndata: 2\n\n", [Event(event="a", data="1"), Event(data="2")])
    # A block without data still resets the type buffer.
    check(b"event: a\n\ndata: 2\n\n", [Event(data="2")])


def test_last_event_field_in_a_block_wins() -> None:
    check(b"event: a\nevent: b\ndata: 1\n\n", [Event(event="b", data="1")])


# --- id -----------------------------------------------------------------------------------------------------


def test_event_id_is_the_last_event_id_in_force_at_dispatch() -> None:
    check(
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
        [Event(data="a", id="1"), Event(data="b", id="1"), Event(data="c", id="2")],
        last_event_id="2",
    )


def test_id_after_data_in_the_same_block_still_counts() -> None:
    check(b"data: a\nid: 5\n\n", [Event(data="a", id="5")], last_event_id="5")


@pytest.mark.parametrize("value", [b"\0", b"1\0", b"\x002", b"a\0b"])
def test_id_containing_nul_is_ignored(value: bytes) -> None:
    check(
        b"id: 1\ndata: a\n\nid: " + value + b"\ndata: b\n\n",
        [Event(data="a", id="1"), Event(data="b", id="1")],
        last_event_id="1",
    )


def test_id_only_block_updates_last_event_id() -> None:
    check(b"id: 7\n\n", [], last_event_id="7")
    check(b"id: 7\n\ndata: x\n\n", [Event(data="x", id="7")], last_event_id="7")


def test_empty_id_resets_the_last_event_id() -> None:
    check(b"id: 1\ndata: a\n\nid\ndata: b\n\n", [Event(data="a", id="1"), Event(data="b")], last_event_id="")


def test_id_keeps_spaces_and_non_ascii() -> None:
    check("id:  \u00e9 \ndata: x\n\n".encode(), [Event(data="x", id=" \u00e9 ")], last_event_id=" \u00e9 ")


# --- retry --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ms"),
    [(b"0", 0), (b"1500", 1500), (b"007", 7), (b"99999999999999999999", 99999999999999999999)],
)
def test_retry_of_ascii_digits_sets_reconnection_time(value: bytes, ms: int) -> None:
    check(b"retry: " + value + b"\ndata: x\n\n", [Event(data="x", retry=ms)], retry=ms)


@pytest.mark.parametrize(
    "value",
    [
        b"-1",
        b"+1",
        b"1_000",
        b" 1",  # "retry:  1": the value rule strips one space, " 1" is left and is not all digits
        b"1 ",
        "\u0661\u0662".encode(),  # Arabic-Indic digits: str.isdigit() says yes, the spec says ASCII only
        "\uff11\uff12".encode(),  # fullwidth digits
        "\u00b2".encode(),  # superscript two
        b"1.5",
        b"1e3",
        b"0x10",
        b"",  # empty value: ignored (DESIGN choice; the spec's "only ASCII digits" is vacuous here)
        b"\t1",
        b"1\0",
    ],
)
def test_retry_other_than_ascii_digits_is_ignored(value: bytes) -> None:
    check(b"retry: " + value + b"\ndata: x\n\n", [Event(data="x")], retry=None)
    # ...and it does not undo a valid value seen before.
    check(b"retry: 10\n\nretry: " + value + b"\ndata: x\n\n", [Event(data="x")], retry=10)


def test_event_retry_is_the_field_of_its_block_only() -> None:
    check(
        b"retry: 10\ndata: a\n\ndata: b\n\nretry: 20\ndata: c\n\n",
        [Event(data="a", retry=10), Event(data="b"), Event(data="c", retry=20)],
        retry=20,
    )


def test_parser_retry_persists_and_a_retry_only_block_updates_it() -> None:
    check(b"retry: 10\n\ndata: a\n\n", [Event(data="a")], retry=10)
    parser = EventParser()
    assert parser.retry is None
    parser.feed(b"retry: 10\n")
    assert parser.retry == 10  # set when the field is read, as the spec's reconnection time is


def test_retry_line_of_an_unfinished_block_still_sets_reconnection_time() -> None:
    # The spec sets the reconnection time as soon as the retry line is interpreted; only the unfinished
    # block's *dispatch* (and its id) is dropped at the end. An unterminated retry line is dropped whole.
    check(b"retry: 5\ndata: x\n", [], retry=5)
    check(b"retry: 5", [], retry=None)


# --- no phantom events --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        b"\n\n\n\n",
        b"\r\r\r",
        b"event: x\n\n",
        b"retry: 5\n\n",
        b"id: 1\n\n",
        b":comment\n\n",
        b"foo: bar\n\n",
    ],
)
def test_block_without_data_dispatches_nothing(stream: bytes) -> None:
    assert feed_all_ways(stream).events == []
    assert reference_parse(stream)[0] == []


def test_keep_alive_comment_after_an_event_is_no_phantom_event() -> None:
    check(b"id: 1\ndata: a\n\n: keep-alive\n\n", [Event(data="a", id="1")], last_event_id="1")


# --- end of stream ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"data: b\n", b"data: b", b"data: b\r", b"data: b\r\n"])
def test_unfinished_block_at_close_is_discarded(tail: bytes) -> None:
    check(b"data: a\n\n" + tail, [Event(data="a")])


def test_unfinished_block_id_does_not_count() -> None:
    check(b"id: 1\ndata: a\n\nid: 2\ndata: b\n", [Event(data="a", id="1")], last_event_id="1")
    check(b"id: 9\n", [], last_event_id="")


def test_close_returns_an_empty_list_and_parse_equals_feed_plus_close() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\n\ndata: b\n") == [Event(data="a")]
    assert parser.close() == []
    assert parse(b"data: a\n\ndata: b\n") == [Event(data="a")]


# --- invalid UTF-8 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\xff\xfe", "\ufffd\ufffd"),
        (b"\xe2\x82", "\ufffd"),  # truncated 3-byte sequence at the line end: one U+FFFD (maximal subpart)
        (b"\xe2\x82x", "\ufffdx"),
        (b"\xc0\xaf", "\ufffd\ufffd"),  # overlong
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # encoded surrogate
        (b"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"),  # above U+10FFFF
        (b"a\x80b", "a\ufffdb"),
    ],
)
def test_invalid_utf8_becomes_replacement_characters(raw: bytes, text: str) -> None:
    check(b"data: " + raw + b"\n\n", [Event(data=text)])


def test_invalid_utf8_in_field_name_or_id_never_raises() -> None:
    check(b"\xffdata: x\n\nid: \xff\ndata: y\n\n", [Event(data="y", id="\ufffd")], last_event_id="\ufffd")


@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600"], ids=["2-byte", "3-byte", "4-byte"])
def test_multibyte_character_cut_across_chunks_decodes_whole(char: str) -> None:
    stream = f"data: {char}\n\n".encode()
    for cut in range(6, 6 + len(char.encode())):
        assert feed_chunks([stream[:cut], stream[cut:]]).events == [Event(data=char)]


def test_invalid_utf8_cut_across_chunks_gives_the_same_replacements_as_whole() -> None:
    stream = b"data: \xf0\x9f\x98\n\n"  # a 4-byte sequence missing its last byte
    for cut in range(len(stream)):
        assert feed_chunks([stream[:cut], stream[cut:]]).events == [Event(data="\ufffd")]


# --- usage errors -------------------------------------------------------------------------------------------


def test_feed_after_close_raises_usage_error() -> None:
    parser = EventParser()
    parser.close()
    with pytest.raises(SSEUsageError, match="close"):
        parser.feed(b"data: a\n\n")


@pytest.mark.parametrize("value", ["data: a\n\n", None, 5], ids=["str", "None", "int"])
def test_feed_of_non_bytes_raises_usage_error(value: object) -> None:
    with pytest.raises(SSEUsageError):
        EventParser().feed(value)  # type: ignore[arg-type]


def test_usage_error_is_an_sse_error() -> None:
    assert issubclass(SSEUsageError, SSEError)
    with pytest.raises(SSEError):
        EventParser().feed("text")  # type: ignore[arg-type]


def test_feed_of_empty_bytes_is_harmless() -> None:
    parser = EventParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n") == [Event(data="a")]


def test_non_positive_max_event_size_is_a_usage_error() -> None:
    with pytest.raises(SSEUsageError):
        EventParser(max_event_size=0)


def test_sse_error_root_cannot_be_raised_itself() -> None:
    with pytest.raises(TypeError):
        SSEError("x")


# --- Event --------------------------------------------------------------------------------------------------


def test_event_defaults_are_the_spec_defaults() -> None:
    event = Event()
    assert (event.event, event.data, event.id, event.retry) == ("message", "", "", None)


def test_event_repr_leaves_out_defaults() -> None:
    assert repr(Event(data="hi")) == "Event(data='hi')"
    assert repr(Event()) == "Event(data='')"
    assert repr(Event(event="e", data="d", id="1", retry=5)) == "Event(event='e', data='d', id='1', retry=5)"
    assert repr(Event(data="d", retry=0)) == "Event(data='d', retry=0)"  # 0 is not the default None


def test_event_is_immutable() -> None:
    event = Event(data="a")
    with pytest.raises(AttributeError):
        event.data = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(event, "__dict__")
    assert event.data == "a"


def test_event_is_a_hashable_value() -> None:
    assert Event(data="a", id="1") == Event(data="a", id="1")
    assert hash(Event(data="a")) == hash(Event(data="a"))
    assert pickle.loads(pickle.dumps(Event(event="e", data="x", retry=3))) == Event(
        event="e", data="x", retry=3
    )


def test_event_json_and_to_dict() -> None:
    event = Event(data='{"a": [1, "\u00e9"]}', id="7")
    assert event.json() == {"a": [1, "\u00e9"]}
    assert event.to_dict() == {"event": "message", "data": '{"a": [1, "\u00e9"]}', "id": "7", "retry": None}
