"""Fixture files: every input kind loads, the recorded format round-trips, damage is reported as FILE:LINE."""

from __future__ import annotations

import base64
import json
import os
import stat

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sse_toolkit
from sse_toolkit import (
    END_COMPLETE,
    END_RESET,
    END_TIMEOUT,
    Chunk,
    Exchange,
    Fixture,
    FixtureError,
    RecordedRequest,
    SSEError,
    dumps_fixture,
    load_fixture,
    loads_fixture,
    save_fixture,
)

EVENT_1 = b'data: {"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"}}]}'
EVENT_2 = b'data: {"candidates": [{"content": {"parts": [{"text": " world"}],"role": "model"},"finishReason": "STOP"}]}'


def only(fixture: Fixture) -> Exchange:
    assert len(fixture.exchanges) == 1
    return fixture.exchanges[0]


# -- plain bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_plain_sse_body_is_one_untimed_exchange_split_per_event(eol: bytes) -> None:
    body = EVENT_1 + eol + eol + EVENT_2 + eol + eol
    exchange = only(loads_fixture(body, "x.sse"))
    assert (exchange.status, exchange.reason) == (200, "OK")
    assert exchange.header("content-type") == "text/event-stream"
    assert exchange.header("content-disposition") == "attachment"
    assert [chunk.data for chunk in exchange.chunks] == [EVENT_1 + eol + eol, EVENT_2 + eol + eol]
    assert all(chunk.t is None for chunk in exchange.chunks) and not exchange.timed
    assert exchange.body == body
    assert exchange.request is None and exchange.end == END_COMPLETE


def test_plain_sse_keeps_extra_blank_lines_and_unfinished_tail_with_the_bytes() -> None:
    body = b'data: a\r\n\r\n\r\n: comment\n\ndata: b\n\n{\n  "error": {}\n}\n'
    chunks = [chunk.data for chunk in only(loads_fixture(body)).chunks]
    assert chunks == [b"data: a\r\n\r\n\r\n", b": comment\n\n", b"data: b\n\n", b'{\n  "error": {}\n}\n']


def test_mid_stream_error_capture_keeps_its_raw_json_as_last_chunk() -> None:
    body = EVENT_1 + b"\r\n\r\n" + b'{\n  "error": {\n    "code": 503,\n    "status": "UNAVAILABLE"\n  }\n}\n'
    exchange = only(loads_fixture(body))
    assert exchange.status == 200  # the error came inside a 200 body
    assert len(exchange.chunks) == 2 and exchange.chunks[1].data.startswith(b"{")


def test_json_array_body_is_split_per_element() -> None:
    elements = [b'{\n  "a": "[not a bracket} \\" ",\n  "b": [1, {"c": 2}]\n}', b'{\n  "d": 3\n}', b"{}"]
    body = b"[" + b"\n,\r\n".join(elements) + b"\n]"
    exchange = only(loads_fixture(body))
    assert exchange.header("content-type") == "application/json; charset=UTF-8"
    assert exchange.status == 200
    pieces = [chunk.data for chunk in exchange.chunks]
    assert pieces == [b"[" + elements[0], b"\n,\r\n" + elements[1], b"\n,\r\n" + elements[2] + b"\n]"]
    assert orjson.loads(body) == [orjson.loads(piece.strip(b"[],\r\n")) for piece in pieces]


def test_broken_json_array_still_loads_byte_exact() -> None:
    body = b'[{"a": "unterminated}, {"b": 1}'
    assert only(loads_fixture(body)).body == body


def test_bare_error_body_gets_its_status_and_json_headers() -> None:
    body = b'{\n  "error": {\n    "code": 429,\n    "message": "quota",\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n'
    exchange = only(loads_fixture(body, "e.json"))
    assert (exchange.status, exchange.reason) == (429, "Too Many Requests")
    assert exchange.headers == [("Content-Type", "application/json; charset=UTF-8")]
    assert exchange.body == body and len(exchange.chunks) == 1


def test_unary_json_object_is_a_200_json_response() -> None:
    exchange = only(loads_fixture(b'{"candidates": []}'))
    assert exchange.status == 200 and exchange.header("content-type", "").startswith("application/json")


def test_empty_file_is_an_empty_sse_body() -> None:
    exchange = only(loads_fixture(b""))
    assert exchange.chunks == [] and exchange.body == b""


# -- curl -i output ----------------------------------------------------------------------------------


def test_curl_i_http11_head_gives_status_reason_and_all_headers() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Disposition: attachment\r\n"
        b"Transfer-Encoding: chunked\r\nVary: Origin\r\n\r\n"
    )
    body = EVENT_1 + b"\r\n\r\n" + EVENT_2 + b"\r\n\r\n"
    exchange = only(loads_fixture(head + body))
    assert (exchange.status, exchange.reason) == (200, "OK")
    # Hop-by-hop headers are kept as printed: the replay server decides what it sends.
    assert exchange.headers == [
        ("Content-Type", "text/event-stream"),
        ("Content-Disposition", "attachment"),
        ("Transfer-Encoding", "chunked"),
        ("Vary", "Origin"),
    ]
    assert exchange.body == body and len(exchange.chunks) == 2


def test_curl_i_http2_after_100_continue_uses_the_final_head() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/2 503 \r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"
        b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}'
    )
    exchange = only(loads_fixture(data))
    assert (exchange.status, exchange.reason) == (503, "")
    assert exchange.headers == [("content-type", "application/json; charset=UTF-8")]
    assert exchange.body.startswith(b'{"error"')


def test_curl_i_json_array_body_is_split_by_its_content_type() -> None:
    data = b'HTTP/2 200\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n[{"a": 1}\r\n,\r\n{"b": 2}]'
    assert len(only(loads_fixture(data)).chunks) == 2


def test_curl_i_broken_head_is_a_fixture_error_with_its_line() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nthis is no header\r\n\r\ndata: x\r\n\r\n"
    with pytest.raises(FixtureError) as info:
        loads_fixture(data, "broken.http")
    assert info.value.path == "broken.http" and info.value.line == 3
    assert str(info.value).startswith("broken.http:3: ")


def test_curl_i_with_only_an_interim_head_is_an_error() -> None:
    with pytest.raises(FixtureError, match=r"^c\.http:1: .*interim"):
        loads_fixture(b"HTTP/1.1 100 Continue\r\n\r\ndata: x\r\n\r\n", "c.http")


# -- the recorded format -----------------------------------------------------------------------------


def sample() -> Fixture:
    request = RecordedRequest(
        method="POST",
        path="/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        query="alt=sse",
        headers=[("Content-Type", "application/json"), ("x-goog-api-key", "REDACTED")],
        body=b'{"contents": [{"parts": [{"text": "Hi"}]}]}',
    )
    first = Exchange(
        request=request,
        status=200,
        reason="OK",
        headers=[("Content-Type", "text/event-stream"), ("Content-Disposition", "attachment")],
        chunks=[Chunk(EVENT_1 + b"\r\n\r\n", 0.412), Chunk(EVENT_2[:20], 0.5), Chunk(EVENT_2[20:] + b"\r\n\r\n", 0.75)],
        end=END_COMPLETE,
        head_t=0.401,
    )
    second = Exchange(
        request=None,
        status=503,
        reason="Service Unavailable",
        headers=[("Content-Type", "application/json; charset=UTF-8")],
        chunks=[Chunk("caf\u00e9 \u732b".encode()[:-1], 0.1), Chunk(b"\xff\x00\r", None)],  # split character
        end=END_RESET,
    )
    return Fixture(exchanges=[first, second], source="recorded from generativelanguage.googleapis.com")


def test_recorded_format_is_readable_json_lines() -> None:
    text = dumps_fixture(sample()).decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == '{"sse_toolkit_fixture":1,"source":"recorded from generativelanguage.googleapis.com"}'
    assert lines[1].startswith('{"request":{"method":"POST","path":"/v1beta/models/gemini-2.5-flash:')
    assert lines[2] == (
        '{"response":{"status":200,"reason":"OK","headers":[["Content-Type","text/event-stream"],'
        '["Content-Disposition","attachment"]],"head_t":0.401}}'
    )
    assert lines[3].startswith('{"t":0.412,"chunk":"data: {\\"candidates\\"') and lines[3].endswith('\\r\\n\\r\\n"}')
    assert lines[6] == '{"end":"complete"}'
    assert lines[8].startswith('{"t":0.1,"chunk_b64":"')  # a chunk that splits a UTF-8 character
    assert lines[9] == '{"chunk_b64":"/wAN"}'  # untimed: no "t"
    assert lines[10] == '{"end":"reset"}'
    assert text.endswith("\n") and len(lines) == 11


def test_recorded_round_trip_is_exact() -> None:
    fixture = sample()
    assert loads_fixture(dumps_fixture(fixture)) == fixture


def test_recorded_file_checked_out_with_crlf_loads_the_same() -> None:
    data = dumps_fixture(sample())
    assert loads_fixture(data.replace(b"\n", b"\r\n")) == sample()


def test_recorded_file_with_bom_and_blank_lines_loads() -> None:
    data = b"\xef\xbb\xbf" + dumps_fixture(sample()).replace(b'\n{"end"', b'\n\n{"end"')
    assert loads_fixture(data) == sample()


def test_a_plain_body_loaded_and_saved_is_a_recorded_fixture_with_the_same_bytes(tmp_path) -> None:
    body = EVENT_1 + b"\r\n\r\n" + EVENT_2 + b"\r\n\r\n"
    fixture = loads_fixture(body, "plain.sse")
    save_fixture(tmp_path / "plain.jsonl", fixture)
    again = load_fixture(tmp_path / "plain.jsonl")
    assert again.exchanges == fixture.exchanges and again.source == "plain.sse"


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_time = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
_headers = st.lists(st.tuples(_text, _text), max_size=4)
_requests = st.one_of(
    st.none(),
    st.builds(RecordedRequest, method=_text, path=_text, query=_text, headers=_headers, body=st.binary(max_size=40)),
)
_exchanges = st.builds(
    Exchange,
    request=_requests,
    status=st.integers(100, 999),
    reason=_text,
    headers=_headers,
    chunks=st.lists(st.builds(Chunk, data=st.binary(max_size=40), t=_time), max_size=6),
    end=st.sampled_from([END_COMPLETE, END_RESET, END_TIMEOUT]),
    head_t=_time,
)
_fixtures = st.builds(Fixture, exchanges=st.lists(_exchanges, max_size=3), source=st.one_of(st.none(), _text))


@settings(max_examples=200, deadline=None)
@given(_fixtures)
def test_recorded_round_trip_property(fixture: Fixture) -> None:
    assert loads_fixture(dumps_fixture(fixture)) == fixture


# -- damaged recorded files --------------------------------------------------------------------------


def damaged(line_number: int, replacement: bytes) -> bytes:
    lines = dumps_fixture(sample()).split(b"\n")
    lines[line_number - 1] = replacement
    return b"\n".join(lines)


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (7, b'{"end": "complete"', "not valid JSON"),
        (7, b'{"end": "finished"}', '"end" must be one of'),
        (4, b'{"t": 0.4}', 'needs "chunk"'),
        (4, b'{"t": -1, "chunk": "x"}', '"t" must be seconds'),
        (4, b'{"t": "0.4", "chunk": "x"}', '"t" must be seconds'),
        (4, b'{"t": 1, "chunk_b64": "%%%"}', "not valid base64"),
        (4, b'{"t": 1, "chunk": "x", "chunk_b64": "eA=="}', "not both"),
        (4, b'{"t": 1, "chunck": "x"}', "unknown 'chunck'"),
        (4, b'{"chunck": "x"}', "unknown line"),
        (4, b"[1, 2]", "must be a JSON object"),
        (4, b"\xff\xfe garbage \x00\x01", "not valid JSON"),
        (3, b'{"response": {"reason": "OK"}}', "missing 'status'"),
        (3, b'{"response": {"status": true}}', '"status" must be an HTTP status code'),
        (3, b'{"response": {"status": 200, "headers": [["a"]]}}', '"headers"[0] must be a [name, value] pair'),
        (3, b'{"response": {"status": 200, "colour": "red"}}', "unknown 'colour'"),
        (2, b'{"request": {"method": "POST"}}', "missing 'path'"),
        (2, b'{"request": "POST /"}', '"request" must be an object'),
        (3, b'{"t": 1, "chunk": "x"}', 'unexpected "chunk" line'),
        (8, b'{"sse_toolkit_fixture": 1}', "second fixture header"),
        (8, b'{"end": "complete"}', 'unexpected "end" line'),
    ],
)
def test_damaged_recorded_file_names_file_and_line(line: int, replacement: bytes, message: str) -> None:
    with pytest.raises(FixtureError) as info:
        loads_fixture(damaged(line, replacement), "tests/cats.jsonl")
    error = info.value
    assert (error.path, error.line) == ("tests/cats.jsonl", line)
    assert str(error).startswith(f"tests/cats.jsonl:{line}: ")
    assert message in str(error)


def test_unknown_version_is_refused_on_line_1() -> None:
    data = dumps_fixture(sample()).replace(b'{"sse_toolkit_fixture":1', b'{"sse_toolkit_fixture":2', 1)
    with pytest.raises(FixtureError, match=r"^f\.jsonl:1: unsupported fixture format version 2.*upgrade"):
        loads_fixture(data, "f.jsonl")


def test_non_integer_version_is_refused() -> None:
    with pytest.raises(FixtureError, match=r"^<fixture>:1: .*integer"):
        loads_fixture(b'{"sse_toolkit_fixture": "1"}\n')


def test_truncated_file_is_reported_at_its_last_line() -> None:
    lines = dumps_fixture(sample()).split(b"\n")
    with pytest.raises(FixtureError, match=r"^t\.jsonl:5: the file ends inside exchange 1 \(begun on line 2\)"):
        loads_fixture(b"\n".join(lines[:5]), "t.jsonl")


def test_load_fixture_error_names_the_path(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(damaged(7, b"{oops"))
    with pytest.raises(FixtureError) as info:
        load_fixture(path)
    assert info.value.path == str(path) and info.value.line == 7
    assert isinstance(info.value, SSEError)


def test_header_only_file_is_an_empty_fixture() -> None:
    assert loads_fixture(b'{"sse_toolkit_fixture": 1}\n') == Fixture(exchanges=[], source=None, version=1)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_load_as_a_plain_body_or_raise_fixture_error(data: bytes) -> None:
    try:
        fixture = loads_fixture(data, "fuzz")
    except FixtureError as exc:
        assert exc.path == "fuzz" and exc.line is not None and exc.line >= 1
    else:
        body = only(fixture).body
        # A plain body is kept byte for byte; with curl -i heads, the body is what follows them.
        assert body == data if not data.startswith(b"HTTP/") else data.endswith(body)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_recorded_files_raise_only_fixture_error(data: st.DataObject) -> None:
    lines = dumps_fixture(sample()).split(b"\n")
    index = data.draw(st.integers(0, len(lines) - 1))
    choice = data.draw(st.sampled_from(["bytes", "json", "drop", "swap"]))
    if choice == "bytes":
        lines[index] = data.draw(st.binary(max_size=40))
    elif choice == "json":
        value = data.draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "request",
                                "response",
                                "t",
                                "chunk",
                                "chunk_b64",
                                "end",
                                "status",
                                "headers",
                                "sse_toolkit_fixture",
                            ]
                        ),
                        inner,
                        max_size=3,
                    )
                ),
                max_leaves=6,
            )
        )
        lines[index] = json.dumps(value).encode()  # stdlib: also big ints, Infinity
    elif choice == "drop":
        del lines[index]
    else:
        other = data.draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    try:
        loads_fixture(b"\n".join(lines), "m.jsonl")
    except FixtureError as exc:
        assert exc.line is not None and str(exc).startswith(f"m.jsonl:{exc.line}: ")


def test_loads_fixture_refuses_str() -> None:
    with pytest.raises(FixtureError, match="must be bytes"):
        loads_fixture("data: x\n\n")  # type: ignore[arg-type]


def test_dumps_refuses_a_model_it_could_not_load_back() -> None:
    with pytest.raises(FixtureError, match="end 'eof'"):
        dumps_fixture(Fixture([Exchange(end="eof")]))
    with pytest.raises(FixtureError, match="not a number of seconds"):
        dumps_fixture(Fixture([Exchange(chunks=[Chunk(b"x", float("nan"))])]))
    with pytest.raises(FixtureError, match="status"):
        dumps_fixture(Fixture([Exchange(status=42)]))


def test_b64_chunks_decode_to_the_exact_bytes() -> None:
    raw = bytes(range(256))
    data = dumps_fixture(Fixture([Exchange(chunks=[Chunk(raw, 1.0)])]))
    assert base64.b64encode(raw) in data
    assert only(loads_fixture(data)).body == raw


# -- atomic save -------------------------------------------------------------------------------------


def test_save_then_load(tmp_path) -> None:
    path = tmp_path / "f.jsonl"
    save_fixture(path, sample())
    assert load_fixture(path) == sample()
    assert os.listdir(tmp_path) == ["f.jsonl"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_crash_while_saving_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, failure) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"old contents\n")

    def crash(fd: int) -> None:
        raise failure

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(type(failure)):
        save_fixture(path, sample())
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents\n"
    assert os.listdir(tmp_path) == ["f.jsonl"]


def test_a_failing_rename_leaves_no_temp_file(tmp_path, monkeypatch) -> None:
    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        save_fixture(tmp_path / "new.jsonl", sample())
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_saving_keeps_the_permissions_of_the_file_it_replaces(tmp_path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    save_fixture(path, sample())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_saving_into_a_missing_directory_is_an_os_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        save_fixture(tmp_path / "no" / "f.jsonl", sample())


def test_public_names_are_exported() -> None:
    for name in ("FixtureError", "load_fixture", "loads_fixture", "dumps_fixture", "save_fixture", "DEFAULT_PACE"):
        assert name in sse_toolkit.__all__


# -- splitting plain bodies --------------------------------------------------------------------------

_line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20)
_json_objects = st.dictionaries(
    st.text(max_size=5),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\,: ab\n', max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


@given(st.lists(st.tuples(_line_text, st.sampled_from([b"\r\n", b"\n", b"\r"])), max_size=8))
def test_sse_body_splits_into_one_chunk_per_event(events: list[tuple[str, bytes]]) -> None:
    body = b"".join(b"data: " + text.encode() + eol + eol for text, eol in events)
    chunks = only(loads_fixture(body)).chunks
    assert [sse_toolkit.parse(chunk.data) for chunk in chunks] == [[sse_toolkit.Event(data=t)] for t, _ in events]


@given(st.lists(_json_objects, max_size=6))
def test_split_body_gives_back_the_api_framing_of_both_stream_forms(objects: list[dict]) -> None:
    events = [sse_toolkit.encode_sse_event(obj) for obj in objects]
    assert sse_toolkit._fixture_io.split_body(b"".join(events)) == events
    array = sse_toolkit.encode_json_array(objects)
    assert sse_toolkit._fixture_io.split_body(b"".join(array), "application/json; charset=UTF-8") == array
    if objects:
        assert [chunk.data for chunk in only(loads_fixture(b"".join(array))).chunks] == array


@given(st.lists(_json_objects, min_size=1, max_size=5), st.sampled_from([None, 2]))
def test_json_array_splits_per_element_in_any_layout(objects: list[dict], indent: int | None) -> None:
    body = json.dumps(objects, indent=indent).encode()
    pieces = [chunk.data for chunk in only(loads_fixture(body)).chunks]
    assert b"".join(pieces) == body and len(pieces) == len(objects)
    assert [json.loads(piece.strip(b"[],\r\n \t") or b"{}") for piece in pieces] == objects
