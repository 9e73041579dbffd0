"""Parser layer: bytes -> ``Event``, exactly the WHATWG event-stream rules, sans-IO.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
and #event-stream-interpretation. The parser does no I/O and imports nothing but the stdlib.

Goals, in order:
1. The spec, exactly, and the same events for every way of splitting the input into chunks.
2. Worst case O(n) time in the input size, to avoid DoS: a chunk without a line end is appended to a list
   of fragments that is joined once when a line end arrives (so a 1 MiB line fed 1 byte at a time is
   linear; httpx-sse 0.4.2 went quadratic here), and each chunk is searched once.
3. Memory bounded by ``max_event_size``, never by stream length: a line, or the data of one event, that
   grows past it raises ``SSEProtocolError`` naming its byte offset.
4. Speed: all the bytes of a chunk up to its last line end are decoded by one ``bytes.decode`` call and
   split by one ``str.split``; the Python loop then runs once per line, not per character.

Decoding whole runs of complete lines equals decoding the whole stream at once (what the spec does): line
ends are ASCII, so no UTF-8 sequence, valid or not, spans one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from ._exceptions import SSEProtocolError, SSEUsageError
from ._sse_event import Event

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventParser", "aiter_events", "iter_events", "parse"]

# Browsers set no limit at all. Gemini events carry inline images as base64 (a 1024x1024 PNG is ~2 MB),
# so the default sits far above any real event while still stopping a runaway line from eating memory.
DEFAULT_MAX_EVENT_SIZE = 64 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_new_event = tuple.__new__  # Event is a NamedTuple; building it through tuple.__new__ skips a Python frame.


class EventParser:
    """Incremental, sans-IO parser for one event stream.

    ``feed(chunk)`` returns the events completed by that chunk; ``close()`` marks the end of the stream
    (an unfinished block is discarded, as the spec says, and its ``id`` does not count). The result is the
    same for any split of the input into chunks.

    - ``last_event_id``: the last event ID string, updated when a block ends (even one without data).
    - ``retry``: the reconnection time in force (ms), ``None`` until a valid ``retry`` field was seen.
    - ``max_event_size``: the longest line, and the most data one event may collect, in bytes/characters.
    """

    __slots__ = (
        "last_event_id",
        "retry",
        "max_event_size",
        "_fragments",
        "_pending",
        "_fed",
        "_bom",
        "_skip_lf",
        "_closed",
        "_data",
        "_data_len",
        "_type",
        "_id",
        "_block_retry",
    )

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise SSEUsageError(f"max_event_size must be positive, got {max_event_size!r}")
        self.max_event_size = max_event_size
        self.last_event_id = ""
        self.retry: int | None = None
        self._fragments: list[bytes] = []  # the unfinished line, in pieces (joined once: linear time)
        self._pending = 0  # total length of _fragments
        self._fed = 0  # bytes fed so far: the stream offset for error messages
        self._bom: bytes | None = b""  # bytes seen while a leading BOM is still possible; None once decided
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next one ends no line
        self._closed = False
        # The spec's buffers for the block being read.
        self._data: list[str] = []
        self._data_len = 0
        self._type = ""
        self._id = ""  # the "last event ID buffer"; last_event_id is the string set at dispatch
        self._block_retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next chunk of the stream; return the events it completes, in order."""
        if self._closed:
            raise SSEUsageError("EventParser.feed() called after close()")
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise SSEUsageError(
                f"EventParser.feed() takes bytes, not {type(chunk).__name__}; the parser does the decoding"
            )
        if not chunk:
            return []
        chunk = bytes(chunk) if type(chunk) is not bytes else chunk
        start = self._fed  # stream offset of chunk[0]
        self._fed += len(chunk)

        if self._bom is not None:
            # "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present", also when
            # its three bytes arrive in separate chunks.
            head = self._bom + chunk
            if len(head) < 3 and _BOM.startswith(head):
                self._bom = head
                return []
            self._bom = None
            start -= len(head) - len(chunk)
            if head.startswith(_BOM):
                chunk = head[3:]
                start += 3
            else:
                chunk = head
            if not chunk:
                return []

        if self._skip_lf:
            # A CR ended the previous chunk and its line at once; a CRLF's LF is no second line end.
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                start += 1
                if not chunk:
                    return []

        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:
            # No line end: keep the fragment, join later (the linear-time rule).
            self._fragments.append(chunk)
            self._pending += len(chunk)
            if self._pending > self.max_event_size:
                raise SSEProtocolError(
                    f"line starting at byte offset {self._fed - self._pending} is longer than "
                    f"max_event_size ({self.max_event_size} bytes) and has no end yet",
                    self._fed - self._pending,
                )
            return []

        if self._fragments:
            self._fragments.append(chunk)
            buf = b"".join(self._fragments)
            end += len(buf) - len(chunk)
            start -= self._pending
            self._fragments = []
            self._pending = 0
        else:
            buf = chunk
        if end + 1 < len(buf):
            rest = buf[end + 1 :]
            self._fragments.append(rest)
            self._pending = len(rest)
            if self._pending > self.max_event_size:  # a rest this long came in one chunk
                raise SSEProtocolError(
                    f"line starting at byte offset {start + end + 1} is longer than max_event_size "
                    f"({self.max_event_size} bytes) and has no end yet",
                    start + end + 1,
                )
            buf = buf[: end + 1]
        elif buf[end] == 0x0D:
            self._skip_lf = True
        return self._lines(buf, start)

    def close(self) -> list[Event]:
        """End of stream: discard the unfinished block (the spec dispatches nothing for it). Returns ``[]``.

        The list return keeps the shape of ``feed`` so that callers can treat both alike.
        """
        self._closed = True
        self._fragments = []
        self._pending = 0
        self._data = []
        self._data_len = 0
        self._type = ""
        self._block_retry = None
        return []

    def _lines(self, buf: bytes, start: int) -> list[Event]:
        """Interpret ``buf``, a run of complete lines starting at stream offset ``start``."""
        limit = self.max_event_size
        too_long = _find_long_line(buf, limit) if len(buf) > limit else -1
        text = buf.decode("utf-8", "replace")  # invalid UTF-8 becomes U+FFFD, as in browsers
        if "\r" in text:
            # "Lines must be separated by either a CRLF pair, a single LF, or a single CR."
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        del lines[-1]  # buf ends with a line end: the last piece is empty

        events: list[Event] = []
        data = self._data
        data_len = self._data_len
        etype = self._type
        last_id = self._id
        block_retry = self._block_retry
        for index, line in enumerate(lines):
            if not line:
                # "If the line is empty (a blank line): dispatch the event." The last event ID string is
                # set even when the data buffer is empty; then nothing else happens.
                self.last_event_id = last_id
                if data:
                    events.append(
                        _new_event(
                            Event,
                            (etype or "message", data[0] if len(data) == 1 else "\n".join(data), last_id, block_retry),
                        )
                    )
                    data = []
                    data_len = 0
                etype = ""
                block_retry = None
                continue
            if index == too_long:
                self._data, self._data_len, self._type, self._id = data, data_len, etype, last_id
                raise _limit_error("line at byte offset {} is longer", limit, buf, index, start, events)
            # "If the line contains a colon: collect the characters before the first colon as the field
            # name and the characters after it as the value; if the value starts with a space, remove it."
            # "If the line starts with a colon, ignore the line" (a comment). "Otherwise the whole line is
            # the field name and the value is the empty string."
            name, colon, value = line.partition(":")
            if not name:
                continue
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                # "Append the field value to the data buffer, then append a single LF."
                data.append(value)
                data_len += len(value) + 1
                if data_len > limit:
                    self._data, self._data_len, self._type, self._id = data, data_len, etype, last_id
                    raise _limit_error(
                        "event data reaching the line at byte offset {} is larger", limit, buf, index, start, events
                    )
            elif name == "event":
                etype = value
            elif name == "id":
                # "If the field value does not contain U+0000 NULL, set the last event ID buffer."
                if "\x00" not in value:
                    last_id = value
            elif name == "retry":
                # "If the field value consists of only ASCII digits, set the reconnection time." int()
                # alone would also take "-1", "+1", "1_000" and non-ASCII digits; an empty value is ignored.
                if value.isdigit() and value.isascii():
                    block_retry = self.retry = int(value)
            # "Otherwise: the field is ignored."
        self._data = data
        self._data_len = data_len
        self._type = etype
        self._id = last_id
        self._block_retry = block_retry
        return events


def _find_long_line(buf: bytes, limit: int) -> int:
    """Index of the first line of ``buf`` longer than ``limit`` bytes, or -1. Only called on long buffers."""
    for index, line in enumerate(buf.splitlines()):
        if len(line) > limit:
            return index
    return -1


def _offset_of_line(buf: bytes, index: int, start: int) -> int:
    """Stream offset of line ``index`` of ``buf``: error path only, so it may re-split the bytes."""
    return start + sum(len(line) for line in buf.splitlines(keepends=True)[:index])


def _limit_error(
    what: str, limit: int, buf: bytes, index: int, start: int, events: list[Event]
) -> SSEProtocolError:
    """The over-limit error for line ``index`` of ``buf``; ``what`` has a ``{}`` for the byte offset."""
    offset = _offset_of_line(buf, index, start)
    return SSEProtocolError(f"{what.format(offset)} than max_event_size ({limit})", offset, events)


def parse(data: bytes, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> list[Event]:
    """Parse a whole stream (``bytes``) and return its events; an unfinished last block is discarded."""
    parser = EventParser(max_event_size=max_event_size)
    events = parser.feed(data)
    parser.close()
    return events


def iter_events(chunks: Iterable[bytes], *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> Iterator[Event]:
    """Yield events from an iterable of byte chunks as soon as each is complete.

    Fits httpx ``response.iter_bytes()``, requests ``iter_content(None)``, a binary file or
    ``sys.stdin.buffer`` (iterate with ``iter(lambda: f.read1(65536), b"")`` for live pipes).
    """
    parser = EventParser(max_event_size=max_event_size)
    for chunk in chunks:
        yield from parser.feed(chunk)
    parser.close()


async def aiter_events(
    chunks: AsyncIterable[bytes], *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
) -> AsyncIterator[Event]:
    """Async twin of ``iter_events``: httpx ``aiter_bytes()``, aiohttp ``response.content.iter_any()``."""
    parser = EventParser(max_event_size=max_event_size)
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    parser.close()
