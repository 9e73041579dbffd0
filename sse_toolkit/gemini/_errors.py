"""Gemini layer: the errors a Gemini stream can end in, typed as the API reports them.

    SSEError
    └── GeminiError                   anything the Gemini layer raises
        ├── GeminiAPIError            the API answered {"error": {code, message, status, details}}
        │   ├── ClientError           4xx (400 INVALID_ARGUMENT, 403, 404, 429 RESOURCE_EXHAUSTED)
        │   └── ServerError           5xx (500 INTERNAL, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED)
        ├── PromptBlockedError        promptFeedback.blockReason: no candidates at all
        ├── TruncatedStreamError      the stream ended before a candidate had a finishReason
        ├── GeminiDecodeError         the bytes are not a Gemini stream (garbage, truncated JSON, empty)
        └── MissingDependencyError    an optional extra (``genai``) is not installed; also an ImportError

The API error classes mirror google-genai's ``errors.ClientError`` / ``errors.ServerError`` split. An error
that arrives after some responses carries ``partial``: those responses merged, so nothing is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..parser._exceptions import SSEError

if TYPE_CHECKING:
    from ._types import GenerateContentResponse

__all__ = [
    "ClientError",
    "GeminiAPIError",
    "GeminiDecodeError",
    "GeminiError",
    "MissingDependencyError",
    "PromptBlockedError",
    "ServerError",
    "TruncatedStreamError",
    "parse_duration",
]

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_duration(value: object) -> float | None:
    """Seconds of a protobuf JSON ``Duration`` ("7s", "0.5s", "1.000340s"), or None if it is not one."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        seconds = float(value[:-1])
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class GeminiError(SSEError):
    """Root of the Gemini layer's errors. ``partial`` is the merged response received before it, if any."""

    def __init__(self, message: str, *, partial: GenerateContentResponse | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class GeminiDecodeError(GeminiError):
    """The input is not a Gemini response stream: not JSON, truncated JSON, stray bytes, or empty.

    ``offset`` is the byte offset in the body it concerns, when known.
    """

    def __init__(
        self, message: str, *, offset: int | None = None, partial: GenerateContentResponse | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.offset = offset


class MissingDependencyError(GeminiError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class GeminiAPIError(GeminiError):
    """The API answered with an error body: before the stream (with an HTTP status) or in the middle of it.

    - ``code``: the numeric code of the body (HTTP status semantics), else the HTTP status.
    - ``status``: the canonical status name ("UNAVAILABLE", "RESOURCE_EXHAUSTED"), or "".
    - ``message``: the API's message, verbatim.
    - ``details``: the ``details`` list (``google.rpc`` messages as dicts), ``[]`` if none.
    - ``retry_delay``: seconds from a ``google.rpc.RetryInfo`` detail's ``retryDelay``, else None.
    - ``http_status``: the HTTP status of the response, when known (200 for an error mid-stream).
    - ``body``: the whole decoded error JSON.

    ``str(error)`` is one line: ``error 503 UNAVAILABLE: The model is overloaded. Please try again later.``
    """

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        details: list[Any] | None = None,
        *,
        http_status: int | None = None,
        body: Any = None,
        partial: GenerateContentResponse | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.message = message
        self.details: list[Any] = details if details is not None else []
        self.http_status = http_status
        self.body = body
        self.retry_delay = _retry_delay(self.details)
        text = f"error {code} {status}".rstrip() + f": {_one_line(message)}"
        super().__init__(text, partial=partial)

    @classmethod
    def from_body(
        cls,
        body: bytes | str | dict[str, Any] | list[Any],
        http_status: int | None = None,
        *,
        partial: GenerateContentResponse | None = None,
    ) -> GeminiAPIError:
        """Build the error (a ``ClientError``/``ServerError`` by code) from an error body.

        Takes the raw bytes or the decoded JSON: ``{"error": {...}}``, the OpenAI-compatible endpoint's
        ``[{"error": {...}}]``, or any other body (an HTML page from a proxy becomes the message).
        """
        decoded: Any = body
        if isinstance(body, (bytes, str)):
            try:
                decoded = orjson.loads(body)
            except orjson.JSONDecodeError:
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                code = http_status or 0
                return _class_for(code)(
                    code,
                    "",
                    _one_line(text)[:200] or "(empty body)",
                    http_status=http_status,
                    body=text,
                    partial=partial,
                )
        if isinstance(decoded, list) and decoded and isinstance(decoded[0], dict):
            decoded = decoded[0]
        error = decoded.get("error") if isinstance(decoded, dict) else None
        if not isinstance(error, dict):
            error = decoded if isinstance(decoded, dict) else {"message": str(decoded)}
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else (http_status or 0)
        status = error.get("status") or (raw_code if isinstance(raw_code, str) else "") or ""
        message = error.get("message")
        details = error.get("details")
        return _class_for(code)(
            code,
            str(status),
            message if isinstance(message, str) else orjson.dumps(error).decode(),
            details if isinstance(details, list) else None,
            http_status=http_status,
            body=decoded,
            partial=partial,
        )


class ClientError(GeminiAPIError):
    """A 4xx error: the request is at fault (bad argument, key, quota: 429 carries ``retry_delay``)."""


class ServerError(GeminiAPIError):
    """A 5xx error: the service is at fault (overloaded, internal, deadline); usually worth a retry."""


class PromptBlockedError(GeminiError):
    """The prompt was blocked (``promptFeedback.blockReason``); ``response`` is the merged response."""

    def __init__(
        self, block_reason: str, response: GenerateContentResponse, message: str | None = None
    ) -> None:
        self.block_reason = block_reason
        self.response = response
        text = f"prompt blocked: {block_reason}"
        if message:
            text += f" ({_one_line(message)})"
        super().__init__(text, partial=response)


class TruncatedStreamError(GeminiError):
    """The stream ended before every candidate had a ``finishReason``; ``response``: what arrived, merged."""

    def __init__(self, message: str, response: GenerateContentResponse) -> None:
        self.response = response
        super().__init__(message, partial=response)


def _class_for(code: int) -> type[GeminiAPIError]:
    if 400 <= code < 500:
        return ClientError
    if 500 <= code < 600:
        return ServerError
    return GeminiAPIError


def _retry_delay(details: list[Any]) -> float | None:
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            return parse_duration(detail.get("retryDelay"))
    return None
