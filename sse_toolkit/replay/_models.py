"""Replay layer: model metadata (``GET models/{model}``): plausible token limits and where they come from.

Frameworks read a model's ``inputTokenLimit`` / ``outputTokenLimit`` to size their context (llama-index's
``GoogleGenAI`` calls ``models.get`` in its constructor and uses both). The replay server knows only the names
its fixtures use, so the limits come from this table of Google's published model pages
(``ai.google.dev/gemini-api/docs/models/<model>``, "Token limits"), matched by the longest known prefix
(``gemini-2.0-flash-001`` is a ``gemini-2.0-flash``). A name that matches nothing (a fixture called ``cats``)
gets ``DEFAULT_LIMITS``, and ``ModelInfo.source`` says so. Pure data and functions: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..parser._exceptions import SSEUsageError

__all__ = ["DEFAULT_LIMITS", "KNOWN_MODELS", "ModelInfo", "model_info"]

_DOCS = "ai.google.dev/gemini-api/docs/models/{}, token limits"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``GET /{version}/models/{name}`` answers for one model, and where its numbers come from."""

    name: str  # without the "models/" prefix, as requested
    input_token_limit: int
    output_token_limit: int
    source: str  # the published page the limits were taken from, or why a default was used

    def to_dict(self) -> dict[str, Any]:
        """The Gemini API's ``Model`` resource (the fields clients read), camelCase as the API writes it."""
        return {
            "name": f"models/{self.name}",
            "displayName": self.name,
            "description": f"Replayed from a fixture by sse-replay (limits: {self.source}).",
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": ["generateContent", "countTokens", "streamGenerateContent"],
        }


# (input, output) per model family, as each model's page states them. Keep the source next to the numbers.
KNOWN_MODELS: dict[str, tuple[int, int, str]] = {
    "gemini-1.5-flash": (1_048_576, 8_192, _DOCS.format("gemini-1.5-flash")),
    "gemini-1.5-pro": (2_097_152, 8_192, _DOCS.format("gemini-1.5-pro")),
    "gemini-2.0-flash": (1_048_576, 8_192, _DOCS.format("gemini-2.0-flash")),
    "gemini-2.0-flash-lite": (1_048_576, 8_192, _DOCS.format("gemini-2.0-flash-lite")),
    "gemini-2.5-flash": (1_048_576, 65_536, _DOCS.format("gemini-2.5-flash")),
    "gemini-2.5-flash-lite": (1_048_576, 65_536, _DOCS.format("gemini-2.5-flash-lite")),
    "gemini-2.5-pro": (1_048_576, 65_536, _DOCS.format("gemini-2.5-pro")),
    "gemini-3-flash": (1_048_576, 65_536, _DOCS.format("gemini-3-flash-preview")),
    "gemini-3-pro": (1_048_576, 65_536, _DOCS.format("gemini-3-pro-preview")),
}

# For a name no published page covers: gemini-2.0-flash's limits, the model the REST quickstart uses.
DEFAULT_LIMITS = (1_048_576, 8_192)


def model_info(name: str) -> ModelInfo:
    """Metadata for ``name`` (``"gemini-2.0-flash"`` or ``"models/gemini-2.0-flash"``): the limits of the
    longest known family that ``name`` starts with (followed by nothing or ``-``), else ``DEFAULT_LIMITS``."""
    if not isinstance(name, str) or not name.strip():
        raise SSEUsageError(f"a model name must be a non-empty string, got {name!r}")
    bare = name.removeprefix("models/")
    best = ""
    for family in KNOWN_MODELS:
        if (bare == family or bare.startswith(family + "-")) and len(family) > len(best):
            best = family
    if best:
        inp, out, source = KNOWN_MODELS[best]
        return ModelInfo(bare, inp, out, source if best == bare else f"{source} (as {best})")
    inp, out = DEFAULT_LIMITS
    return ModelInfo(
        bare, inp, out, "no published model of this name: gemini-2.0-flash's limits as a default"
    )
