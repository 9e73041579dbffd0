"""Replay layer: scenarios (what successive requests get), as steps that are per-request faults.

A step is ``"ok"`` (the fixture as recorded) or a dict; each dict becomes a :class:`Faults` value, so a
step can do anything a fault can (no second mechanism):

  ``{"status": 429, "retry_after": 0.5}``   the API's 429 (``retryDelay "0.500s"``, ``Retry-After: 1``)
  ``{"status": 500}`` / ``503`` / ``400`` ...  the API's error body for that status
  ``{"truncate_after": 3}``                 3 events, then a clean end before any ``finishReason``
  ``{"disconnect_after": 3}``               3 events, then an abrupt close (TCP reset)
  ``{"error_after": 2, "status": 503}``     2 events, then the raw mid-stream error with that code
  ``{"delay": 2.0}``                        2 s before the first byte (the ``latency`` fault)
Any other :class:`Faults` field (``rechunk``, ``event_latency``, ``disconnect_after_bytes``, ``jitter``,
``seed``, ``error_code``) is accepted too. In a step that breaks the stream (``error_after``), ``status``
names the mid-stream error's code, since the response itself starts with 200.

Steps are served in order, one per request that gets a fixture; the last step repeats. A scenario is read
from Python values, from JSON text (a list of steps) or from a JSON file (``load_script``; the user-facing
spellings keep the word "script": ``ReplayServer.script()``, ``POST /_sse/script``, ``--script``). Not to be
confused with a ``GeminiScript``, which builds a fixture.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..parser._exceptions import SSEError
from ..server._loop import ReplayError
from ._faults import Faults

__all__ = ["Scenario", "Step", "load_script", "parse_steps"]

_FAULT_FIELDS = frozenset(f.name for f in dataclasses.fields(Faults))
_ALIASES = {"delay": "latency"}
_KEYS = sorted((_FAULT_FIELDS | set(_ALIASES)) - {"latency"})


@dataclass(frozen=True)
class Step:
    """One parsed step: its position in the script (``index``, from 0), the value it was given, and the
    faults it applies. Messages name a step counted from 1 (``script step 1`` is ``index`` 0).

    ``retry_delay`` is the wait a 429 step asks for (seconds), else None.
    """

    index: int
    spec: Any
    faults: Faults

    @property
    def retry_delay(self) -> float | None:
        return float(self.faults.retry_after) if self.faults.status == 429 else None

    def describe(self) -> str:
        """Short words for reports: ``ok``, ``status=429 retry_after=0.5``, ``truncate_after=3``."""
        if self.spec == "ok" or self.spec == {}:
            return "ok"
        return " ".join(f"{k}={v}" for k, v in self.spec.items())


def _step(index: int, spec: Any) -> Step:
    # People count steps from 1 (the docs do too); Step.index stays the list index the journal reports.
    where = f"script step {index + 1}"
    if isinstance(spec, str):
        if spec.strip().lower() != "ok":
            raise ReplayError(
                f'{where}: {spec!r} is not a step; use "ok" or a dict such as {{"status": 503}}'
            )
        return Step(index, "ok", Faults())
    if not isinstance(spec, dict):
        raise ReplayError(f'{where}: expected "ok" or a dict, got {type(spec).__name__} {spec!r}')
    unknown = sorted(str(k) for k in spec if _ALIASES.get(k, k) not in _FAULT_FIELDS or k == "latency")
    if unknown:
        raise ReplayError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(_KEYS)})"
        )
    values: dict[str, Any] = {_ALIASES.get(str(k), str(k)): v for k, v in spec.items()}
    if values.get("error_after") is not None and "status" in values:
        # The stream starts with 200; the status names the raw error that breaks it.
        values["error_code"] = values.pop("status")
    if "retry_after" in values and values.get("status") != 429:
        raise ReplayError(f'{where}: retry_after only goes with "status": 429, got {spec!r}')
    try:
        faults = Faults(**values)
    except (SSEError, TypeError) as exc:
        raise ReplayError(f"{where}: {exc}") from None
    return Step(index, dict(spec), faults)


def parse_steps(steps: Iterable[Any]) -> list[Step]:
    """Validate ``steps`` (see the module doc); a bad one raises ReplayError naming it, counted from 1."""
    parsed = [_step(index, spec) for index, spec in enumerate(steps)]
    if not parsed:
        raise ReplayError('a script needs at least one step (e.g. "ok")')
    return parsed


def load_script(source: str | os.PathLike[str] | bytes) -> list[Step]:
    """Steps from a JSON file (path) or JSON bytes: a list of steps, or ``{"steps": [...]}``."""
    name = "<script>" if isinstance(source, bytes) else str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ReplayError(f"{name}: cannot read the script: {exc.strerror or exc}") from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ReplayError(f"{name}: not JSON: {exc}") from None
    if isinstance(value, dict) and set(value) == {"steps"}:
        value = value["steps"]
    if not isinstance(value, list):
        raise ReplayError(f"{name}: expected a JSON list of steps, got {type(value).__name__}")
    try:
        return parse_steps(value)
    except ReplayError as exc:
        raise ReplayError(f"{name}: {exc}") from None


class Scenario:
    """The steps queued on a server; :meth:`next` hands them out in order, the last repeating
    (thread-safe)."""

    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._cursor = 0
        self._lock = threading.Lock()

    def set(self, steps: Sequence[Step]) -> None:
        with self._lock:
            self._steps = list(steps)
            self._cursor = 0

    def clear(self) -> None:
        self.set([])

    @property
    def steps(self) -> list[Step]:
        return list(self._steps)

    def next(self) -> Step | None:
        """The step for the next request, or None when no scenario is set."""
        if not self._steps:  # no scenario (most servers): no lock taken (one is set between requests)
            return None
        with self._lock:
            if not self._steps:
                return None
            step = self._steps[min(self._cursor, len(self._steps) - 1)]
            self._cursor += 1
            return step
