"""Parser layer: how an HTTP response body ended, the one name every layer uses for it.

A recording keeps it, the server reproduces it, the recorder decides it. It lives at the bottom so that the
server layer can reproduce an ending without knowing what a fixture is.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["End"]


class End(StrEnum):
    """How a response body ended. The values are the words the recorded fixture format writes."""

    # As HTTP says: the final chunk, the Content-Length reached, or a tee's end of input.
    COMPLETE = "complete"
    RESET = "reset"  # the connection broke mid-body (a reset, no final chunk)
    TIMEOUT = "timeout"  # the recorder gave up waiting for the upstream; replayed as an abrupt close
