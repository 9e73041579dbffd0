"""Fixture layer: the in-memory model of a fixture (what a recording holds), shared by loader, writer,
replay server and recorder. No I/O here; reading and writing files lives in ``_fixture_io``.

A fixture is a list of exchanges, served in order. An exchange is one HTTP request and the response it
got: status, headers, the body as the chunks that arrived, each with its time offset, and how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._http_head import find_header

__all__ = ["END_COMPLETE", "END_RESET", "END_TIMEOUT", "Chunk", "Exchange", "Fixture", "RecordedRequest"]

# How a recorded response ended. Replay reproduces each: a clean end, or an abrupt close of the connection.
END_COMPLETE = "complete"  # the body ended as HTTP says (final chunk / Content-Length / EOF of a tee)
END_RESET = "reset"  # the connection broke mid-body (reset, no final chunk)
END_TIMEOUT = "timeout"  # the recorder gave up waiting for the upstream; replayed as an abrupt close


@dataclass
class RecordedRequest:
    """The request of an exchange, secrets already redacted. ``query`` is the raw query string."""

    method: str = "POST"
    path: str = "/"
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class Chunk:
    """Body bytes as they arrived; ``t`` is seconds since the request was sent (None: no timing known)."""

    data: bytes
    t: float | None = None


@dataclass
class Exchange:
    """One request and its response. ``head_t`` is when the status line arrived (seconds, or None)."""

    request: RecordedRequest | None = None
    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    end: str = END_COMPLETE
    head_t: float | None = None

    @property
    def body(self) -> bytes:
        """The whole response body, byte-exact."""
        return b"".join(chunk.data for chunk in self.chunks)

    @property
    def timed(self) -> bool:
        """True when the chunks carry recorded time offsets."""
        return bool(self.chunks) and all(chunk.t is not None for chunk in self.chunks)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of response header ``name`` (case-insensitive), or ``default``."""
        return find_header(self.headers, name, default)


@dataclass
class Fixture:
    """A whole fixture file: its exchanges in order, where it came from, and its format version."""

    exchanges: list[Exchange] = field(default_factory=list)
    source: str | None = None
    version: int = 1
