"""API error bodies become typed errors: 4xx/5xx families, code/status/message/details, retry delay."""

from __future__ import annotations

import pathlib

import pytest

from sse_toolkit import (
    ClientError,
    GeminiAPIError,
    GeminiError,
    MissingDependencyError,
    PromptBlockedError,
    ServerError,
    SSEError,
    error_body,
)
from sse_toolkit.gemini._errors import parse_duration

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def test_from_body_bytes_of_the_429_capture() -> None:
    error = GeminiAPIError.from_body((DATA / "error-429-quota.json").read_bytes(), http_status=429)
    assert type(error) is ClientError
    assert isinstance(error, GeminiError) and isinstance(error, SSEError)
    assert (error.code, error.status, error.retry_delay) == (429, "RESOURCE_EXHAUSTED", 7.0)
    assert str(error).startswith("error 429 RESOURCE_EXHAUSTED: You exceeded your current quota")


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        (400, "INVALID_ARGUMENT", ClientError),
        (404, "NOT_FOUND", ClientError),
        (500, "INTERNAL", ServerError),
        (503, "UNAVAILABLE", ServerError),
        (504, "DEADLINE_EXCEEDED", ServerError),
        (200, "", GeminiAPIError),
    ],
)
def test_code_picks_the_family(code: int, status: str, cls: type) -> None:
    error = GeminiAPIError.from_body(error_body(code, status, "m"))
    assert type(error) is cls and error.code == code and error.status == status and error.details == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7s", 7.0), ("0.5s", 0.5), ("1.000340s", 1.00034), ("7", None), ("xs", None), (3, None)],
)
def test_retry_delay_is_seconds_from_retry_info(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": text}]
    assert GeminiAPIError.from_body({"error": {"code": 429, "details": details}}).retry_delay == seconds


def test_openai_compatible_error_array_and_non_json_bodies() -> None:
    error = GeminiAPIError.from_body((DATA / "openai-error-429.synthetic.json").read_bytes())
    assert type(error) is ClientError and error.status == "RESOURCE_EXHAUSTED" and error.retry_delay is None
    page = GeminiAPIError.from_body(b"<html>\n<h1>Bad Gateway</h1>\n</html>", http_status=502)
    assert (
        type(page) is ServerError
        and page.code == 502
        and page.message == "<html> <h1>Bad Gateway</h1> </html>"
    )


def test_blocked_error_names_the_reason() -> None:
    from sse_toolkit import GenerateContentResponse

    response = GenerateContentResponse.from_dict({"promptFeedback": {"blockReason": "OTHER"}})
    error = PromptBlockedError("OTHER", response, "custom\nreason")
    assert str(error) == "prompt blocked: OTHER (custom reason)" and error.partial is response


def test_missing_dependency_error_is_an_import_error_and_an_sse_error() -> None:
    assert issubclass(MissingDependencyError, ImportError) and issubclass(MissingDependencyError, SSEError)
