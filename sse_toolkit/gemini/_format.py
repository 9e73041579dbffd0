"""Gemini layer: how a response body is framed (``BodyFormat``, ``sniff_format``) and where the elements of a
streamed JSON array end (``JSONArrayScanner``). No I/O.

A Gemini body comes in one of three framings, told apart by its first non-whitespace byte:

- ``alt=sse``: ``data: {...}\\r\\n\\r\\n`` events (``BodyFormat.SSE``);
- without ``alt=sse``: one JSON array streamed element by element, ``[{...}\\n,\\r\\n{...}\\n]``
  (``BodyFormat.JSON_ARRAY``);
- a bare JSON object: a unary ``generateContent`` response or an error body (``BodyFormat.JSON_OBJECT``).

Everything in this package and above that needs to know the framing asks ``sniff_format``, and everything
that needs to cut a JSON array into its elements uses ``JSONArrayScanner``: one rule each, one vocabulary.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ._errors import GeminiDecodeError

__all__ = ["ArrayElement", "BodyFormat", "JSONArrayScanner", "sniff_format"]

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
# What an SSE body can start with (after whitespace): a field name or a comment.
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")


class BodyFormat(enum.StrEnum):
    """How a Gemini response body is framed. The values are what stats and ``ResponseDecoder.format`` show."""

    SSE = "sse"
    """``alt=sse``: ``data: <json>`` events."""
    JSON_ARRAY = "json-array"
    """The stream without ``alt=sse``: one JSON array of response objects."""
    JSON_OBJECT = "json"
    """A bare JSON object: a unary ``generateContent`` response or an error body."""
    UNKNOWN = "unknown"
    """Not told yet (nothing but whitespace so far), or none of the three (an HTML error page)."""


def sniff_format(first_bytes: bytes, content_type: str | None = None) -> BodyFormat:
    """The framing of a body that starts with ``first_bytes`` (any prefix of it; a leading BOM is skipped).

    The first non-whitespace byte decides: ``[`` is a JSON array, ``{`` a bare JSON object. Anything else is
    SSE when there is no ``content_type`` (None or "") to go by (a saved body: SSE is what the streaming API
    sends), when the content type is ``text/event-stream``, or when the bytes start like an SSE field; else
    ``UNKNOWN``.
    A body of only whitespace (so far) is ``UNKNOWN`` unless the content type says SSE: callers reading
    incrementally sniff again when more bytes arrive.
    """
    start = first_bytes[3:] if first_bytes.startswith(_BOM) else first_bytes
    start = start.lstrip(_WHITESPACE)
    event_stream = content_type is not None and "event-stream" in content_type.lower()
    if not start or _BOM.startswith(first_bytes):  # nothing yet, or what may still become a BOM
        return BodyFormat.SSE if event_stream else BodyFormat.UNKNOWN
    first = start[:1]
    if first == b"[":
        return BodyFormat.JSON_ARRAY
    if first == b"{":
        return BodyFormat.JSON_OBJECT
    if not content_type or event_stream or start.startswith(_SSE_STARTS):
        return BodyFormat.SSE
    return BodyFormat.UNKNOWN


class ArrayElement(NamedTuple):
    """One complete top-level object: its body ``offset``, its bytes, and ``loads(data)`` (else None)."""

    offset: int
    data: bytes
    value: Any


class _Where(enum.Enum):
    BEFORE = "before the array"
    ITEMS = "inside the array"
    AFTER = "after the array"
    BARE = "between bare objects"


# One JSON string whole, or one bracket; a lone quote means a string that has not ended yet.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|"', re.DOTALL)


class JSONArrayScanner:
    """Sans-IO: finds where each object of a streamed JSON array ends, as soon as its bytes arrive.

    ``feed(data)`` yields an ``ArrayElement`` for each object that ``data`` completes, then raises
    ``GeminiDecodeError`` at the first byte that cannot belong to the array (the objects before it come out
    first); ``close()`` returns the objects still held back, and raises it if the input ended inside an
    object or before the array started.
    ``array=False`` scans a run of bare objects (``{...} {...}``) instead of an array. Only objects are
    elements: a Gemini array holds nothing else.

    Strategy: a regex matches each JSON string whole (so brackets inside strings never count) or one
    bracket, and a Python loop counts depth per match. With ``loads`` (``orjson.loads``) the scanner also
    decodes each element, and first tries a shortcut for the API's pretty-printed objects, whose closing
    brace is the only ``}`` that starts a line (a JSON string cannot hold a raw newline): the text up to the
    next ``\\n}`` is decoded as the whole object; if that works it is the object (a prefix of a JSON text
    that is itself a complete value ends where the value does), and the brackets inside are never counted.
    Once an object came out that way, the next ones that start pretty-printed (``{`` then a line end) wait
    for their ``\\n}`` instead of having their brackets counted while they arrive; the first ``\\n}`` that
    is no end hands the object back to the token loop. (So in a stream that changes its formatting after
    that, an object that ends without ``\\n}`` comes out when a later ``\\n}`` or the end of input shows
    it, not at its ``}``.)

    Worst case O(n): consumed bytes are dropped, the buffer holds only the unfinished object, and every
    search resumes where the last one stopped.
    """

    def __init__(self, *, array: bool = True, loads: Callable[[bytes], Any] | None = None) -> None:
        self.array = array
        self._loads = loads
        self._where = _Where.BEFORE if array else _Where.BARE
        self._buf = b""  # unscanned or unfinished bytes; _buf[0] is at body offset _base
        self._base = 0
        self._pos = 0  # scan position in _buf
        self._depth = 0  # inside the object being scanned; 0 between objects
        self._start = -1  # where that object starts in _buf, -1 between objects
        self._searched = 0  # the pretty shortcut: where to resume looking for "\n}"
        self._pretty = False  # an object came out through the shortcut: the stream is pretty-printed
        self._shortcut = False  # the shortcut may still find the end of the object being scanned

    @property
    def ended(self) -> bool:
        """True once the array's closing ``]`` was seen."""
        return self._where is _Where.AFTER

    def feed(self, data: bytes) -> Iterator[ArrayElement]:
        """Scan the next bytes; yield each object they complete, in order."""
        if self._pos or self._start > 0:
            # Drop what was consumed: the buffer only ever holds the unfinished object (linear time).
            keep = self._start if self._start >= 0 else self._pos
            self._buf = self._buf[keep:]
            self._base += keep
            self._pos -= keep
            self._searched = max(0, self._searched - keep)
            if self._start > 0:
                self._start = 0
        buf = self._buf = self._buf + data if self._buf else data
        if self._start >= 0 and self._shortcut:  # an unfinished object: its "\n}" may be here
            waiting = not self._depth
            element = self._pretty_end()
            if element is not None:
                self._depth = 0
                yield element
            elif waiting and not self._depth:
                return  # still waiting for it
        pos = self._pos
        depth = self._depth
        search = _TOKEN.search
        while (match := search(buf, pos)) is not None:
            token = match.group()
            first = token[0]
            if first == 0x22:  # a string
                if depth == 0:  # no string belongs between objects, ended or not: the same error in any split
                    self._check_gap(pos, match.start())
                    self._pos = pos
                    raise self._error("unexpected JSON string", match.start())
                if len(token) == 1 or token[-1] != 0x22 or (match.end() == len(buf) and _unfinished(token)):
                    pos = match.start()  # it has not ended yet: wait for more bytes
                    break
                pos = match.end()
                continue
            if depth:
                pos = match.end()
                if first == 0x7B or first == 0x5B:  # { [
                    depth += 1
                    continue
                depth -= 1
                if depth:
                    continue
                start = self._start
                self._start = -1
                self._pos = pos
                self._depth = 0
                yield self._element(start, pos)
                continue
            self._check_gap(pos, match.start())
            where = self._where
            if first == 0x7B and (where is _Where.ITEMS or where is _Where.BARE):  # {
                self._start = self._searched = match.start()
                self._shortcut = self._loads is not None
                if not self._shortcut:
                    depth = 1
                    pos = match.end()
                    continue
                element = self._pretty_end()
                if element is not None:
                    pos = self._pos
                    yield element
                    continue
                if self._depth:  # it is no pretty-printed object
                    pos, depth = self._pos, self._depth
                elif self._pretty:
                    # Pretty-printed like the objects before it: wait for its "\n}" rather than count
                    # brackets that the shortcut would find again.
                    self._pos = match.start()
                    return
                else:  # the first object: count brackets while it grows
                    depth = 1
                    pos = match.end()
            elif first == 0x5B and where is _Where.BEFORE:  # [
                self._where = _Where.ITEMS
                pos = match.end()
            elif first == 0x5D and where is _Where.ITEMS:  # ]
                self._where = _Where.AFTER
                pos = match.end()
            else:
                self._pos = pos
                raise self._error(f"unexpected {token.decode()!r}", match.start())
        else:
            if depth == 0:
                self._check_gap(pos, len(buf))
            pos = len(buf)
        self._pos = pos
        self._depth = depth

    def close(self) -> list[ArrayElement]:
        """End of input: the objects still held back; raises ``GeminiDecodeError`` if the input ends inside
        an object or before the array."""
        found: list[ArrayElement] = []
        if self._start >= 0 and not self._depth:
            # A pretty-printed start whose "\n}" never came: the token loop settles where it (and every
            # object after it) ends, waiting for nothing more.
            self._pretty = False
            self._depth = 1
            self._pos = self._start + 1
            found += self.feed(b"")
        if self._start >= 0 or (self._buf[self._pos :].strip() and self._where is not _Where.AFTER):
            offset = self._base + max(self._start, 0)
            raise GeminiDecodeError(
                f"input ends inside a JSON object that starts at body offset {offset} (truncated JSON)",
                offset=offset,
            )
        if self._where is _Where.BEFORE:
            raise GeminiDecodeError(
                "input ends before the JSON array starts", offset=self._base + len(self._buf)
            )
        return found

    def _element(self, start: int, end: int) -> ArrayElement:
        data = self._buf[start:end]
        offset = self._base + start
        if self._loads is None:
            return ArrayElement(offset, data, None)
        try:
            return ArrayElement(offset, data, self._loads(data))
        except ValueError as exc:  # orjson.JSONDecodeError and json.JSONDecodeError both are
            raise GeminiDecodeError(
                f"JSON object at body offset {offset} is not valid JSON ({exc})", offset=offset
            ) from None

    def _pretty_end(self) -> ArrayElement | None:
        """The shortcut for the object that starts at ``_start`` (see the class docstring).

        Returns the object, with ``_pos`` after it, or None: no ``\\n}`` yet (the search resumes where it
        stopped next time), or the object is not pretty-printed (its ``{`` is not followed by a line end, or
        the text up to its first ``\\n}`` is no JSON value): then the shortcut is off for it and the token
        loop takes it from its ``{`` (``_depth`` 1, ``_pos`` after the ``{``) if it was waiting. One failed
        decoding per object at most keeps the scan linear.
        """
        buf = self._buf
        start = self._start
        if self._depth or buf[start + 1 : start + 2] in (b"\n", b"\r", b""):
            end = buf.find(b"\n}", max(self._searched, start))
            if end < 0:
                self._searched = max(start, len(buf) - 1)
                return None
            data = buf[start : end + 2]
            try:
                value = self._loads(data)  # type: ignore[misc]
            except ValueError:
                pass
            else:
                self._start = -1
                self._pos = end + 2
                self._pretty = True
                return ArrayElement(self._base + start, data, value)
        self._shortcut = False
        if not self._depth:
            self._depth = 1
            self._pos = start + 1
        return None

    def _check_gap(self, start: int, end: int) -> None:
        """Between top-level objects only whitespace (and, inside the array, commas) may appear."""
        gap = self._buf[start:end]
        allowed = b" \t\r\n," if self._where is _Where.ITEMS else b" \t\r\n"
        if gap.strip(allowed):
            bad = start + len(gap) - len(gap.lstrip(allowed))
            self._pos = start
            raise self._error("unexpected bytes", bad, f": {gap.strip()[:60]!r}")

    def _error(self, what: str, index: int, detail: str = "") -> GeminiDecodeError:
        offset = self._base + index
        return GeminiDecodeError(
            f"{what} at body offset {offset} ({self._where.value}){detail}", offset=offset
        )


def _unfinished(token: bytes) -> bool:
    """True if a string token that ends the buffer ends in an escaping backslash (the regex stopped at it)."""
    count = len(token) - 1 - len(token[:-1].rstrip(b"\\"))
    return count % 2 == 1
