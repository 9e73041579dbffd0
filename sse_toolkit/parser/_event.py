"""Parser layer: the ``Event`` value the parser dispatches.

An Event is a NamedTuple: immutable, ``__slots__ = ()``, and built by the parser through ``tuple.__new__``,
which is much cheaper than a frozen dataclass where object construction dominates (bench/bench_parser.py's
"small" corpus). Don't subclass it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Event"]


class Event(NamedTuple):
    """One dispatched server-sent event, as a browser's ``MessageEvent`` would report it.

    - ``event``: the event type; ``"message"`` when the block had no (or an empty) ``event`` field.
    - ``data``: the ``data`` lines of the block joined with ``"\\n"``.
    - ``id``: the last event ID in force when the event was dispatched (``lastEventId``); ``""`` if none.
    - ``retry``: the valid ``retry`` value (ms) seen in this block, else ``None``.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """Decode ``data`` as JSON (with orjson)."""
        import orjson

        return orjson.loads(self.data)

    def to_dict(self) -> dict[str, Any]:
        """The event as ``{"event", "data", "id", "retry"}``, the shape ``sse-toolkit parse`` prints."""
        return {"event": self.event, "data": self.data, "id": self.id, "retry": self.retry}

    def __repr__(self) -> str:
        # Leave out fields at their defaults, as httpx-sse's ServerSentEvent does: Event(data='hi').
        parts = []
        if self.event != "message":
            parts.append(f"event={self.event!r}")
        parts.append(f"data={self.data!r}")
        if self.id:
            parts.append(f"id={self.id!r}")
        if self.retry is not None:
            parts.append(f"retry={self.retry!r}")
        return f"Event({', '.join(parts)})"
