"""The openai SDK (and litellm's OpenAI path) against the replay server's OpenAI-compatible routes
(``{base}/v1beta/openai/``), made from Gemini fixtures: streamed, unary, with ``include_usage``, with a tool
call, the model listing, and errors; on the shipped fixtures and on the recordings directory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _frameworks import FIXTURES, Served, fixture_text

from sse_toolkit import ReplayServer

openai = pytest.importorskip("openai")

WEATHER_MODEL = "gemini-2.5-flash"
WEATHER_PROMPT = "What's the weather in Paris?"  # weather-tool.jsonl's recorded prompt
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def weather() -> Iterator[ReplayServer]:
    """The shipped fixtures, asked the weather prompt (weather-tool.jsonl, a recorded tool call)."""
    with ReplayServer(FIXTURES, speed=0) as server:
        yield server


def _client(url: str) -> Any:
    return openai.OpenAI(api_key="test-key", base_url=url + "/v1beta/openai/", max_retries=0)


def _ask(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def test_openai_sdk_streams_the_answer(served: Served) -> None:
    stream = _client(served.url).chat.completions.create(
        model=served.model, messages=_ask(served.prompt), stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == served.text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert {c.model for c in chunks} == {served.model}
    entry = served.server.requests[-1]
    assert (entry.kind, entry.model, entry.status, entry.end) == ("stream", served.model, 200, "complete")
    assert entry.header("authorization") == "Bearer test-key" and "test-key" not in str(entry.headers)


def test_openai_sdk_stream_with_include_usage_gets_the_fixture_usage(served: Served) -> None:
    stream = _client(served.url).chat.completions.create(
        model=served.model,
        messages=_ask(served.prompt),
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert len(usage) == 1 and usage[0].total_tokens == served.total_tokens


def test_openai_sdk_unary_gets_one_completion(served: Served) -> None:
    answer = _client(served.url).chat.completions.create(model=served.model, messages=_ask(served.prompt))
    assert answer.choices[0].message.content == served.text
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens == served.total_tokens
    assert served.server.requests[-1].kind == "unary"


def test_openai_sdk_gets_the_tool_call_streamed_and_unary(weather: ReplayServer) -> None:
    client = _client(weather.url)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model=WEATHER_MODEL, messages=_ask(WEATHER_PROMPT), tools=[WEATHER_TOOL], stream=True
    ):
        for call in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] = call.id or entry["id"]
            entry["name"] = (call.function and call.function.name) or entry["name"]
            entry["arguments"] += (call.function and call.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert calls == {0: {"id": "call_0", "name": "get_weather", "arguments": '{"city":"Paris"}'}}
    answer = client.chat.completions.create(
        model=WEATHER_MODEL, messages=_ask(WEATHER_PROMPT), tools=[WEATHER_TOOL]
    )
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls"
    assert message.content == fixture_text("weather-tool.jsonl")
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()] == [
        ("call_0", "get_weather", '{"city":"Paris"}')
    ]


def test_openai_sdk_lists_and_retrieves_models(served: Served) -> None:
    client = _client(served.url)
    assert f"models/{served.model}" in [m.id for m in client.models.list()]
    assert client.models.retrieve(served.model).id == f"models/{served.model}"


def test_openai_sdk_gets_not_found_for_a_model_no_fixture_answers(recordings_server: ReplayServer) -> None:
    client = _client(recordings_server.url)
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gemini-9-ultra")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gemini-9-ultra", messages=_ask("Hi"))
    assert info.value.body[0]["error"]["status"] == "NOT_FOUND"


def test_openai_sdk_raises_rate_limit_error_on_a_429(served: Served) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        _client(served.url).chat.completions.create(
            model=served.model,
            messages=_ask(served.prompt),
            extra_headers={"x-sse-replay-faults": "status=429, retry-after=2"},
        )
    assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "2"
    # Gemini's compatibility layer answers a list, which the SDK keeps as the body (tests/data sample)
    assert info.value.body[0]["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_openai_sdk_raises_on_an_error_inside_the_stream(served: Served) -> None:
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in _client(served.url).chat.completions.create(
            model=served.model,
            messages=_ask(served.prompt),
            stream=True,
            extra_headers={"x-sse-replay-faults": "error-after=1"},
        ):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) and served.text.startswith("".join(got)) and "".join(got) != served.text
    assert "overloaded" in str(info.value)
    assert served.server.requests[-1].end == "error"


def test_a_scripted_429_then_the_answer_is_judged_like_a_gemini_call(served: Served) -> None:
    served.server.script({"status": 429, "retry_after": 0.2}, "ok")
    client = openai.OpenAI(api_key="k", base_url=served.url + "/v1beta/openai/", max_retries=2)
    answer = client.chat.completions.create(model=served.model, messages=_ask(served.prompt))
    assert answer.choices[0].message.content == served.text
    assert [e.status for e in served.server.requests] == [429, 200]
    served.server.assert_resilient(result_text=answer.choices[0].message.content)


def test_litellm_openai_path_streams_and_answers_unary(served: Served) -> None:
    litellm = pytest.importorskip("litellm")
    options: dict[str, Any] = {
        "model": f"openai/{served.model}",
        "api_base": served.url + "/v1beta/openai/",
        "api_key": "test-key",
        "messages": _ask(served.prompt),
    }
    answer = litellm.completion(**options)
    assert answer.choices[0].message.content == served.text
    streamed = "".join(c.choices[0].delta.content or "" for c in litellm.completion(stream=True, **options))
    assert streamed == served.text
