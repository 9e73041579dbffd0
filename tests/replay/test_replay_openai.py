"""The OpenAI-compatible routes of the replay server (``{version}/openai/``), with httpx as the client: the
stream's wire shape and timing from a Gemini fixture, unary answers, usage when asked, the same matching as
the Gemini routes (a chat request finds the recording of the same conversation), faults and scripted steps
in the compatibility layer's error shapes, the journal and verdict, keys as bearer tokens, models, and
embeddings (served only from a recording of that endpoint)."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

from sse_toolkit import iter_chat_chunks, merge_chat_chunks
from sse_toolkit.fixture._model import Chunk, Exchange, Fixture, RecordedRequest
from sse_toolkit.gemini._merge import merge_responses
from sse_toolkit.gemini._stream import iter_responses
from sse_toolkit.replay import ReplayServer, RequestKind
from sse_toolkit.replay._openai import DONE_EVENT
from sse_toolkit.server._http import ReplayRequest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
CHAT = "/v1beta/openai/chat/completions"
PROMPT = "Write a cute story about cats."


def _story() -> str:
    return merge_responses(iter_responses([(FIXTURES / "cats.sse").read_bytes()])).text or ""


def _chat(stream: bool = True, model: str = "gemini-2.0-flash", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream, **extra}


def _events(body: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in body.split(b"\n\n") if event]


def test_a_gemini_fixture_streams_as_chat_chunks_then_done() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        response = httpx.post(server.url + CHAT, json=_chat())
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = _events(response.content)
    assert events[-1] == DONE_EVENT and len(events) == 3  # one chunk per Gemini event, then [DONE]
    first = json.loads(events[0][len(b"data: ") :])
    assert list(first) == sorted(first) and first["object"] == "chat.completion.chunk"
    assert first["model"] == "gemini-2.0-flash" and isinstance(first["created"], int)
    result = merge_chat_chunks(iter_chat_chunks([response.content]))
    assert (result.text, result.finish_reason, result.usage) == (_story(), "stop", None)


def test_each_chunk_is_planned_at_the_time_its_gemini_event_was_recorded() -> None:
    # cats.jsonl records its two events at 50 and 100 ms; [DONE] goes when the recording ended
    with ReplayServer(FIXTURES / "cats.jsonl", speed=1) as server:
        request = ReplayRequest("POST", CHAT, "", [], json.dumps(_chat()).encode())
        reply = server.app(request)
        planned = [(t, data[:8]) for t, data in reply.chunks]
    assert planned == [(0.05, b'data: {"'), (0.1, b'data: {"'), (0.1, b"data: [D")]


def test_include_usage_puts_the_fixture_usage_on_the_last_chunk() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        body = httpx.post(server.url + CHAT, json=_chat(stream_options={"include_usage": True})).content
    chunks = list(iter_chat_chunks([body]))
    assert [c.get("usage") for c in chunks] == [
        None,
        {"completion_tokens": 42, "prompt_tokens": 7, "total_tokens": 49},
    ]


def test_unary_is_one_chat_completion() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        response = httpx.post(server.url + CHAT, json=_chat(stream=False))
        entry = server.requests[-1]
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"content": _story(), "role": "assistant"}
    assert completion["usage"]["total_tokens"] == 49
    assert (entry.kind, entry.model, entry.events) == (RequestKind.UNARY, "gemini-2.0-flash", 1)


def test_the_chat_request_finds_the_recording_of_its_conversation() -> None:
    # Two fixtures for one model; only the conversation tells them apart, compared in Gemini's shape.
    from sse_toolkit import GeminiScript

    def fixture(prompt: str, answer: str) -> Fixture:
        return GeminiScript("gemini-2.5-flash", prompt=prompt).text(answer).to_fixture()

    with ReplayServer([fixture("cats?", "Meow."), fixture("dogs?", "Woof.")], speed=0) as server:
        for prompt, answer in [("dogs?", "Woof."), ("cats?", "Meow.")]:
            body = {
                "model": "gemini-2.5-flash",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
                "temperature": 0.2,
            }
            got = httpx.post(server.url + CHAT, json=body).json()
            assert got["choices"][0]["message"]["content"] == answer


def test_a_status_fault_is_the_compatibility_error_list_with_retry_after() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        server.add_faults(status=429, retry_after=0.5)
        limited = httpx.post(server.url + CHAT, json=_chat())
        server.add_faults(status=503)
        overloaded = httpx.post(server.url + CHAT, json=_chat(stream=False))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert limited.json() == [
        {
            "error": {
                "code": 429,
                "message": limited.json()[0]["error"]["message"],
                "status": "RESOURCE_EXHAUSTED",
            }
        }
    ]
    assert overloaded.status_code == 503 and overloaded.json()[0]["error"]["status"] == "UNAVAILABLE"


def test_error_after_sends_the_error_event_and_no_done() -> None:
    with ReplayServer(FIXTURES, speed=0, error_after=1) as server:
        body = httpx.post(server.url + CHAT, json=_chat()).content
        entry = server.requests[-1]
    events = _events(body)
    assert len(events) == 2 and DONE_EVENT not in events
    assert json.loads(events[1][len(b"data: ") :])["error"]["code"] == 503
    assert (entry.kind, entry.end, entry.events) == (RequestKind.STREAM, "error", 1)


def test_a_recorded_mid_stream_error_becomes_the_error_event() -> None:
    with ReplayServer(FIXTURES / "midstream-error.sse", speed=0) as server:
        stream = httpx.post(server.url + CHAT, json=_chat()).content
        unary = httpx.post(server.url + CHAT, json=_chat(stream=False))
    assert _events(stream)[-1].startswith(b'data: {"error":{"code":503')
    assert unary.status_code == 503 and unary.json()[0]["error"]["status"] == "UNAVAILABLE"


def test_truncate_after_ends_cleanly_without_finish_reason_and_the_journal_says_truncated() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, truncate_after=2) as server:
        body = httpx.post(server.url + CHAT, json=_chat()).content
        entry = server.requests[-1]
    assert b"finish_reason" not in body and DONE_EVENT not in body and len(_events(body)) == 2
    assert entry.end == "truncated"


def test_scripted_steps_are_journaled_and_judged_like_gemini_calls() -> None:
    script = [{"status": 500}, {"truncate_after": 1}, "ok"]
    with ReplayServer(FIXTURES, speed=0, script=script) as server, httpx.Client() as client:
        statuses = [client.post(server.url + CHAT, json=_chat()).status_code for _ in range(3)]
        steps = [(e.step, str(e.outcome)) for e in server.requests]
    assert statuses == [500, 200, 200]
    assert steps == [(0, "server-error"), (1, "truncated"), (2, "ok")]
    with ReplayServer(FIXTURES, speed=0, script=[{"status": 503}]) as server:
        httpx.post(server.url + CHAT, json=_chat(stream=False))
        findings = server.verdict(strict=True)
    assert [(f.code, str(f.severity)) for f in findings] == [("gave-up", "error")]


def test_a_recorded_error_status_is_answered_in_the_compatibility_shape() -> None:
    with ReplayServer(FIXTURES / "quota-429.http", speed=0) as server:
        response = httpx.post(server.url + CHAT, json=_chat())
    assert response.status_code == 429
    assert response.json()[0]["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_keys_come_as_bearer_tokens_and_are_redacted_in_the_journal() -> None:
    with ReplayServer(FIXTURES, speed=0, require_key="the-key-0123") as server:
        missing = httpx.post(server.url + CHAT, json=_chat())
        wrong = httpx.post(server.url + CHAT, json=_chat(), headers={"Authorization": "Bearer nope"})
        right = httpx.post(server.url + CHAT, json=_chat(), headers={"Authorization": "Bearer the-key-0123"})
        entry = server.requests[-1]
    assert (missing.status_code, wrong.status_code, right.status_code) == (403, 400, 200)
    assert missing.json()[0]["error"]["status"] == "PERMISSION_DENIED"
    assert wrong.json()[0]["error"]["message"] == "API key not valid. Please pass a valid API key."
    assert entry.header("authorization") == "Bearer the-key-0123"
    assert "the-key-0123" not in json.dumps(entry.to_dict())


def test_a_bad_chat_request_gets_a_400_naming_the_field() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        response = httpx.post(server.url + CHAT, json={"model": "m", "messages": "hi"})
    assert response.status_code == 400
    assert "'messages' must be a non-empty list" in response.json()[0]["error"]["message"]


def test_an_unknown_model_gets_a_404_list_naming_what_is_available() -> None:
    with ReplayServer([FIXTURES / "wyoming.sse", FIXTURES / "thinking.sse"], speed=0) as server:
        response = httpx.post(server.url + CHAT, json=_chat(model="gemini-9-ultra"))
    assert response.status_code == 404
    error = response.json()[0]["error"]
    assert "gemini-9-ultra" in error["message"] and {e["kind"] for e in error["available"]} == {"gemini"}


def test_models_list_and_retrieve_in_openai_shape() -> None:
    with ReplayServer([FIXTURES / "wyoming.sse", FIXTURES / "thinking.sse"], speed=0) as server:
        listing = httpx.get(server.url + "/v1beta/openai/models").json()
        one = httpx.get(server.url + "/v1beta/openai/models/models/gemini-2.0-flash")
        missing = httpx.get(server.url + "/v1beta/openai/models/gemini-9-ultra")
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["models/gemini-2.0-flash", "models/gemini-2.5-flash"]
    assert one.json() == {
        "created": 0,
        "id": "models/gemini-2.0-flash",
        "object": "model",
        "owned_by": "google",
    }
    assert missing.status_code == 404 and missing.json()[0]["error"]["code"] == 404


def _embedding_fixture() -> Fixture:
    body = b'{"data":[{"embedding":[0.25,-0.5],"index":0,"object":"embedding"}],"object":"list"}'
    request = RecordedRequest("POST", "/v1beta/openai/embeddings", "", [], b'{"input":"hi","model":"e"}')
    return Fixture(
        [Exchange(request=request, headers=[("Content-Type", "application/json")], chunks=[Chunk(body, 0.0)])]
    )


def test_embeddings_are_served_only_from_a_recording_of_that_endpoint() -> None:
    embeddings = "/v1beta/openai/embeddings"
    with ReplayServer(FIXTURES, speed=0) as server:
        refused = httpx.post(server.url + embeddings, json={"input": "hi", "model": "e"})
    assert refused.status_code == 404
    assert "sse-record" in refused.json()[0]["error"]["message"]
    with ReplayServer([FIXTURES / "wyoming.sse", _embedding_fixture()], speed=0) as server:
        served = httpx.post(server.url + embeddings, json={"input": "hi", "model": "e"})
    assert served.status_code == 200 and served.json()["data"][0]["embedding"] == [0.25, -0.5]


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_chat_completions_takes_post_only(method: str) -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        response = httpx.request(method, server.url + CHAT)
    assert response.status_code == 404 and "takes POST" in response.json()[0]["error"]["message"]
