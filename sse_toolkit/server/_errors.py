"""Server layer: the errors a loopback server raises (plain Python, where the loop beside them is compiled:
a compiled module keeps no docstring of an exception class, and users subclass and document these)."""

from __future__ import annotations

from ..parser._exceptions import SSEError

__all__ = ["ReplayError", "ServerStopped"]


class ReplayError(SSEError):
    """The replay (or record) server failed: bad source, bad options, or an error in a server thread."""


class ServerStopped(Exception):
    """Raised inside a server thread's wait when the server is stopping (ends the response at once)."""
