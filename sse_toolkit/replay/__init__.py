"""Replay layer: the Gemini API (with its Vertex AI and OpenAI-compatible faces, and generic SSE) as a
replay app over a catalog of fixtures worked out at load, faults, scenarios, the journal and the resilience
verdict, served by :class:`ReplayServer`; the fixtures shipped with the package, by name."""

from __future__ import annotations

from ._faults import Faults
from ._models import ModelInfo, model_info
from ._scenario import load_script
from ._server import ReplayServer
from ._shipped import shipped_fixture, shipped_fixtures, shipped_names
from ._verdict import Ending, Finding, JournalEntry, Outcome, RequestKind, Severity

__all__ = [
    "Ending",
    "Faults",
    "Finding",
    "JournalEntry",
    "ModelInfo",
    "Outcome",
    "ReplayServer",
    "RequestKind",
    "Severity",
    "load_script",
    "model_info",
    "shipped_fixture",
    "shipped_fixtures",
    "shipped_names",
]
