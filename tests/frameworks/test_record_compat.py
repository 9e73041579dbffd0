"""The recorder records the OpenAI-compatible endpoint like any other (an openai SDK stream through a
``RecordingProxy`` to an upstream that serves the converters' output), and the replay server serves that
recording as recorded: byte for byte to the same request, converted to one completion when asked without
streaming, preferred over a Gemini fixture of the same conversation, and never on the Gemini routes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from _frameworks import FIXTURES, MODEL, PROMPT, STORY, CompatServer

from sse_toolkit import ReplayServer, load_fixture
from sse_toolkit.record import RecordingProxy

openai = pytest.importorskip("openai")

KEY = "sk-recording-key-0123456789"
ASK = [{"role": "user", "content": PROMPT}]


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """An openai SDK stream (with ``include_usage``) recorded through the proxy into ``chat.jsonl``."""
    out = tmp_path / "chat.jsonl"
    with CompatServer("cats.jsonl") as upstream, RecordingProxy(upstream.url, out) as proxy:
        client = openai.OpenAI(api_key=KEY, base_url=proxy.url + "/v1beta/openai/", max_retries=0)
        stream = client.chat.completions.create(
            model=MODEL, messages=ASK, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == STORY
    proxy.check()
    return out


def _body(stream: bool) -> dict[str, object]:
    return {"model": MODEL, "messages": ASK, "stream": stream, "stream_options": {"include_usage": True}}


def test_the_recording_keeps_the_request_without_the_key(recorded: Path) -> None:
    exchange = load_fixture(recorded).exchanges[0]
    assert exchange.request is not None
    assert (exchange.request.method, exchange.request.path) == ("POST", "/v1beta/openai/chat/completions")
    assert json.loads(exchange.request.body)["stream"] is True
    assert KEY.encode() not in recorded.read_bytes()
    assert exchange.body.endswith(b"data: [DONE]\n\n") and b'"usage"' in exchange.body


def test_the_same_request_gets_the_recording_byte_for_byte(recorded: Path) -> None:
    recorded_body = load_fixture(recorded).exchanges[0].body
    with ReplayServer(recorded, speed=0) as server:
        raw = httpx.post(server.url + "/v1beta/openai/chat/completions", json=_body(True))
        client = openai.OpenAI(api_key="k", base_url=server.url + "/v1beta/openai/", max_retries=0)
        chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, stream=True))
    assert raw.status_code == 200 and raw.content == recorded_body
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == STORY
    assert [c.usage.total_tokens for c in chunks if c.usage] == [49]  # as recorded, whatever was asked


def test_asked_without_streaming_the_recorded_stream_is_one_completion(recorded: Path) -> None:
    with ReplayServer(recorded, speed=0) as server:
        client = openai.OpenAI(api_key="k", base_url=server.url + "/v1beta/openai/", max_retries=0)
        answer = client.chat.completions.create(model=MODEL, messages=ASK)
    assert answer.choices[0].message.content == STORY
    assert answer.choices[0].finish_reason == "stop" and answer.usage is not None
    assert answer.usage.total_tokens == 49


def test_among_the_shipped_fixtures_the_recording_of_the_endpoint_wins(recorded: Path) -> None:
    recorded_body = load_fixture(recorded).exchanges[0].body
    with ReplayServer([FIXTURES, recorded], speed=0) as server:
        chat = httpx.post(server.url + "/v1beta/openai/chat/completions", json=_body(True))
        gemini = httpx.post(
            server.url + f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
            json={"contents": [{"parts": [{"text": PROMPT}]}]},
        )
    assert chat.content == recorded_body
    assert gemini.content == load_fixture(FIXTURES / "cats.jsonl").exchanges[0].body


def test_a_recording_of_the_endpoint_does_not_answer_the_gemini_routes(recorded: Path) -> None:
    with ReplayServer(recorded, speed=0) as server:
        response = httpx.post(server.url + f"/v1beta/models/{MODEL}:generateContent", json={})
    assert response.status_code == 404
    assert response.json()["error"]["available"][0]["kind"] == "openai"


def test_a_recorded_completion_asked_as_a_stream_is_one_chunk_then_done(tmp_path: Path) -> None:
    out = tmp_path / "unary.jsonl"
    with CompatServer("cats.jsonl") as upstream, RecordingProxy(upstream.url, out) as proxy:
        client = openai.OpenAI(api_key=KEY, base_url=proxy.url + "/v1beta/openai/", max_retries=0)
        assert client.chat.completions.create(model=MODEL, messages=ASK).choices[0].message.content == STORY
    proxy.check()
    with ReplayServer(out, speed=0) as server:
        body = httpx.post(server.url + "/v1beta/openai/chat/completions", json=_body(True)).content
    events = [event for event in body.split(b"\n\n") if event]
    assert len(events) == 2 and events[-1] == b"data: [DONE]"
    chunk = json.loads(events[0][len(b"data: ") :])
    assert chunk["choices"][0]["delta"]["content"] == STORY and chunk["usage"]["total_tokens"] == 49
