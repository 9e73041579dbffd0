"""Gemini layer: optional bridge from our typed responses to google-genai's pydantic types.

google-genai is imported only when ``to_genai`` is called (it is the ``genai`` extra); without it the call
raises ``MissingDependencyError`` naming the extra. The conversion takes the same steps google-genai takes
for each streamed chunk (models.py, ``generate_content_stream``): the mldev JSON -> snake_case mapping, then
``GenerateContentResponse._from_response``, so the result equals what the SDK builds from the same bytes.
"""

from __future__ import annotations

from typing import Any

from ._errors import MissingDependencyError
from ._types import GenerateContentResponse

__all__ = ["to_genai"]


def to_genai(response: GenerateContentResponse | dict[str, Any]) -> Any:
    """Convert a response (ours, or the API's JSON dict) to ``google.genai.types.GenerateContentResponse``."""
    try:
        from google.genai import models, types
    except ImportError as exc:
        raise MissingDependencyError(
            f"to_genai() needs google-genai: pip install 'sse-toolkit[genai]' ({exc})"
        ) from exc
    data = response.to_dict() if isinstance(response, GenerateContentResponse) else dict(response)
    convert = getattr(models, "_GenerateContentResponse_from_mldev", None)
    if convert is not None:
        # The SDK's own private step (google-genai 1.x-3.x); without it, pydantic takes camelCase aliases.
        # Older releases take the API client first: (api_client, from_object, parent_object).
        data = convert(None, data) if _first_parameter(convert) == "api_client" else convert(data)
    return types.GenerateContentResponse._from_response(response=data, kwargs={})


def _first_parameter(function: Any) -> str:
    import inspect

    return next(iter(inspect.signature(function).parameters), "")
