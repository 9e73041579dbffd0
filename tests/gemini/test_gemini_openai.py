"""The OpenAI-compatible stream (synthetic data, see tests/data/README.md) gives text, usage, tool calls and
typed errors, for any chunking."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import pytest

from sse_toolkit import (
    ClientError,
    GeminiDecodeError,
    aiter_chat_chunks,
    chunk_text,
    iter_chat_chunks,
    merge_chat_chunks,
)

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_text_and_usage_of_a_chat_stream() -> None:
    data = (DATA / "openai-chat.synthetic.sse").read_bytes()
    for chunks in ([data], _bytewise(data)):
        items = list(iter_chat_chunks(chunks))
        assert [chunk_text(item) for item in items] == [
            "Cats purr",
            " when they are content – and sometimes when stressed.",
            "",
        ]
        result = merge_chat_chunks(items)
        assert result.text == "Cats purr when they are content – and sometimes when stressed."
        assert result.usage == {"prompt_tokens": 8, "completion_tokens": 12, "total_tokens": 20}
        assert (result.finish_reason, result.model, result.chunks) == ("stop", "gemini-2.5-flash", 3)


def test_tool_call_arguments_are_joined() -> None:
    result = merge_chat_chunks(iter_chat_chunks([(DATA / "openai-tool-call.synthetic.sse").read_bytes()]))
    assert result.finish_reason == "tool_calls" and result.text == ""
    assert result.tool_calls == [
        {
            "function": {"arguments": '{"city": "Paris"}', "name": "get_weather"},
            "id": "call_0",
            "type": "function",
        }
    ]


def test_error_array_body_and_error_event_raise_client_error() -> None:
    body = (DATA / "openai-error-429.synthetic.json").read_bytes()
    with pytest.raises(ClientError) as info:
        list(iter_chat_chunks([b"HTTP/2 429 \r\n\r\n" + body]))
    assert (info.value.code, info.value.status, info.value.http_status) == (429, "RESOURCE_EXHAUSTED", 429)
    event = b"data: " + body.replace(b"\n", b"") + b"\n\n"
    got = []
    with pytest.raises(ClientError):
        for item in iter_chat_chunks(
            [(DATA / "openai-chat.synthetic.sse").read_bytes().split(b"data: [DONE]")[0], event]
        ):
            got.append(item)
    assert len(got) == 3


@pytest.mark.parametrize("body", [b"", b"data: nope\n\n", b'{"choices": []}'])
def test_bad_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(GeminiDecodeError):
        list(iter_chat_chunks([body]))


def test_async_twin() -> None:
    data = (DATA / "openai-chat.synthetic.sse").read_bytes()

    async def source() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 5):
            yield data[i : i + 5]

    async def collect() -> str:
        return merge_chat_chunks([item async for item in aiter_chat_chunks(source())]).text

    assert asyncio.run(collect()) == "Cats purr when they are content – and sometimes when stressed."
