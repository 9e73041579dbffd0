"""Parser layer: strip the HTTP heads that ``curl -i`` prints before a body, sans-IO.

People save streams with ``curl -i`` as often as with ``curl -N``. The output then starts with one or more
heads: ``HTTP/1.1 100 Continue``, a proxy's ``HTTP/1.1 200 Connection established``, and the real
``HTTP/2 200`` with its headers, each ended by an empty line. ``HeadSplitter`` recognises them while
bytes stream in, records each, and passes the body on untouched. Input that does not start with
``HTTP/`` is a plain body and goes through as it is.

Linear time: bytes collect in a ``bytearray`` (amortised O(1) appends) that is searched from where the
previous search stopped, so a head fed one byte at a time stays O(n); heads are capped at
``MAX_HEAD_SIZE`` (curl itself refuses header blocks over 100 KiB-300 KiB; 256 KiB lets every real one by).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._exceptions import SSEProtocolError

__all__ = ["MAX_HEAD_SIZE", "HeadSplitter", "HttpHead", "find_header", "split_http_head"]

MAX_HEAD_SIZE = 256 * 1024

_PREFIX = b"HTTP/"
_STATUS_LINE = re.compile(rb"HTTP/(\d(?:\.\d)?) +(\d{3})(?: +([^\r\n]*))?")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def find_header(headers: list[tuple[str, str]], name: str, default: str | None = None) -> str | None:
    """The last value of header ``name`` in ``headers`` (case-insensitive), or ``default``."""
    name = name.lower()
    for key, value in reversed(headers):
        if key.lower() == name:
            return value
    return default


@dataclass(frozen=True)
class HttpHead:
    """One HTTP response head: ``version`` ("1.1", "2"), ``status``, ``reason`` and ``headers`` in order."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of header ``name`` (case-insensitive), or ``default``."""
        return find_header(self.headers, name, default)

    @property
    def is_interim(self) -> bool:
        """A head that another head follows: ``1xx`` or a proxy's ``Connection established``."""
        return 100 <= self.status < 200 or self.reason.lower() == "connection established"


class HeadSplitter:
    """Feed bytes, get body bytes back; ``heads`` lists the HTTP heads seen (empty for a plain body).

    ``head`` is the final (non-interim) head once the body has started, else ``None``.
    """

    __slots__ = ("_buf", "_offset", "_searched", "_state", "heads")

    def __init__(self) -> None:
        self.heads: list[HttpHead] = []
        self._buf = bytearray()
        self._searched = 0  # how far _buf has been searched for the end of a head
        self._state = "start"  # start -> head -> body
        self._offset = 0  # stream offset of _buf[0]

    @property
    def head(self) -> HttpHead | None:
        if self._state == "body" and self.heads and not self.heads[-1].is_interim:
            return self.heads[-1]
        return None

    @property
    def in_body(self) -> bool:
        """True once the heads (if any) are over and bytes go through as body."""
        return self._state == "body"

    def feed(self, chunk: bytes) -> bytes:
        """Take the next bytes; return those that belong to the body."""
        if self._state == "body":
            return chunk
        self._buf += chunk
        while True:
            if self._state == "start":
                if len(self._buf) < len(_PREFIX) and _PREFIX.startswith(self._buf):
                    return b""  # could still be a head
                if not self._buf.startswith(_PREFIX):
                    return self._to_body()
                self._state = "head"
            match = _HEAD_END.search(self._buf, max(0, self._searched - 3))
            if match is None:
                self._searched = len(self._buf)
                if len(self._buf) > MAX_HEAD_SIZE:
                    raise SSEProtocolError(
                        f"HTTP head at byte offset {self._offset} is over {MAX_HEAD_SIZE} bytes "
                        "without an end",
                        self._offset,
                    )
                return b""
            head = _parse_head(bytes(self._buf[: match.start()]), self._offset)
            self.heads.append(head)
            self._offset += match.end()
            del self._buf[: match.end()]
            self._searched = 0
            if not head.is_interim:
                return self._to_body()
            self._state = "start"

    def close(self) -> bytes:
        """End of input: return what was held back. A head without its end is an error."""
        if self._state == "head":
            raise SSEProtocolError(
                f"input ends inside the HTTP head at byte offset {self._offset}", self._offset
            )
        return self._to_body()

    def _to_body(self) -> bytes:
        self._state = "body"
        body = bytes(self._buf)
        self._buf = bytearray()
        return body


def _parse_head(raw: bytes, offset: int) -> HttpHead:
    lines = raw.split(b"\n")
    match = _STATUS_LINE.fullmatch(lines[0].rstrip(b"\r"))
    if match is None:
        raise SSEProtocolError(
            f"malformed HTTP status line at byte offset {offset}: {lines[0][:80]!r}", offset
        )
    headers = []
    position = offset + len(lines[0]) + 1
    for line in lines[1:]:
        text = line.rstrip(b"\r").decode("latin-1")
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise SSEProtocolError(
                f"malformed HTTP header line at byte offset {position}: {text[:80]!r}", position
            )
        headers.append((name.strip(), value.strip()))
        position += len(line) + 1
    version, status, reason = match.groups()
    return HttpHead(version.decode(), int(status), (reason or b"").decode("latin-1").strip(), headers)


def split_http_head(data: bytes) -> tuple[list[HttpHead], bytes]:
    """Split a whole saved response into its heads (``[]`` for a plain body) and its body."""
    splitter = HeadSplitter()
    body = splitter.feed(data)
    body += splitter.close()
    return splitter.heads, body
