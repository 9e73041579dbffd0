"""google-genai against the replay server through its own base-URL setting: the Gemini API (stream, unary,
the README's usage example, models.get with the token limits, the environment variables an app's own
``genai.Client()`` reads) and Vertex AI (project and location with credentials, express mode with an API
key, models.get), each on the shipped fixtures and on the recordings directory."""

from __future__ import annotations

from typing import Any

import pytest
from _frameworks import MODEL, PROMPT, Served, served_fixtures

from sse_toolkit import ReplayServer

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")
oauth2 = pytest.importorskip("google.oauth2.credentials")


def _gemini(url: str, **http: Any) -> Any:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url, **http))


def _vertex(url: str, **http: Any) -> Any:
    return genai.Client(
        vertexai=True,
        project="test-project",
        location="us-central1",
        credentials=oauth2.Credentials("test-token"),
        http_options=types.HttpOptions(base_url=url, **http),
    )


def _express(url: str) -> Any:
    return genai.Client(vertexai=True, api_key="test-key", http_options=types.HttpOptions(base_url=url))


def _stream_text(client: Any, served: Served) -> str:
    chunks = client.models.generate_content_stream(model=served.model, contents=served.prompt)
    return "".join(chunk.text or "" for chunk in chunks)


def _unary_text(client: Any, served: Served) -> str:
    return str(client.models.generate_content(model=served.model, contents=served.prompt).text)


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_gemini_api_streams_and_answers_unary(served: Served, api_version: str | None) -> None:
    client = _gemini(served.url, **({"api_version": api_version} if api_version else {}))
    assert _stream_text(client, served) == served.text
    assert _unary_text(client, served) == served.text


def test_the_readme_usage_example_works_on_the_served_answer(served: Served) -> None:
    client = _gemini(served.url)  # kept: a client that is garbage-collected closes its connection
    answer = client.models.generate_content(model=served.model, contents=served.prompt)
    assert (
        answer.usage_metadata is not None and answer.usage_metadata.total_token_count == served.total_tokens
    )
    assert answer.model_version == served.model and answer.response_id


def test_an_app_that_builds_its_own_client_is_redirected_by_the_environment(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", served.url)
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    client = genai.Client()  # what application code does
    assert _stream_text(client, served) == served.text
    assert served.server.requests[-1].path.endswith(f"/models/{served.model}:streamGenerateContent")


def test_models_get_gives_the_token_limits(served: Served) -> None:
    client = _gemini(served.url)  # kept: a client that is garbage-collected closes its connection
    model = client.models.get(model=served.model)
    assert (model.input_token_limit, model.output_token_limit) == served.limits


@pytest.mark.parametrize("api_version", [None, "v1"])
def test_vertex_ai_streams_and_answers_unary(served: Served, api_version: str | None) -> None:
    client = _vertex(served.url, **({"api_version": api_version} if api_version else {}))
    assert _stream_text(client, served) == served.text
    assert _unary_text(client, served) == served.text
    version = api_version or "v1beta1"
    prefix = f"/{version}/projects/test-project/locations/us-central1/publishers/google/models/{served.model}"
    assert [e.path for e in served.server.requests] == [
        f"{prefix}:streamGenerateContent",
        f"{prefix}:generateContent",
    ]
    journaled = served.server.requests[0]
    assert journaled.header("authorization") == "Bearer test-token"  # as received
    assert ("Authorization", "Bearer REDACTED") in [(k.title(), v) for k, v in journaled.headers]


def test_vertex_ai_express_mode_streams_and_answers_unary(served: Served) -> None:
    client = _express(served.url)
    assert _stream_text(client, served) == served.text
    assert _unary_text(client, served) == served.text
    assert (
        served.server.requests[0].path
        == f"/v1beta1/publishers/google/models/{served.model}:streamGenerateContent"
    )


def test_vertex_ai_models_get_answers_the_publisher_model(served: Served) -> None:
    client = _vertex(served.url)
    model = client.models.get(model=served.model)
    assert model.name == f"publishers/google/models/{served.model}"
    assert served.server.requests[-1].path == f"/v1beta1/publishers/google/models/{served.model}"


def test_require_key_accepts_the_vertex_bearer_token(fixtures_server: ReplayServer) -> None:
    fixtures_server.app.require_key = "test-token"
    client = _vertex(fixtures_server.url)
    assert _unary_text(client, served_fixtures(fixtures_server)) == served_fixtures(fixtures_server).text
    wrong = genai.Client(
        vertexai=True,
        project="p",
        location="us-central1",
        credentials=oauth2.Credentials("another-token"),
        http_options=types.HttpOptions(base_url=fixtures_server.url),
    )
    with pytest.raises(genai.errors.ClientError) as info:
        wrong.models.generate_content(model=MODEL, contents=PROMPT)
    assert info.value.code == 400
