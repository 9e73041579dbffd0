"""Server layer: ``StartedServer``, what every loopback server of the package offers once started.

The replay server, the recording proxy and the plain ``LoopbackServer`` all have it; code that only starts,
points a client at and stops a server (the pytest plugin, the CLI) types against this, not a class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["StartedServer"]


@runtime_checkable
class StartedServer(Protocol):
    """A started loopback server: its base ``url``, whether it still runs, ``stop`` and ``check``."""

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        ...

    def is_running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        ...

    def stop(self) -> None:
        """Stop serving: end open responses, close connections, join the threads."""
        ...

    def check(self) -> None:
        """Re-raise the first error collected from the server's threads."""
        ...
