"""The replay app's routing is one table of (methods, path pattern, journal kind, handler) rows: each
documented route lands on its row, the journal files each request under its row's kind, and an OPTIONS
preflight is journaled under the kind of the path it asks about."""

from __future__ import annotations

import pathlib

import httpx
import pytest

from sse_toolkit.replay import ReplayServer, RequestKind
from sse_toolkit.replay._app import ROUTES, GeminiReplayApp, find_route

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.parametrize(
    ("method", "path", "kind", "handler", "model"),
    [
        ("GET", "/v1beta/models", RequestKind.MODELS, GeminiReplayApp.models_list, None),
        ("GET", "/v1/models/", RequestKind.MODELS, GeminiReplayApp.models_list, None),
        (
            "GET",
            "/v1beta/models/gemini-2.0-flash",
            RequestKind.MODELS,
            GeminiReplayApp.model_info,
            "gemini-2.0-flash",
        ),
        (
            "POST",
            "/v1beta/models/gemini-2.0-flash",
            RequestKind.MODELS,
            GeminiReplayApp.not_replayed,
            "gemini-2.0-flash",
        ),
        ("POST", "/v1beta/models/m:streamGenerateContent", RequestKind.STREAM, GeminiReplayApp.stream, "m"),
        ("GET", "/v1alpha/models/m:streamGenerateContent", RequestKind.STREAM, GeminiReplayApp.stream, "m"),
        ("POST", "/v1/models/m:generateContent", RequestKind.UNARY, GeminiReplayApp.unary, "m"),
        ("POST", "/v1/models/m:countTokens", RequestKind.COUNT, GeminiReplayApp.unary, "m"),
        ("POST", "/v1/models/m:embedContent", RequestKind.OTHER, GeminiReplayApp.not_replayed, "m"),
        # Vertex AI: the same rows, with the project and location (or express mode's bare publisher)
        (
            "POST",
            "/v1beta1/projects/p/locations/us-central1/publishers/google/models/m:streamGenerateContent",
            RequestKind.STREAM,
            GeminiReplayApp.stream,
            "m",
        ),
        (
            "POST",
            "/v1/publishers/google/models/m:generateContent",
            RequestKind.UNARY,
            GeminiReplayApp.unary,
            "m",
        ),
        ("GET", "/v1beta1/publishers/google/models/m", RequestKind.MODELS, GeminiReplayApp.model_info, "m"),
        # no version (a client given the bare server URL as its API base)
        ("POST", "/models/m:generateContent", RequestKind.UNARY, GeminiReplayApp.unary, "m"),
        ("GET", "/models", RequestKind.MODELS, GeminiReplayApp.models_list, None),
        # the OpenAI-compatible endpoint
        ("POST", "/v1beta/openai/chat/completions", RequestKind.UNARY, GeminiReplayApp.chat, None),
        ("GET", "/v1beta/openai/models", RequestKind.MODELS, GeminiReplayApp.openai_models, None),
        ("GET", "/v1beta/openai/models/models/m", RequestKind.MODELS, GeminiReplayApp.openai_model, "m"),
        ("POST", "/v1beta/openai/embeddings", RequestKind.OTHER, GeminiReplayApp.not_replayed, None),
        (
            "POST",
            "/v1/projects/p/locations/l/endpoints/openapi/chat/completions",
            RequestKind.UNARY,
            GeminiReplayApp.chat,
            None,
        ),
        ("GET", "/stream/anything", RequestKind.SSE, GeminiReplayApp.generic, None),
        ("GET", "/v1beta/models/m:", RequestKind.SSE, GeminiReplayApp.generic, None),  # no method: not Gemini
        ("GET", "/", RequestKind.SSE, GeminiReplayApp.generic, None),
    ],
)
def test_each_documented_route_lands_on_its_row(
    method: str, path: str, kind: RequestKind, handler: object, model: str | None
) -> None:
    route, match = find_route(method, path)
    found = match.groupdict().get("model")
    assert (route.kind, route.handler, found and found.removeprefix("models/")) == (kind, handler, model)


def test_the_last_row_takes_every_path() -> None:
    assert ROUTES[-1].handler is GeminiReplayApp.generic
    assert all(find_route(m, p)[0] is ROUTES[-1] for m in ("GET", "DELETE") for p in ("/x", "/_x/y", "//"))


def test_a_path_routed_again_lands_on_the_same_row_for_its_method_and_the_routes_kept_stay_bounded() -> None:
    from sse_toolkit.replay import _app

    path = "/v1beta/models/gemini-2.0-flash"
    for _ in range(2):  # the second time from the routes kept; the method is part of the key
        assert find_route("GET", path)[0].handler is GeminiReplayApp.model_info
        assert find_route("POST", path)[0].handler is GeminiReplayApp.not_replayed
    for n in range(5000):  # a client asking ever new paths
        assert find_route("POST", f"/v1beta/models/m{n}:generateContent")[1]["model"] == f"m{n}"
    assert len(_app._found) <= _app._FOUND_MAX


def test_the_journal_files_each_request_under_its_routes_kind_and_model() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0) as server, httpx.Client(base_url=server.url) as c:
        c.get("/v1beta/models")
        c.post("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", json={})
        c.post("/v1beta/models/gemini-2.0-flash:countTokens", json={})
        c.request("OPTIONS", "/v1beta/models/gemini-2.0-flash:generateContent")
        c.get("/anything")
        c.get("/_sse/journal")  # control: never journaled
        kinds = [(e.kind, e.model, e.status) for e in server.requests]
    assert kinds == [
        (RequestKind.MODELS, None, 200),
        (RequestKind.STREAM, "gemini-2.0-flash", 200),
        (RequestKind.COUNT, "gemini-2.0-flash", 200),
        (RequestKind.UNARY, "gemini-2.0-flash", 204),
        (RequestKind.SSE, None, 200),  # the only fixture is served on any other path
    ]


def test_one_request_kind_names_each_gemini_method_and_every_other_method_is_other() -> None:
    """The journal's kind and the catalog's matching use one enum; the Gemini method names map both ways."""
    for kind in (RequestKind.STREAM, RequestKind.UNARY, RequestKind.COUNT):
        assert RequestKind.of_method(kind.method) is kind
    assert RequestKind.STREAM.method == "streamGenerateContent"
    assert RequestKind.of_method("embedContent") is RequestKind.OTHER
    with pytest.raises(ValueError, match="names no Gemini method"):
        RequestKind.MODELS.method  # noqa: B018
