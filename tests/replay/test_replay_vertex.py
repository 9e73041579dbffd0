"""The Vertex AI routes (``projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`` and express
mode's ``publishers/google/models/{m}:{method}``, any version) answer as the Gemini API routes do, with
the same matching, faults and journal; the bearer token counts as the key and never shows in the journal;
and a model path without a version (a client given the bare server URL as its base) is served too."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

from sse_toolkit.replay import ReplayServer, RequestKind

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
PROJECT = "/projects/my-project/locations/us-central1"
MODEL = "/publishers/google/models/gemini-2.0-flash"


@pytest.mark.parametrize(
    "path",
    [
        f"/v1beta1{PROJECT}{MODEL}",
        f"/v1{PROJECT}{MODEL}",
        f"/v1beta1{MODEL}",
        f"/v1{MODEL}",
        "/models/wyoming",
    ],
)
def test_vertex_and_unversioned_paths_stream_the_recorded_bytes(path: str) -> None:
    body = (FIXTURES / "wyoming.sse").read_bytes()
    with ReplayServer([FIXTURES / "wyoming.sse", FIXTURES / "thinking.sse"], speed=0) as server:
        streamed = httpx.post(f"{server.url}{path}:streamGenerateContent?alt=sse", json={})
        unary = httpx.post(f"{server.url}{path}:generateContent", json={})
        entry = server.requests[0]
    assert streamed.content == body and streamed.headers["content-type"] == "text/event-stream"
    assert unary.json()["candidates"][0]["content"]["parts"][0]["text"].startswith("The capital of Wyoming")
    assert (entry.kind, entry.model) == (RequestKind.STREAM, path.rsplit("/", 1)[-1])


def test_a_vertex_model_get_answers_the_publisher_model() -> None:
    with ReplayServer([FIXTURES / "wyoming.sse", FIXTURES / "thinking.sse"], speed=0) as server:
        found = httpx.get(f"{server.url}/v1beta1{MODEL}")
        missing = httpx.get(f"{server.url}/v1beta1/publishers/google/models/gemini-9-ultra")
    assert found.json()["name"] == "publishers/google/models/gemini-2.0-flash"
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_faults_and_scripts_apply_to_vertex_requests_with_the_gemini_error_body() -> None:
    url = f"{PROJECT}{MODEL}:streamGenerateContent?alt=sse"
    with ReplayServer(
        FIXTURES / "wyoming.sse", speed=0, script=[{"status": 503}, {"error_after": 1}]
    ) as server:
        overloaded = httpx.post(f"{server.url}/v1beta1{url}", json={})
        broken = httpx.post(f"{server.url}/v1beta1{url}", json={})
        ends = [e.end for e in server.requests]
    assert overloaded.status_code == 503 and overloaded.json()["error"]["status"] == "UNAVAILABLE"
    assert broken.content.endswith(b"}\n") and b'"code": 503' in broken.content
    assert ends == ["complete", "error"]


def test_the_bearer_token_is_a_key_and_is_redacted_in_the_journal() -> None:
    url = f"/v1beta1{PROJECT}{MODEL}:generateContent"
    token = "ya29.a-very-secret-access-token"
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, require_key=True) as server:
        missing = httpx.post(server.url + url, json={})
        with_token = httpx.post(server.url + url, json={}, headers={"Authorization": f"Bearer {token}"})
        journal = httpx.get(server.url + "/_sse/journal").text
        entry = server.requests[-1]
    assert (missing.status_code, with_token.status_code) == (403, 200)
    assert token not in journal and "Bearer REDACTED" in journal
    assert entry.header("authorization") == f"Bearer {token}"  # what the test can still check
    assert json.loads(journal)["requests"][-1]["path"] == url
