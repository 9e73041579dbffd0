"""Server layer: HTTP/1.1 request reading and reply writing (sans-IO) and the one selectors loop that the
replay server and the recording proxy share. It knows no fixture."""

from __future__ import annotations

from ._errors import ReplayError
from ._lifecycle import LoopbackServer
from ._protocol import StartedServer

__all__ = [
    "LoopbackServer",
    "ReplayError",
    "StartedServer",
]
