"""The official SDK (google-genai, httpx2 for sync and aiohttp for async) against the real replay server:
what it reads equals what the recording holds."""

from __future__ import annotations

import asyncio
import json
import pathlib

import pytest
from google import genai
from google.genai import errors, types

from sse_toolkit.fixture._builder import GeminiScript
from sse_toolkit.parser._parser import parse
from sse_toolkit.replay import ReplayServer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"


def _recorded(name: str) -> list[dict]:
    return [json.loads(event.data) for event in parse((FIXTURES / name).read_bytes())]


def _texts(objects: list[dict]) -> list[str]:
    return [
        "".join(p.get("text", "") for p in o["candidates"][0]["content"]["parts"] if not p.get("thought"))
        for o in objects
    ]


@pytest.fixture(scope="module")
def server() -> ReplayServer:  # type: ignore[misc]
    with ReplayServer(FIXTURES, speed=0) as running:
        yield running
        running.check()


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_sync_stream_reads_every_recorded_chunk(server: ReplayServer, api_version: str | None) -> None:
    options = types.HttpOptions(base_url=server.url, **({"api_version": api_version} if api_version else {}))
    client = genai.Client(api_key="test", http_options=options)
    chunks = list(client.models.generate_content_stream(model="wyoming", contents="capital of Wyoming?"))
    assert [c.text for c in chunks] == _texts(_recorded("wyoming.sse"))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert (
        chunks[-1].usage_metadata.total_token_count
        == _recorded("wyoming.sse")[-1]["usageMetadata"]["totalTokenCount"]
    )
    assert server.requests[-1].path == f"/{api_version or 'v1'}/models/wyoming:streamGenerateContent"


def test_async_stream_with_aiohttp_reads_every_recorded_chunk(server: ReplayServer) -> None:
    async def read() -> list[types.GenerateContentResponse]:
        client = genai.Client(
            api_key="test", http_options=types.HttpOptions(base_url=server.url, api_version="v1beta")
        )
        stream = await client.aio.models.generate_content_stream(
            model="cats", contents="Write a cute story about cats."
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(read())
    assert [c.text for c in chunks] == _texts(_recorded("cats.sse"))


def test_thoughts_and_function_calls_come_through(server: ReplayServer) -> None:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url))
    thoughts = [
        part.text
        for chunk in client.models.generate_content_stream(model="thinking", contents="why is the sky blue?")
        for part in chunk.candidates[0].content.parts
        if part.thought
    ]
    assert thoughts and all(thoughts)
    calls = [
        call.name
        for chunk in client.models.generate_content_stream(model="function-call", contents="add")
        for call in (chunk.function_calls or [])
    ]
    recorded = [
        p["functionCall"]["name"]
        for o in _recorded("function-call.sse")
        for p in o["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    assert calls == recorded


def test_unary_generate_content_gets_the_merged_answer(server: ReplayServer) -> None:
    client = genai.Client(
        api_key="test", http_options=types.HttpOptions(base_url=server.url, api_version="v1beta")
    )
    answer = client.models.generate_content(model="wyoming", contents="capital of Wyoming?")
    assert answer.text == "".join(_texts(_recorded("wyoming.sse")))
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP


def test_count_tokens_and_model_list(server: ReplayServer) -> None:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url))
    counted = client.models.count_tokens(model="wyoming", contents="capital of Wyoming?")
    assert counted.total_tokens == _recorded("wyoming.sse")[-1]["usageMetadata"]["promptTokenCount"]
    names = {model.name for model in client.models.list()}
    assert "models/gemini-2.0-flash" in names


def test_a_recorded_mid_stream_error_raises_server_error_after_the_first_chunks(server: ReplayServer) -> None:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url))
    got = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model="midstream-error", contents="hi"):
            got.append(chunk.text)
    assert got == _texts(_recorded("midstream-error.sse"))
    assert len(got) == 2
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")
    assert caught.value.message == "The model is overloaded. Please try again later."


def test_a_recorded_429_raises_client_error_with_its_details(server: ReplayServer) -> None:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="quota-429", contents="hi")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"


def test_a_wrong_key_is_refused_as_the_api_does() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, require_key="right") as keyed:
        client = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=keyed.url))
        with pytest.raises(errors.ClientError) as caught:
            client.models.generate_content(model="gemini-2.0-flash", contents="hi")
        assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
        good = genai.Client(api_key="right", http_options=types.HttpOptions(base_url=keyed.url))
        assert good.models.generate_content(model="gemini-2.0-flash", contents="hi").text


def test_a_scripted_stream_reaches_the_sdk_as_written() -> None:
    script = (
        GeminiScript("gemini-2.5-flash")
        .thought("Thinking about greetings.")
        .text("Hello from a script")
        .function_call("get_weather", {"city": "Paris"}, id="call-1")
        .usage(prompt=5)
    )
    with ReplayServer(script, speed=0) as scripted:
        client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=scripted.url))
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "Hello from a script"
    calls = [call for c in chunks for call in (c.function_calls or [])]
    assert [(call.name, call.args, call.id) for call in calls] == [
        ("get_weather", {"city": "Paris"}, "call-1")
    ]
    assert chunks[-1].usage_metadata.prompt_token_count == 5
