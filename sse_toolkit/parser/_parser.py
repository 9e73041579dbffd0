"""Parser layer: bytes -> ``Event``, exactly the WHATWG event-stream rules, sans-IO.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
and #event-stream-interpretation. The parser does no I/O and imports nothing but the stdlib (and its own
optional C ``_speedups``).

Goals, in order:
1. The spec, exactly, and the same events for every way of splitting the input into chunks.
2. Worst case O(n) time in the input size, to avoid DoS: the chunks of a line that spans several are kept
   as a list of pieces and joined once, when the line ends (so a 1 MiB line fed 1 byte at a time is
   linear; httpx-sse 0.4.2 went quadratic here), and each chunk is scanned a fixed number of times. A
   piece is a chunk itself, or a ``bytearray`` collecting chunks shorter than ``_PIECE`` up to about that
   size (a list of 1-byte pieces would cost ~40 bytes per byte). Growing one ``bytearray`` for the whole
   line instead made the time of big lines depend on the allocator's state: realloc extends the block in
   place at the top of a fresh heap, but in a process that has done other work it moves it (a copy of the
   line so far) several times per line, or the heap top is trimmed after each line and its pages fault
   in again for the next.
3. Memory bounded by ``max_event_size``, never by stream length: a line, or the data of one event, that
   grows past it raises ``SSEProtocolError`` naming its byte offset.
4. Speed (bench/bench_parser.py measures it; bench/README.md has the numbers): Python code runs once per
   line or per chunk, never per character, and the splitting is done in C. An ASCII chunk with LF line ends
   only is decoded once and split by ``str.split``; any other chunk is split by ``bytes.splitlines()``
   (whose line ends are exactly CR, LF and CRLF), because decoding non-ASCII text whole and splitting it
   as a wide ``str`` costs more. A chunk of ``data: value`` + blank line pairs with one line end (Gemini,
   OpenAI) is split at "<line end><line end>data: " instead, so that the pieces are the values (``_pairs``;
   in C where the optional extension ``_speedups`` is built, ``_pairs_reference`` being its reference);
   other chunks whose lines alternate ``data: value`` and blank take a batch path: one comprehension slices
   and decodes the values, ``map`` builds the events. Other
   chunks go through one loop (bytes lines decoded one by one first) where ``partition(": ")`` usually
   finds name and value in one step. The size checks run line by line only when a chunk could reach the
   limit; otherwise the data length is totalled once per chunk.

Decoding runs of complete lines, single lines or single values equals decoding the whole stream at once
(what the spec does): line ends, colons and spaces are ASCII, so no UTF-8 sequence, valid or not, spans one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from itertools import repeat
from typing import Any

from ._accelerators import speedups_wanted
from ._event import Event
from ._exceptions import SSEProtocolError, SSEUsageError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventParser", "aiter_events", "iter_events", "parse"]

# Browsers set no limit at all. Gemini events carry inline images as base64 (a 1024x1024 PNG is ~2 MB),
# so the default sits far above any real event while still stopping a runaway line from eating memory.
DEFAULT_MAX_EVENT_SIZE = 64 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
# Chunks shorter than this are collected into a bytearray piece of an unfinished line, longer ones kept as
# they are: a piece's own cost (its object and list slot) stays a few percent of its bytes, and copying
# small chunks into a piece of this size stays cheap whatever the allocator does.
_PIECE = 1024
_BLANK: tuple[Any, Any] = ("", b"")  # a blank line, as text and (index 1, raw) as bytes
# What ends a `data: value` line and the blank line after it, for each line end: indexed by (CR in the
# chunk) + 2 * (LF in it); a chunk with both may be CRLF. The pure-Python pairs path also splits at that plus
# the next line's `data: `, as bytes and, for ASCII chunks, as text.
_PAIR_SEPARATORS: tuple[Any, ...] = (None, b"\r\r", b"\n\n", b"\r\n\r\n")
_PAIR_SPLITS: dict[bytes, tuple[bytes, str, str]] = {
    sep: (sep + b"data: ", sep.decode(), sep.decode() + "data: ") for sep in _PAIR_SEPARATORS[1:]
}
_new_event = tuple.__new__  # Event is a NamedTuple; building it through tuple.__new__ skips a Python frame.
_decode = bytes.decode  # strict UTF-8: see _pairs
# Endless, so one of each serves every batch: zip and map only draw from them.
_EVENT, _MESSAGE, _NONE = repeat(Event), repeat("message"), repeat(None)


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
        "_block_retry",
        "_bom",
        "_closed",
        "_data",
        "_data_len",
        "_fed",
        "_id",
        "_partial",
        "_pending",
        "_pieces",
        "_skip_lf",
        "_type",
        "last_event_id",
        "max_event_size",
        "retry",
    )

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, last_event_id: str = "") -> None:
        if max_event_size < 1:
            raise SSEUsageError(f"max_event_size must be positive, got {max_event_size!r}")
        if "\x00" in last_event_id:
            raise SSEUsageError("last_event_id must not contain NUL: the spec never lets such an id in force")
        self.max_event_size = max_event_size
        # A reconnecting client starts with the id it sent as Last-Event-ID, so events keep reporting it.
        self.last_event_id = last_event_id
        self.retry: int | None = None
        # The unfinished line: its start from the last chunk that ended a line, then the pieces of the chunks
        # without a line end since (see _PIECE); its length in bytes.
        self._partial = b""
        self._pieces: list[bytes | bytearray] = []
        self._pending = 0
        self._fed = 0  # bytes fed so far: the stream offset for error messages
        self._bom: bytes | None = b""  # bytes seen while a leading BOM is still possible; None once decided
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next one ends no line
        self._closed = False
        # The spec's buffers for the block being read.
        self._data: list[str] = []
        self._data_len = 0
        self._type = ""
        self._id = last_event_id  # the "last event ID buffer"; last_event_id is the string set at dispatch
        self._block_retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next chunk of the stream; return the events it completes, in order."""
        if self._closed:
            raise SSEUsageError("EventParser.feed() called after close()")
        if type(chunk) is not bytes:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise SSEUsageError(
                    f"EventParser.feed() takes bytes, not {type(chunk).__name__}; "
                    "the parser does the decoding"
                )
            if not chunk:
                return []
            chunk = bytes(chunk)
        elif not chunk:
            return []
        start = self._fed  # stream offset of chunk[0]
        self._fed = start + len(chunk)

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

        # Int needles: "in" is then one memchr (a bytes needle first fails as an int, at the cost of an
        # exception).
        lf = 10 in chunk
        cr = 13 in chunk
        if not lf and not cr:
            # No line end: keep the chunk as a piece of the line, joined when it ends (the linear-time rule).
            pieces = self._pieces
            self._pending = pending = self._pending + len(chunk)
            if not self._partial:
                self._partial = chunk  # the line starts here: _join_spanned looks for `data: ` in it
            elif len(chunk) >= _PIECE:
                pieces.append(chunk)
            elif pieces and type(pieces[-1]) is bytearray and len(pieces[-1]) < _PIECE:
                pieces[-1] += chunk
            else:
                pieces.append(bytearray(chunk))
            if pending > self.max_event_size:
                raise self._rest_error([], pending)
            return []

        partial = self._partial
        pending = self._pending
        if (
            not self._data
            and not self._type
            and self._block_retry is None
            and not self._pieces
            and pending + len(chunk) <= self.max_event_size
        ):
            # Pairs path (Gemini, OpenAI): no block is half-read, and the chunk may be `data: value` lines,
            # each followed by a blank line, with one line end throughout: see _pairs.
            events = self._pairs(partial, chunk, _PAIR_SEPARATORS[cr + 2 * lf])
            if events is not None:
                return events
        # "Lines must be separated by either a CRLF pair, a single LF, or a single CR." Split the chunk into
        # its complete lines and the unfinished rest: an ASCII chunk with LF line ends only (most streams)
        # is decoded once and split as text; any other by bytes.splitlines(), whose line ends are exactly
        # those three, its lines decoded later one by one (see the module docstring for why).
        last = chunk[-1]
        # The first line begins with the unfinished one: its ``pending`` bytes are ``partial`` and ``pieces``.
        pieces = self._pieces
        if pieces:
            self._pieces = []
        spanned = None  # the value of a `data: ` line that began before the last chunk: see _join_spanned
        lines: list[Any]  # str lines, or bytes lines if raw
        if not cr and chunk.isascii():
            text = chunk.decode("ascii").split("\n")
            rest = text.pop()
            if pending:
                # The partial line may hold non-ASCII bytes (even a cut UTF-8 sequence): decode it whole.
                end = chunk[: len(text[0])]
                if pieces:
                    spanned, line = _join_spanned(partial, pieces, end)
                else:
                    line = partial + end
                text[0] = line.decode("utf-8", "replace")
            lines = text
            raw = False
            rest_bytes = chunk[len(chunk) - len(rest) :] if rest else b""
        else:
            lines = chunk.splitlines()
            rest_bytes = b"" if last == 0x0A or last == 0x0D else lines.pop()
            if pieces:
                spanned, lines[0] = _join_spanned(partial, pieces, lines[0])
            elif pending:
                lines[0] = partial + lines[0]
            raw = True
        self._partial = rest_bytes
        self._pending = len(rest_bytes)
        if not rest_bytes and last == 0x0D:
            self._skip_lf = True

        if (
            lines.count(_BLANK[raw]) == len(lines) >> 1
            and not self._data
            and not self._type
            and self._block_retry is None
            and pending + len(chunk) <= self.max_event_size
        ):
            # Batch path for streams of one-data-line events (Gemini, OpenAI): no block is half-read and the
            # lines alternate `data: value` and blank (half of them, rounded down, are blank, and all the
            # others are data lines, checked below), so each pair is "append the value to the empty data
            # buffer, dispatch", exactly what _lines would do, minus its per-line work.
            evens: list[Any] = lines[::2]
            if raw:
                values = [line[6:].decode("utf-8", "replace") for line in evens if line[:6] == b"data: "]
            else:
                values = [line[6:] for line in evens if line[:6] == "data: "]
            if len(values) == len(evens):
                if spanned is not None:
                    values[0] = spanned.decode("utf-8", "replace")
                if len(lines) % 2:  # the last data line's blank line has not come yet
                    value = values.pop()
                    self._data = [value]
                    self._data_len = len(value) + 1
                if len(lines) > 1:
                    self.last_event_id = last_id = self._id
                    return _message_events(values, last_id)
                return []
        if spanned is not None:  # the general loop needs the whole line
            whole: Any = b"data: " + spanned if raw else "data: " + spanned.decode("utf-8", "replace")
            lines[0] = whole
        events = self._lines(lines, raw, chunk, start, pending)
        if len(rest_bytes) > self.max_event_size:
            # A rest this long came in one chunk. Checked after the complete lines before it, so that an
            # earlier violation is the one reported, and their events travel with the error, in any chunking.
            raise self._rest_error(events, len(rest_bytes))
        return events

    def _pairs(self, partial: bytes, chunk: bytes, sep: bytes) -> list[Event] | None:
        """The events of ``chunk`` if it is `data: value` lines each followed by a blank line, else None.

        Called only when no block is half-read, no line spans earlier chunks in pieces and the limit is out of
        reach; ``partial`` is the start of the chunk's first line, ``sep`` the chunk's line end twice. Nothing
        is changed unless the chunk is such pairs (see ``_pairs_reference``, or its C twin).
        """
        found = _split_pairs(partial, chunk, sep, self._id)
        if found is None:
            return None
        events, rest = found
        self.last_event_id = self._id
        self._partial = rest
        self._pending = len(rest)
        if not rest and chunk[-1] == 0x0D:
            self._skip_lf = True
        return events

    def _rest_error(self, events: list[Event], pending: int) -> SSEProtocolError:
        offset = self._fed - pending
        return SSEProtocolError(
            f"line starting at byte offset {offset} is longer than max_event_size "
            f"({self.max_event_size} bytes) and has no end yet",
            offset,
            events,
        )

    def close(self) -> list[Event]:
        """End of stream: discard the unfinished block (the spec dispatches nothing for it). Returns ``[]``.

        The list return keeps the shape of ``feed`` so that callers can treat both alike.
        """
        self._closed = True
        self._partial = b""
        self._pieces = []
        self._pending = 0
        self._data = []
        self._data_len = 0
        self._type = ""
        self._block_retry = None
        return []

    def _lines(self, lines: list[Any], raw: bool, chunk: bytes, start: int, pending: int) -> list[Event]:
        """Interpret the complete ``lines`` of ``chunk`` (``str``, or ``bytes`` if ``raw``).

        ``chunk`` starts at stream offset ``start``; ``lines[0]`` begins with the ``pending`` bytes of earlier
        chunks. The error paths use all this to name byte offsets.
        """
        limit = self.max_event_size
        data = self._data
        data_len = self._data_len
        # The limits can only be reached if the data so far plus every byte here exceeds them (each line,
        # and each data line's characters plus its LF, take at least as many bytes): if not, skip the checks
        # and total the data length once at the end.
        checked = data_len + pending + len(chunk) > limit
        too_long = -1
        if checked:
            too_long = _find_long_line(chunk, pending, len(lines), limit)
            if too_long >= 0:
                del lines[too_long:]  # interpret the lines before it, then raise
        if raw:
            # One decode per line is cheaper than decoding each field value after splitting bytes.
            lines = [line.decode("utf-8", "replace") for line in lines]  # invalid UTF-8 becomes U+FFFD
        events: list[Event] = []
        append = events.append
        data_at_start = data
        count_at_start = len(data)
        etype = self._type
        last_id = self._id
        block_retry = self._block_retry
        dispatched_id = self.last_event_id
        for line in lines:
            if not line:
                # "If the line is empty (a blank line): dispatch the event." The last event ID string is
                # set even when the data buffer is empty; then nothing else happens.
                dispatched_id = last_id
                if data:
                    append(
                        _new_event(
                            Event,
                            (
                                etype or "message",
                                data[0] if len(data) == 1 else "\n".join(data),
                                last_id,
                                block_retry,
                            ),
                        )
                    )
                    data = []
                    data_len = 0
                etype = ""
                block_retry = None
                continue
            # "If the line starts with a colon, ignore the line" (a comment). "If the line contains a colon:
            # collect the characters before the first colon as the field name and the characters after it as
            # the value; if the value starts with a space, remove it." "Otherwise the whole line is the field
            # name and the value is the empty string." Most lines have ": " at their first colon, so one
            # partition on ": " does both steps; only if that fails is the line split again at ":" (and then
            # the value cannot start with a space, or ": " would have been found first).
            name, sep, value = line.partition(": ")
            if not sep or ":" in name:
                name, sep, value = line.partition(":")
            if not name:
                continue
            if name == "data":
                # "Append the field value to the data buffer, then append a single LF."
                data.append(value)
                if checked:
                    data_len += len(value) + 1
                    if data_len > limit:
                        self.last_event_id = dispatched_id
                        self._data, self._data_len, self._type, self._id = data, data_len, etype, last_id
                        raise _limit_error(
                            "event data reaching the line at byte offset {} is larger",
                            limit,
                            chunk,
                            pending,
                            start,
                            next(i for i, x in enumerate(lines) if x is line),  # lines are distinct objects
                            events,
                        )
            elif name == "event":
                etype = value
            elif name == "id":
                # "If the field value does not contain U+0000 NULL, set the last event ID buffer."
                if "\x00" not in value:
                    last_id = value
            elif name == "retry" and value.isdigit() and value.isascii():
                # "If the field value consists of only ASCII digits, set the reconnection time." int()
                # alone would also take "-1", "+1", "1_000" and non-ASCII digits; an empty value is ignored.
                block_retry = self.retry = int(value)
            # "Otherwise: the field is ignored."
        self.last_event_id = dispatched_id
        if not checked:
            if data is data_at_start:
                data_len += sum(map(len, data[count_at_start:])) + len(data) - count_at_start
            else:
                data_len = sum(map(len, data)) + len(data)
        if too_long >= 0:
            self._data, self._data_len, self._type, self._id = data, data_len, etype, last_id
            raise _limit_error(
                "line at byte offset {} is longer", limit, chunk, pending, start, too_long, events
            )
        self._data = data
        self._data_len = data_len
        self._type = etype
        self._id = last_id
        self._block_retry = block_retry
        return events


def _message_events(values: Iterable[str], last_id: str) -> list[Event]:
    """One ``message`` event per data value, each the only data line of its block (the batch paths)."""
    return list(map(_new_event, _EVENT, zip(_MESSAGE, values, repeat(last_id), _NONE)))


def _pairs_reference(
    partial: bytes, chunk: bytes, sep: bytes, last_id: str
) -> tuple[list[Event], bytes] | None:
    """``(events, rest)`` if ``partial + chunk`` is `data: value` lines each followed by ``sep``, else None.

    ``partial`` holds no line end (it starts the chunk's first line); ``sep`` is a line end twice, one of
    ``_PAIR_SEPARATORS``. The pure-Python pairs path, and the reference its C twin (``_speedups.pairs``) must
    equal for such arguments (the C checks them; this function trusts its one caller). The bytes are
    split at ``sep`` + `data: ` (as bytes, or as text for ASCII, which is decoded whole). If the first line
    starts with `data: ` and a separator was found, the pieces are the values, the last one followed by
    ``sep`` (the rest of the chunk starts the next line) or unfinished (its whole line is the rest). That is
    the whole truth if no value and not the rest holds a line end (a separator found accounts for every line
    end in it): one C-speed test on the values joined. Then each pair is "append the value to the empty data
    buffer, dispatch", what ``_lines`` would do: one ``message`` event with ``last_id`` per value.
    """
    # The first line must be a `data: ` line (a test that spares other streams the split).
    if (partial[:6] if len(partial) >= 6 else partial + chunk[: 6 - len(partial)]) != b"data: ":
        return None
    split_bytes, sep_text, split_text = _PAIR_SPLITS[sep]
    parts: Any  # bytes, or str for ASCII
    if chunk.isascii() and partial.isascii():
        parts = (partial + chunk).decode("ascii").split(split_text)
        end_sep: Any = sep_text
        text = True
    else:
        parts = chunk.split(split_bytes)
        parts[0] = partial + parts[0]
        end_sep = sep
        text = False
    # A separator holds line ends and ``partial`` none, so the line end that ends ``last`` (if it has one)
    # is in the chunk; so is all of ``last`` if a separator was found.
    last = parts[-1]
    end = last.find(end_sep)
    if end >= 0:
        parts[-1] = last[:end]
        rest = chunk[len(chunk) - len(last) + end + len(sep) :]
    elif len(parts) > 1:  # the last line is unfinished: it is the rest, `data: ` and all
        parts.pop()
        rest = chunk[len(chunk) - len(last) - 6 :]
    else:
        return None
    if 13 in rest or 10 in rest:
        return None
    if text:
        joined = "".join(parts)
        if "\r" in joined or "\n" in joined:
            return None
        parts[0] = parts[0][6:]
        values: Iterable[str] = parts
    else:
        joined_bytes = b"".join(parts)
        if 13 in joined_bytes or 10 in joined_bytes:
            return None
        parts[0] = parts[0][6:]
        values = map(_decode, parts)
    try:  # strict decoding costs less; it gives the same text when the bytes are valid UTF-8
        return _message_events(values, last_id), rest
    except UnicodeDecodeError:
        return _message_events([part.decode("utf-8", "replace") for part in parts], last_id), rest


# The pairs path in C when the optional extension was built (setup.py; a C compiler at install time), else
# in Python. Both give the same results; SSE_TOOLKIT_PURE_PYTHON=1 picks the Python one (tests run both).
def _load_pairs() -> Callable[[bytes, bytes, bytes, str], tuple[list[Event], bytes] | None]:
    if speedups_wanted():
        try:
            from ._speedups import pairs
        except ImportError:
            pass
        else:
            return pairs
    return _pairs_reference


_split_pairs = _load_pairs()
SPEEDUPS = _split_pairs is not _pairs_reference


def _join_spanned(partial: bytes, pieces: list[bytes | bytearray], end: bytes) -> tuple[bytes | None, bytes]:
    """Join a line that spans chunks, once: its start ``partial``, the ``pieces`` and its ``end``.

    Returns ``(None, line)``, or for a ``data: `` line (the long lines of real streams are data: inline
    images) ``(value, b"data: ")``: joined without the prefix, the value is not copied again to slice it
    off; the caller puts it in place of the line's empty value.
    """
    if partial[:6] == b"data: ":
        return b"".join([partial[6:], *pieces, end]), b"data: "
    return None, b"".join([partial, *pieces, end])


def _find_long_line(chunk: bytes, pending: int, count: int, limit: int) -> int:
    """Index of the first of the ``count`` complete lines longer than ``limit`` bytes, or -1.

    The first line also holds the ``pending`` bytes of earlier chunks. Only called near the limit.
    """
    for index, line in enumerate(chunk.splitlines()[:count]):
        if len(line) + (pending if index == 0 else 0) > limit:
            return index
    return -1


def _limit_error(
    what: str, limit: int, chunk: bytes, pending: int, start: int, index: int, events: list[Event]
) -> SSEProtocolError:
    """The over-limit error for line ``index`` of ``chunk``; ``what`` has a ``{}`` for the byte offset.

    Error path only, so it may re-split the bytes: line 0 began ``pending`` bytes before the chunk.
    """
    offset = start - pending if index == 0 else start + sum(map(len, chunk.splitlines(keepends=True)[:index]))
    return SSEProtocolError(f"{what.format(offset)} than max_event_size ({limit} bytes)", offset, events)


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
