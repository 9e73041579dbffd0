"""Vertex AI model paths parse into the model and method the Gemini routes answer (the paths are the ones
google-genai sends with ``vertexai=True``, as captured), and model metadata has plausible token limits with
their source."""

from __future__ import annotations

import pytest

from sse_toolkit import SSEUsageError
from sse_toolkit.replay._models import DEFAULT_LIMITS, KNOWN_MODELS, model_info
from sse_toolkit.replay._vertex import VertexPath, parse_vertex_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (  # google-genai vertexai=True with project and location (v1beta1 is its default version)
            "/v1beta1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.0-flash"
            ":streamGenerateContent",
            VertexPath(
                "v1beta1", "google", "gemini-2.0-flash", "streamGenerateContent", "my-proj", "us-central1"
            ),
        ),
        (
            "/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash:generateContent",
            VertexPath("v1", "google", "gemini-2.5-flash", "generateContent", "p", "global"),
        ),
        (  # express mode (API key, no project)
            "/v1beta1/publishers/google/models/gemini-2.0-flash:countTokens",
            VertexPath("v1beta1", "google", "gemini-2.0-flash", "countTokens"),
        ),
        (  # models.get, in both modes
            "/v1beta1/publishers/google/models/gemini-2.0-flash",
            VertexPath("v1beta1", "google", "gemini-2.0-flash", None),
        ),
    ],
)
def test_vertex_paths_give_model_and_method(path: str, expected: VertexPath) -> None:
    assert parse_vertex_path(path) == expected
    assert expected.express == (expected.project is None)


@pytest.mark.parametrize(
    "path",
    [
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent",  # the Gemini API route, not Vertex
        "/v1beta1/projects/p/publishers/google/models/m:generateContent",  # a project without a location
        "/v1beta1/projects/p/locations/l/publishers/google/models/:generateContent",  # no model
        "/publishers/google/models/m:generateContent",  # no version
        "/v1beta1/projects/p/locations/l/endpoints/openapi/chat/completions",  # Vertex's OpenAI route
    ],
)
def test_other_paths_are_not_vertex_model_paths(path: str) -> None:
    assert parse_vertex_path(path) is None


@pytest.mark.parametrize(
    ("name", "limits"),
    [
        ("gemini-2.0-flash", (1_048_576, 8_192)),
        ("models/gemini-2.0-flash-001", (1_048_576, 8_192)),
        ("gemini-2.0-flash-lite", (1_048_576, 8_192)),
        ("gemini-2.5-flash", (1_048_576, 65_536)),
        ("gemini-2.5-flash-lite-preview-06-17", (1_048_576, 65_536)),
        ("gemini-1.5-pro-002", (2_097_152, 8_192)),
        ("gemini-3-flash-preview", (1_048_576, 65_536)),
    ],
)
def test_known_models_get_their_published_limits(name: str, limits: tuple[int, int]) -> None:
    info = model_info(name)
    assert (info.input_token_limit, info.output_token_limit) == limits
    assert "ai.google.dev/gemini-api/docs/models/" in info.source
    doc = info.to_dict()
    assert doc["name"] == "models/" + name.removeprefix("models/")
    assert (doc["inputTokenLimit"], doc["outputTokenLimit"]) == limits


def test_a_name_no_model_page_covers_gets_the_default_and_says_so() -> None:
    info = model_info("cats")
    assert (info.input_token_limit, info.output_token_limit) == DEFAULT_LIMITS
    assert "default" in info.source
    assert model_info("gemini-2.0-flashy").source == info.source.replace("cats", "gemini-2.0-flashy")


def test_every_known_model_names_its_source() -> None:
    for family, (inp, out, source) in KNOWN_MODELS.items():
        assert inp > out > 0 and family.split("-")[1] in source


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_a_missing_model_name_is_refused(bad: object) -> None:
    with pytest.raises(SSEUsageError, match="model name"):
        model_info(bad)  # type: ignore[arg-type]
