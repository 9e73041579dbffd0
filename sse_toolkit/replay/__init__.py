"""Replay layer: the Gemini API (and generic SSE) as a replay app over loaded fixtures, faults, scenarios and the
resilience verdict, served by :class:`ReplayServer`."""

from __future__ import annotations

from ._app import ReplayServer
from ._faults import Faults
from ._scenario import load_script
from ._verdict import Finding, JournalEntry

__all__ = [
    "Faults",
    "Finding",
    "JournalEntry",
    "load_script",
    "ReplayServer",
]
