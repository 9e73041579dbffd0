"""Every capture, in every framing (SSE, LF-framed SSE, JSON array, each with and without ``curl -i`` heads),
decodes through ``iter_responses``/``aiter_responses`` to the right text, usage, function calls and errors,
for any chunking, and each response comes out as soon as its bytes are complete."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable

import orjson
import pytest
from _captures import ALL, CASE_BY_NAME, CASES, DATA, Case, json_paths, variants
from hypothesis import given, settings
from hypothesis import strategies as st

import sse_toolkit
from sse_toolkit import (
    ClientError,
    GeminiAPIError,
    GeminiDecodeError,
    GenerateContentResponse,
    PromptBlockedError,
    ServerError,
    TruncatedStreamError,
    aiter_responses,
    encode_sse_event,
    iter_responses,
    merge_responses,
)


def _decode(
    chunks: Iterable[bytes], strict: bool = True
) -> tuple[list[GenerateContentResponse], Exception | None]:
    got: list[GenerateContentResponse] = []
    try:
        for response in iter_responses(chunks, strict=strict):
            got.append(response)
    except sse_toolkit.GeminiError as exc:
        return got, exc
    return got, None


def check_case(case: Case, got: list[GenerateContentResponse], error: Exception | None) -> None:
    assert len(got) == case.responses
    merged = merge_responses(got)
    if case.name == "text-long-utf8.sse":
        assert merged.text is not None
        assert merged.text.startswith("The capital of Poland is **Warsaw** (Polish: *Warszawa*).")
        assert (
            "Łazienki Park" in merged.text and "Frédéric Chopin" in merged.text and "Wilanów" in merged.text
        )
        assert merged.text.endswith("a blend of rich history with dynamic modernity.")
    else:
        assert merged.text == case.text
    if case.thoughts_start:
        assert merged.thoughts is not None and merged.thoughts.startswith(case.thoughts_start)
    else:
        assert merged.thoughts is None
    if case.total_tokens is not None:
        assert merged.usage_metadata is not None
        assert merged.usage_metadata.total_token_count == case.total_tokens
    calls = tuple((call.name, call.id) for call in merged.function_calls or ())
    assert calls == case.calls
    if case.finish:
        assert all(candidate.finish_reason == case.finish for candidate in merged.candidates or ())
    if case.error is None:
        assert error is None
    else:
        assert type(error) is case.error
        assert case.error_line is not None and str(error).startswith(case.error_line)
        partial = getattr(error, "partial", None)
        if got:
            assert partial is not None and partial.to_dict() == merged.to_dict()


@pytest.mark.parametrize(("case", "label", "body"), ALL, ids=[f"{c.name}-{label}" for c, label, _ in ALL])
def test_capture_decodes_right_whole_and_byte_by_byte(case: Case, label: str, body: bytes) -> None:
    check_case(case, *_decode([body]))
    check_case(case, *_decode([body[i : i + 1] for i in range(len(body))]))


def test_the_429_body_carries_code_status_details_and_retry_delay() -> None:
    _, error = _decode([variants("error-429-quota.json")["curl-i"]])
    assert isinstance(error, ClientError) and isinstance(error, GeminiAPIError)
    assert (error.code, error.status, error.http_status) == (429, "RESOURCE_EXHAUSTED", 429)
    assert error.retry_delay == 7.0
    assert [detail["@type"].rsplit(".", 1)[-1] for detail in error.details] == [
        "Help",
        "QuotaFailure",
        "RetryInfo",
    ]
    assert error.message.startswith("You exceeded your current quota") and "\n" in error.message
    assert "\n" not in str(error)


def test_midstream_error_comes_after_the_responses_before_it() -> None:
    seen: list[str | None] = []
    with pytest.raises(ServerError) as info:
        for response in iter_responses([(DATA / "error-midstream-503.sse").read_bytes()]):
            seen.append(response.text)
    assert seen == ["Okay", ""]
    assert info.value.code == 503 and info.value.http_status is None
    assert info.value.partial is not None and info.value.partial.text == "Okay"


def test_blocked_and_truncated_are_no_errors_unless_strict() -> None:
    blocked = (DATA / "prompt-blocked-safety.sse").read_bytes()
    (response,) = iter_responses([blocked])
    assert response.block_reason == "SAFETY" and response.text is None
    with pytest.raises(PromptBlockedError) as info:
        list(iter_responses([blocked], strict=True))
    assert info.value.block_reason == "SAFETY" and info.value.response.prompt_feedback is not None

    data = (DATA / "text-stop.sse").read_bytes()
    cut = data[: data.rindex(b"data: ")]  # the connection broke before the event with finishReason
    assert [r.text for r in iter_responses([cut])] == ["The", " capital of Wyoming"]
    with pytest.raises(TruncatedStreamError) as truncated:
        list(iter_responses([cut], strict=True))
    assert truncated.value.response.text == "The capital of Wyoming"
    assert str(truncated.value) == "stream truncated: it ended without a finishReason for candidate 0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b" \r\n ", "empty body"),
        (b"hello world\n", "unexpected bytes in an SSE stream at body offset 0"),
        (b"<html><body>Not Found</body></html>", "unexpected bytes"),
        (b'data: {"candidates": [{"content": {"parts": [{"text": "The"', "data is not JSON"),
        (b'[{"candidates": [{"content": {"parts": [{"text": "The"', "truncated JSON"),
        (b"[1, 2]", "unexpected"),
        (b"data: [DONE]\n\n", "data is not JSON"),
        (b'data: {"candidates": "x"}\n\n', "not a GenerateContentResponse"),
        (
            b'{"candidates": [{"content": {"parts": [{"text": "The"}]}}]} trailing',
            "unexpected bytes at body offset",
        ),
    ],
)
def test_garbage_empty_and_truncated_input_give_one_clear_decode_error(body: bytes, message: str) -> None:
    for chunks in ([body], [body[i : i + 1] for i in range(len(body))]):
        with pytest.raises(GeminiDecodeError) as info:
            list(iter_responses(chunks))
        assert message in str(info.value)
        assert "\n" not in str(info.value)


def test_a_non_json_error_page_behind_an_error_status_is_an_api_error() -> None:
    body = (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\n\r\n<html><h1>502 Bad Gateway</h1></html>\n"
    )
    with pytest.raises(ServerError) as info:
        list(iter_responses([body]))
    assert info.value.code == 502 and "502 Bad Gateway" in info.value.message


def test_a_unary_response_body_is_one_response() -> None:
    merged = merge_responses(iter_responses([(DATA / "thinking-thoughts.sse").read_bytes()]))
    body = sse_toolkit.dumps_pretty(merged)
    (response,) = iter_responses([body])
    assert response.to_dict() == merged.to_dict()


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    data = (DATA / "text-stop.sse").read_bytes().rstrip(b"\r\n")
    assert (
        merge_responses(iter_responses([data]), strict=True).text
        == "The capital of Wyoming is **Cheyenne**.\n"
    )


# -- as soon as complete -------------------------------------------------------------------------------------


def _object_ends(body: bytes, label: str) -> list[int]:
    """Byte positions right after each response's last needed byte: the blank line's line end (its CR alone
    for CRLF: a CR ends a line at once), or the object's ``}``."""
    if label.startswith("sse"):
        separator = b"\n\n" if label.startswith("sse-lf") else b"\r\n\r"
        ends, position = [], 0
        while (found := body.find(separator, position)) >= 0:
            position = found + len(separator)
            ends.append(position)
        return ends
    decoder_ends, depth, in_string, escape = [], 0, False, False
    for index, byte in enumerate(body):
        if in_string:
            if escape:
                escape = False
            elif byte == 0x5C:
                escape = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x7B:
            depth += 1
        elif byte == 0x7D:
            depth -= 1
            if depth == 0:
                decoder_ends.append(index + 1)
    return decoder_ends


_STREAMS = [
    (name, label, body)
    for name in (
        "thinking-thoughts.sse",
        "code-execution.sse",
        "text-thinking.jsonarray",
        "text-long-utf8.sse",
    )
    for label, body in variants(name).items()
    if "curl" not in label
]


@pytest.mark.parametrize(
    ("name", "label", "body"), _STREAMS, ids=[f"{n}-{label}" for n, label, _ in _STREAMS]
)
def test_each_response_is_yielded_as_soon_as_its_bytes_are_complete(
    name: str, label: str, body: bytes
) -> None:
    ends = _object_ends(body, label)
    assert len(ends) == CASE_BY_NAME[name].responses
    decoder = sse_toolkit.ResponseDecoder()
    seen = 0
    previous = 0
    for count, end in enumerate(ends, start=1):
        # One byte short of the end: not yet; the last byte: exactly one more response.
        seen += len(decoder.feed(body[previous : end - 1]))
        assert seen == count - 1
        seen += len(decoder.feed(body[end - 1 : end]))
        assert seen == count
        previous = end
    decoder.feed(body[previous:])
    assert decoder.close() == []


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(
        [
            "thinking-thoughts.sse",
            "function-call-parallel-gemini3.sse",
            "text-thinking.jsonarray",
            "error-midstream-503.sse",
            "text-long-utf8.sse",
        ]
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=25),
    data=st.data(),
)
def test_any_chunking_gives_the_same_objects_in_both_formats(
    name: str, cuts: list[int], data: st.DataObject
) -> None:
    forms = variants(name)
    label = data.draw(st.sampled_from(sorted(forms)))
    body = forms[label]
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    whole, whole_error = _decode([body], strict=False)
    split, split_error = _decode(chunks, strict=False)
    assert [r.to_dict() for r in split] == [r.to_dict() for r in whole]
    assert repr(split_error) == repr(whole_error)
    # And the SSE and JSON-array framings of one capture give equal objects.
    other = forms["json-array" if label.startswith("sse") else "sse"]
    assert [r.to_dict() for r in _decode([other], strict=False)[0]] == [r.to_dict() for r in whole]


# -- async ---------------------------------------------------------------------------------------------------


async def _agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


def test_aiter_responses_matches_iter_responses() -> None:
    async def collect(body: bytes) -> tuple[list[dict], str]:
        got = []
        try:
            async for response in aiter_responses(
                _agen([body[i : i + 7] for i in range(0, len(body), 7)]), strict=True
            ):
                got.append(response.to_dict())
        except sse_toolkit.GeminiError as exc:
            return got, repr(exc)
        return got, ""

    for case in CASES:
        for body in variants(case.name).values():
            sync, error = _decode([body])
            assert asyncio.run(collect(body)) == ([r.to_dict() for r in sync], repr(error) if error else "")


def test_aiter_responses_closes_its_source_when_the_consumer_stops() -> None:
    closed = []

    async def source() -> AsyncIterator[bytes]:
        try:
            for _ in range(100):
                yield (DATA / "text-stop.sse").read_bytes()
        finally:
            closed.append(True)

    async def first() -> str | None:
        stream = aiter_responses(source())
        async for response in stream:
            await stream.aclose()
            return response.text
        return None

    assert asyncio.run(first()) == "The"
    assert closed == [True]


def test_iter_responses_over_real_httpx_and_aiohttp_streams_from_a_loopback_server() -> None:
    import http.server
    import threading

    import aiohttp
    import httpx

    body = (DATA / "thinking-thoughts.sse").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for event in body.split(b"\r\n\r\n")[:-1]:
                self.wfile.write(event + b"\r\n\r\n")
                self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1beta/models/x:streamGenerateContent?alt=sse"
    try:
        with httpx.Client() as client, client.stream("POST", url, json={}) as response:
            merged = merge_responses(iter_responses(response.iter_bytes()), strict=True)
        assert merged.text is not None and merged.text.startswith("The sky is blue")

        async def with_aiohttp() -> str | None:
            async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
                got = [r async for r in aiter_responses(response.content.iter_any())]
            return merge_responses(got).text

        assert asyncio.run(with_aiohttp()) == merged.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(
        st.sampled_from(["event", "comment", "lf", "multiline", "id", "bom", "cr-blank", "blank", "colon"])
        | st.just("plain"),
        min_size=1,
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
)
def test_fast_path_and_parser_hand_over_give_what_the_parser_gives(
    blocks: list[str], cuts: list[int]
) -> None:
    """Blocks of the API's exact shape take a fast path; any other block hands over to EventParser. The
    responses must be what decoding each parsed event gives, for any mix and any chunking, and each must
    come out with the chunk that completes its event, as the parser dispatches it."""
    events = [
        orjson.loads(event.data) for event in sse_toolkit.parse((DATA / "text-long-utf8.sse").read_bytes())
    ]
    body = b""
    for index, kind in enumerate(blocks):
        line = sse_toolkit.dumps_api_style(events[index % len(events)])
        body += {
            "plain": b"data: " + line + b"\r\n\r\n",
            "event": b"event: message\r\ndata: " + line + b"\r\n\r\n",
            "comment": b": keep-alive\r\n\r\ndata: " + line + b"\r\n\r\n",
            "lf": b"data: " + line + b"\n\n",
            "multiline": b"data: "
            + line.replace(b',"usageMetadata"', b',\r\ndata: "usageMetadata"', 1)
            + b"\r\n\r\n",
            "id": b"id: 7\rdata:" + line + b"\r\r",
            "bom": (b"\xef\xbb\xbf" if index == 0 else b"") + b"data: " + line + b"\r\n\r\n",
            "cr-blank": b"data: " + line + b"\r\n\r",  # a blank line ended by a CR alone
            "blank": b"\r\n" + b"data: " + line + b"\r\n\r\n",  # an extra blank line before the block
            "colon": b"data:" + line + b"\r\n\r\n",  # no space after the colon
        }[kind]
    expected = [orjson.loads(event.data) for event in sse_toolkit.parse(body)]
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert [r.to_dict() for r in iter_responses(chunks)] == expected
    decoder = sse_toolkit.ResponseDecoder()
    parser = sse_toolkit.EventParser()
    dispatched = 0
    for chunk in chunks:
        dispatched += len(parser.feed(chunk))
        decoder.feed(chunk)
        assert decoder.responses == dispatched


def test_text_chunks_are_a_usage_error_naming_the_fix() -> None:
    with pytest.raises(sse_toolkit.SSEUsageError, match="open files in binary mode"):
        list(iter_responses(["data: {}\n\n"]))  # type: ignore[list-item]
    decoder = sse_toolkit.ResponseDecoder()
    with pytest.raises(GeminiDecodeError, match="empty body"):
        decoder.close()
    with pytest.raises(sse_toolkit.SSEUsageError, match="after close"):
        decoder.feed(b"data: {}\n\n")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=int(os.environ.get("GEMINI_FUZZ_EXAMPLES", "150")), deadline=None)
@given(data=st.data())
def test_wrong_json_types_anywhere_give_objects_or_gemini_errors_never_a_crash(data: st.DataObject) -> None:
    """The objects do not validate types; decoding, merging, the conveniences, re-encoding and the CLI
    must still only ever raise GeminiError for values of the wrong type at any place."""
    from click.testing import CliRunner

    from sse_toolkit.cli import main

    name = data.draw(
        st.sampled_from(
            [
                "thinking-thoughts.sse",
                "function-call-parallel-gemini3.sse",
                "code-execution.sse",
                "multi-candidate.synthetic.sse",
            ]
        )
    )
    objects = [orjson.loads(event.data) for event in sse_toolkit.parse((DATA / name).read_bytes())]
    for _ in range(data.draw(st.integers(1, 4))):
        target = objects[data.draw(st.integers(0, len(objects) - 1))]
        path = data.draw(st.sampled_from(json_paths(target)[1:]))
        holder = target
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = data.draw(_json_values)
    body = b"".join(encode_sse_event(obj) for obj in objects)
    try:
        responses = list(iter_responses([body], strict=data.draw(st.booleans())))
        merged = merge_responses(responses)
        _ = (merged.text, merged.thoughts, merged.function_calls, merged.finish_reason, merged.block_reason)
        sse_toolkit.dumps_api_style(merged)
        assert [r.to_dict() for r in responses] == [orjson.loads(e.data) for e in sse_toolkit.parse(body)]
    except sse_toolkit.GeminiError:
        pass
    for command in ("text", "json"):
        result = CliRunner().invoke(main, [command], input=body)
        assert result.exit_code in (0, 1), (result.exception, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
