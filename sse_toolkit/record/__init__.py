"""Record layer: the recording reverse proxy and the tee that write fixtures from real traffic."""

from __future__ import annotations

from ._proxy import RecordingProxy
from ._tee import record_tee

__all__ = [
    "RecordingProxy",
    "record_tee",
]
