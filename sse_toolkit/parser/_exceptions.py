"""Parser layer (and below all others): the one exception tree that every layer of sse_toolkit raises from.

    SSEError                      root; never raised itself
    ├── SSEProtocolError          bad bytes from the peer (a line over the size limit, a broken HTTP head)
    ├── SSEUsageError             the caller used an API wrongly (fed str, fed after close)
    ├── GeminiError               the Gemini layer (defined in _gemini_errors)
    ├── FixtureError              a fixture file that cannot be read (defined in the fixture layer)
    └── ReplayError               the replay/record servers (defined in their layer)

Only the two parser-level classes live here; upper layers subclass SSEError in their own modules so that
this module, like the parser, imports nothing of the package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SSEError", "SSEProtocolError", "SSEUsageError"]


class SSEError(Exception):
    """Root of every error sse_toolkit raises. Catch this to catch them all."""

    def __init__(self, *args: object) -> None:
        # Like h11's ProtocolError: the root names a family, not a failure, so it cannot be raised itself.
        if type(self) is SSEError:
            raise TypeError("SSEError is abstract; raise one of its subclasses")
        super().__init__(*args)


class SSEProtocolError(SSEError):
    """The byte stream broke a rule or a limit.

    ``offset`` is the byte offset in the stream it concerns; ``events`` holds the events that the failing
    ``feed()`` call had completed before the error, so that nothing parsed is lost.
    """

    def __init__(self, message: str, offset: int | None = None, events: list[Any] | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.events: list[Any] = events if events is not None else []


class SSEUsageError(SSEError):
    """The caller used the API wrongly, e.g. fed ``str`` instead of ``bytes`` or fed after ``close()``."""
