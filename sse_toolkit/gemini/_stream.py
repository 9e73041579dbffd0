"""Gemini layer: body bytes -> ``GenerateContentResponse`` objects, incrementally, for every framing.

``ResponseDecoder`` is sans-IO (``feed(bytes) -> list``, ``close() -> list``); ``iter_responses`` and
``aiter_responses`` drive it over sync and async byte iterables. It strips any ``curl -i`` heads
(``HeadSplitter``), sniffs the framing from the first body bytes (``sniff_format``) and then hands every
byte to the one reader for that framing, chosen once (as h11's ``_readers.py`` picks a body reader):

- ``_SSEReader``, ``alt=sse``: the API's exact framing, ``data: <one line>\\r\\n\\r\\n``, decoded straight
  from the bytes; the first block of any other shape hands the rest of the body to ``_EventReader``, which
  reads any SSE through ``EventParser`` (LF, CR and CRLF framing, other fields, comments). The API's
  mid-stream error arrives as raw JSON lines *without* ``data:``, which the SSE rules ignore as unknown
  fields; a substring search for a ``{`` or ``[`` at a line start notices it, and from there on the bytes
  are collected as that raw JSON.
- ``_ArrayReader``, the stream without ``alt=sse`` (one JSON array): ``JSONArrayScanner`` finds where each
  object ends, so each response comes out as soon as its ``}`` arrives, not at ``]``.
- ``_ObjectReader``, a bare JSON object: a unary ``generateContent`` response or an error body
  (``{"error": ...}``, raised as ``GeminiAPIError`` with the HTTP status from the heads when there are any).
- ``_ErrorPageReader``, anything else under an HTTP error status (a proxy's HTML page): a ``GeminiAPIError``.

Readers append responses to a list and raise ``GeminiError`` where the body goes wrong; the decoder keeps
such an error pending while responses that came before it are still to be returned: ``feed`` returns them
and keeps the error in ``error``; the next ``feed``/``close`` (and the iterators, right after yielding)
raise it. ``partial`` on the error is the merge of everything returned before it. The decoder does not
merge as it goes: it keeps the body bytes it was fed (references to the chunks, which the garbage collector
never scans) and, only when an error or ``merger`` asks, replays them through a twin decoder into the merge.
The same bytes give the same responses, so a stream that ends well pays nothing for ``partial``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Protocol

import orjson

from ..parser._exceptions import SSEError, SSEUsageError
from ..parser._http_head import HeadSplitter
from ..parser._parser import DEFAULT_MAX_EVENT_SIZE, EventParser
from ._errors import GeminiAPIError, GeminiDecodeError, GeminiError
from ._format import BodyFormat, JSONArrayScanner, sniff_format
from ._merge import ResponseMerger, check_finished
from ._types import GenerateContentResponse

__all__ = ["ResponseDecoder", "aiter_responses", "iter_responses"]

_from_dict = GenerateContentResponse._lazy_from_dict  # the dicts are orjson's, fresh and ours alone
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_BOM = b"\xef\xbb\xbf"
_BLOCK_END = b"\r\n\r"  # a blank line after a line: a CR ends a line at once
_BETWEEN = b"\r\n\r\ndata: "  # the end of one API event and the start of the next
_RAW_JSON = json.JSONDecoder()  # raw_decode: the first JSON value of a text and where it ends
_INCOMPLETE = object()
# Line starts of raw JSON in an SSE body: the API's mid-stream error starts with a "{" line (pretty or not).
# Four substring searches run at C speed, where a regex over every line start would cost as much as the
# SSE parser. Other non-SSE lines are ignored as the SSE rules say.
_JSON_LINE_STARTS = (b"\n{", b"\r{", b"\n[", b"\r[")
# Raw (non-SSE) bytes kept while waiting for them to become complete JSON, and the most of an error page
# kept for its message: an API error body is a few KB.
_MAX_RAW = 1024 * 1024

_Responses = list[GenerateContentResponse]


class _Reader(Protocol):
    """One framing's decoder: ``feed`` appends the responses its bytes complete to ``out`` and raises
    ``GeminiError`` where the body goes wrong; ``close`` ends the body the same way."""

    def feed(self, data: bytes, out: _Responses) -> None: ...

    def close(self, out: _Responses) -> None: ...


# -- one decoded JSON value -> a response or an error --------------------------------------------------------


def _response(value: Any, where: str, status: int | None) -> GenerateContentResponse:
    """The response of one decoded JSON value; an error object raises ``GeminiAPIError``, anything else
    that is no response ``GeminiDecodeError`` naming ``where``."""
    if type(value) is not dict:
        raise GeminiDecodeError(f"{where}: expected a JSON object, got {type(value).__name__}")
    if "error" in value and "candidates" not in value:
        raise GeminiAPIError.from_body(value, http_status=status)
    try:
        response: GenerateContentResponse = _from_dict(value)
    except (AttributeError, TypeError) as exc:
        raise GeminiDecodeError(f"{where}: not a GenerateContentResponse ({exc})") from None
    return response


def _event_response(data: bytes | str, number: int, status: int | None) -> GenerateContentResponse:
    """The response of event ``number``'s data (the careful path: it says what is wrong)."""
    try:
        value = _loads(data)
    except _JSONDecodeError as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            value = _loads(text)  # invalid UTF-8 is replaced, as the parser would have done
        except _JSONDecodeError:
            raise GeminiDecodeError(f"event {number}: data is not JSON ({exc}): {text[:60]!r}") from None
    return _response(value, f"event {number}", status)


# -- alt=sse -------------------------------------------------------------------------------------------------


class _SSEReader:
    """``alt=sse`` in the API's exact framing, ``data: <one line>\\r\\n\\r\\n``, else ``_EventReader``.

    Each block that is exactly one ``data: `` line followed by the blank line ``\\r\\n\\r\\n`` is decoded from
    the bytes directly (orjson reads bytes: no str detour). The first block of any other shape (LF framing,
    a blank line ended by a CR alone, other fields, comments, raw JSON) hands the rest of the body to
    ``_EventReader``, for good. Until then a parser would be in its initial state (every block ended with a
    blank line, no id, no retry), so the hand-over is exact. Like the parser, a block ends at the CR of its
    blank line: a chunk that ends right after that CR completes the block.
    """

    def __init__(self, status: int | None, first: bytes) -> None:
        self._status = status
        self._first = first
        self._count = 0  # responses decoded so far
        self._offset = 0  # body offset of the next byte to decode (the first one held in _pending)
        self._skip_lf = False  # a block ended at a chunk's final CR: drop an LF that starts the next chunk
        self._pending: list[bytes] = []  # the unfinished block, in pieces (joined once)
        self._pending_size = 0
        self._pending_tail = b""  # its last 2 bytes: the block end may straddle chunks
        self._events: _EventReader | None = None  # set once the framing is not the API's
        if first.startswith(_BOM):  # the parser drops the BOM; the first line was judged by the sniffer
            self._events = _EventReader(status, first, 0, 0, tail=b"")

    def feed(self, data: bytes, out: _Responses) -> None:
        events = self._events
        if events is not None:
            events.feed(data, out)
            return
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
                self._offset += 1
        base = self._count - len(out)  # responses so far == base + len(out); synced where it is read
        pending = self._pending
        if pending:
            if 13 not in data and 13 not in self._pending_tail:
                # No line end yet: the block goes on. Joining only when a CR comes keeps a long block
                # linear. (An int needle makes "in" a plain memchr; a bytes needle costs an exception.)
                pending.append(data)
                self._pending_size += len(data)
                self._pending_tail = (self._pending_tail + data[-2:])[-2:]
                if self._pending_size > DEFAULT_MAX_EVENT_SIZE or 10 in data:
                    self._leave(out, base)
                return
            data = pending[0] + data if len(pending) == 1 else b"".join(pending) + data
            pending.clear()
            self._pending_size = 0
        # ``data`` starts where a block starts. One C-speed split on the bytes between two API events
        # (``\r\n\r\ndata: ``, long enough for the search to skip ahead) cuts out every event that the
        # chunk completes but the last; each is an API event if it holds no line end. (A find and two
        # startswith per event cost more: they parse their arguments from a format string on each call.)
        if data[:6] != b"data: ":
            self._hold(data, out, base)
            return
        texts = data.split(_BETWEEN)
        texts[0] = texts[0][6:]
        last = texts.pop()
        rest = len(data) - len(last) - 6  # where the unfinished block starts
        skip_lf = False
        if 13 in last:
            # The last block is complete once the CR of its blank line is here (a CR ends a line at once,
            # as in the parser): it joins the others, and what follows it starts the next block.
            end = last.find(b"\r")
            if last.startswith(_BLOCK_END, end) and 13 not in last[end + 3 :]:
                texts.append(last[:end])
                rest = len(data) - len(last) + end + 3
                if data[rest : rest + 1] == b"\n":
                    rest += 1
                elif rest == len(data):
                    skip_lf = True  # the LF of the blank line may start the next chunk
            elif not (end + 3 > len(last) and _BLOCK_END.startswith(last[end:])):
                # A CR that ends no blank line, or more line ends after the block: another shape, handed
                # over below.
                texts.append(last)
        append = out.append
        first = len(out)
        for text in texts:
            if 13 in text or 10 in text:  # a block of another shape: the parser takes over from its start
                done = sum(len(text) + len(_BETWEEN) for text in texts[: len(out) - first])
                self._offset += done
                self._hold(data[done:], out, base, leave=True)
                return
            # The common case inline (a call per event shows in profiles). Anything else, including every
            # error and a value that is no JSON object, goes through _event_response, which decodes again
            # and says what is wrong. (The decoder takes any object with "in": the type test must stay.)
            try:
                d = _loads(text)
                if type(d) is dict and "error" not in d:
                    append(_from_dict(d))
                    continue
            except (_JSONDecodeError, AttributeError, TypeError):
                pass
            append(_event_response(text, base + len(out) + 1, self._status))
        self._skip_lf = skip_lf
        self._offset += rest
        self._hold(data[rest:], out, base)

    def _hold(self, rest: bytes, out: _Responses, base: int, leave: bool = False) -> None:
        """Keep ``rest``, the start of the next block, for the next chunk; hand it and everything after it
        to the parser (``leave``, or when it cannot start an API event)."""
        self._count = base + len(out)
        if rest:
            self._pending.append(rest)
            self._pending_size = len(rest)
            self._pending_tail = rest[-2:]
            if leave or not (
                (rest[:6] == b"data: " or b"data: ".startswith(rest)) and _one_line_so_far(rest)
            ):
                self._leave(out, base)
        elif leave:
            self._leave(out, base)

    def close(self, out: _Responses) -> None:
        if self._events is None:
            self._leave(out, self._count - len(out))
        assert self._events is not None
        self._events.close(out)

    def _leave(self, out: _Responses, base: int) -> None:
        """Hand the held bytes and the rest of the body to an ``_EventReader``."""
        self._count = base + len(out)
        events = self._events = _EventReader(self._status, self._first, self._offset, self._count)
        rest = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if rest:
            events.feed(rest, out)


class _EventReader:
    """Any SSE framing, through ``EventParser``; raw JSON lines (the API's mid-stream error) collected apart.

    ``offset`` is the body offset of the first byte it is fed, ``count`` the responses decoded before it.
    """

    def __init__(
        self, status: int | None, first: bytes, offset: int, count: int, tail: bytes = b"\n"
    ) -> None:
        self._status = status
        self._first = first
        self._offset = offset
        self._count = count
        self._parser = EventParser()
        self._tail = tail  # the byte before this chunk: a "{" after a line end starts raw JSON
        self._raw: bytearray | None = None  # the bytes from the first raw JSON line on
        self._raw_offset = 0

    def feed(self, data: bytes, out: _Responses) -> None:
        offset = self._offset
        self._offset += len(data)
        if self._raw is not None:
            self._raw += data
            self._try_raw(data)
            return
        scan = self._tail + data
        foreign = _find_foreign(scan)
        if foreign >= 0:
            cut = foreign - len(self._tail)  # index in data; >= 0 unless the tail's own byte began it
            sse_part = data[: max(cut, 0)]
            self._raw = bytearray(scan[foreign:])
            self._raw_offset = offset - len(self._tail) + foreign
        else:
            sse_part = data
            self._tail = scan[-1:]
        for event in self._parser.feed(sse_part):
            self._count += 1
            out.append(_event_response(event.data, self._count, self._status))
        if self._raw is not None:
            self._try_raw(bytes(self._raw))

    def close(self, out: _Responses) -> None:
        if self._raw is None:
            # Leniency of this layer (the parser keeps the spec): a last event whose blank line is missing
            # (a saved file cut after its last newline) still counts; a cut JSON then says so.
            self.feed(b"\n\n", out)
        if self._raw is not None:
            raise GeminiDecodeError(
                "unexpected bytes that are neither SSE nor a JSON error at body offset "
                f"{self._raw_offset}: {bytes(self._raw[:60])!r}",
                offset=self._raw_offset,
            )
        if not self._count:
            raise GeminiDecodeError(
                "unexpected bytes in an SSE stream at body offset 0 (no 'data:' event in it): "
                f"{self._first[:60]!r}",
                offset=0,
            )

    def _try_raw(self, new: bytes) -> None:
        """Raise the raw JSON error as soon as its value is complete (``new``: the bytes just added).

        The first complete JSON value counts and whatever follows it is ignored (the API ends the stream
        there), so the outcome is the same however the bytes are chunked.
        """
        assert self._raw is not None
        stripped = bytes(self._raw).strip()
        if b"}" in new or b"]" in new:  # only then can the value have ended
            try:
                value, _ = _RAW_JSON.raw_decode(stripped.decode("utf-8", "replace"))
            except ValueError:
                value = _INCOMPLETE
            if value is not _INCOMPLETE:
                if (isinstance(value, dict) and "error" in value) or (
                    isinstance(value, list) and value and isinstance(value[0], dict) and "error" in value[0]
                ):
                    raise GeminiAPIError.from_body(value, http_status=self._status)
                raise GeminiDecodeError(
                    f"JSON without 'data:' at body offset {self._raw_offset} in an SSE stream, and not an "
                    f"error: {stripped[:60]!r}",
                    offset=self._raw_offset,
                )
        if len(self._raw) > _MAX_RAW or (stripped[:1] not in (b"{", b"[") and stripped):
            raise GeminiDecodeError(
                f"unexpected bytes in an SSE stream at body offset {self._raw_offset}: {stripped[:60]!r}",
                offset=self._raw_offset,
            )


def _one_line_so_far(piece: bytes) -> bool:
    """True if ``piece`` has no line end, or only the start of the API's ``\\r\\n\\r`` at its end."""
    stripped = piece.rstrip(b"\r\n")
    return 10 not in stripped and 13 not in stripped and piece[len(stripped) :] in (b"", b"\r", b"\r\n")


def _find_foreign(scan: bytes) -> int:
    """Index of the first byte of a line of raw JSON in ``scan`` (which starts with a line end), or -1."""
    found = -1
    for needle in _JSON_LINE_STARTS:
        index = scan.find(needle)
        if index >= 0 and (found < 0 or index + 1 < found):
            found = index + 1
    return found


# -- JSON ----------------------------------------------------------------------------------------------------


class _ArrayReader:
    """The stream without ``alt=sse``: one JSON array of responses, each decoded as soon as it ends."""

    array = True

    def __init__(self, status: int | None, first: bytes) -> None:
        self._status = status
        self._scanner = JSONArrayScanner(array=self.array, loads=_loads)

    def feed(self, data: bytes, out: _Responses) -> None:
        append = out.append
        for element in self._scanner.feed(data):
            value = element.value
            if type(value) is dict and "error" not in value:
                try:
                    append(_from_dict(value))
                    continue
                except (AttributeError, TypeError):
                    pass
            append(_response(value, f"JSON object at body offset {element.offset}", self._status))

    def close(self, out: _Responses) -> None:
        for element in self._scanner.close():
            out.append(_response(element.value, f"JSON object at body offset {element.offset}", self._status))


class _ObjectReader(_ArrayReader):
    """A bare JSON object: a unary response or an error body (objects one after another are each read)."""

    array = False


class _ErrorPageReader:
    """A body that is no JSON under an HTTP error status (a proxy's HTML page): ``GeminiAPIError`` at its end,
    with the page's first bytes as the message."""

    def __init__(self, status: int | None, first: bytes) -> None:
        self._status = status
        self._page = b""

    def feed(self, data: bytes, out: _Responses) -> None:
        if len(self._page) < _MAX_RAW:
            self._page = (self._page + data)[:_MAX_RAW]

    def close(self, out: _Responses) -> None:
        raise GeminiAPIError.from_body(self._page, http_status=self._status)


_READERS: dict[BodyFormat, Callable[[int | None, bytes], _Reader]] = {
    BodyFormat.SSE: _SSEReader,
    BodyFormat.JSON_ARRAY: _ArrayReader,
    BodyFormat.JSON_OBJECT: _ObjectReader,
    BodyFormat.UNKNOWN: _ErrorPageReader,
}


# -- the decoder ---------------------------------------------------------------------------------------------


class ResponseDecoder:
    """Sans-IO decoder of one Gemini response body; see the module docstring for the framings.

    - ``feed(chunk)`` returns the responses the chunk completes; ``close()`` ends the body.
    - ``format``: the ``BodyFormat`` once the first body bytes told it, else None. ``UNKNOWN`` is a body that
      is no JSON under an HTTP error status, read as an error page.
    - ``splitter``: the ``HeadSplitter`` that strips ``curl -i`` heads; pass your own if you have already
      stripped them with it, so that the HTTP status is known for an error body.
    - ``responses``: how many responses were returned so far; ``error``: the error the body ended in, if any
      (raised by the next ``feed``/``close``/``raise_error``).
    - ``merger``: a ``ResponseMerger`` holding all of them merged (``merger.result()``); brought up to date
      on each use from the body bytes the decoder keeps until then (see the module docstring), not from
      the objects returned, so changes a consumer makes to those do not leak into it.
    """

    def __init__(self, *, splitter: HeadSplitter | None = None) -> None:
        self.splitter = splitter if splitter is not None else HeadSplitter()
        self.format: BodyFormat | None = None
        self.error: GeminiError | None = None
        self.responses = 0
        self._reader: _Reader | None = None
        self._start = b""  # body bytes held until the format is known
        self._in_body = False  # the splitter has seen the end of the heads
        self._closed = False
        # Body bytes fed since ``merger`` was last brought up to date; None in the twin that replays them.
        # A chunk costs one list append here, far less than merging each response as it comes.
        self._kept: list[bytes] | None = []
        self._twin: ResponseDecoder | None = None
        self._merger = ResponseMerger()

    def feed(self, chunk: bytes) -> list[GenerateContentResponse]:
        """Decode the next bytes (heads included); return the responses they complete, in order."""
        if self._closed:
            raise SSEUsageError("ResponseDecoder.feed() called after close()")
        if self.error is not None:
            raise self.error
        if type(chunk) is not bytes:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise SSEUsageError(
                    f"ResponseDecoder.feed() takes bytes, not {type(chunk).__name__} "
                    "(open files in binary mode)"
                )
            chunk = bytes(chunk)
        if self._in_body:  # the splitter passes every byte on from here
            body = chunk
        else:
            try:
                body = self.splitter.feed(chunk)
            except SSEError as exc:  # a broken curl -i head
                body = b""
                self._failed(exc, [])
            if self.error is not None:
                raise self.error
            if not body:
                return []
            self._in_body = self.splitter.in_body
        if self._kept is not None:
            self._kept.append(body)
        return self._body(body)

    def close(self) -> list[GenerateContentResponse]:
        """End of the body: return what was still held back, or raise what it ends in."""
        if self.error is not None:
            raise self.error
        if self._closed:
            return []
        self._closed = True
        out: _Responses = []
        try:
            if self._kept is not None:  # the twin is fed body bytes only: the splitter is not its own
                tail = self.splitter.close()
                if tail:
                    self._kept.append(tail)
                    self._body_into(tail, out)
            reader = self._reader
            if reader is None:
                self._end_without_body()
            else:
                reader.close(out)
        except SSEError as exc:
            self._failed(exc, out)
        return self._returned(out)

    def raise_error(self) -> None:
        """Raise the pending error, if there is one (the iterators call it after yielding)."""
        if self.error is not None:
            raise self.error

    @property
    def merger(self) -> ResponseMerger:
        """All responses returned so far, merged (see the class docstring)."""
        kept = self._kept
        if kept is None:
            return self._merger  # the twin: it never merges
        twin = self._twin
        if twin is None:
            # It shares the splitter only to read the HTTP status, as this decoder did for the same bytes.
            twin = self._twin = ResponseDecoder(splitter=self.splitter)
            twin._kept = None
        add = self._merger.add
        try:
            for piece in kept:
                if twin.error is not None:
                    break
                for response in twin._body(piece):
                    add(response)
            if self._closed and not twin._closed and twin.error is None:
                for response in twin.close():
                    add(response)
        except SSEError:  # the twin fails where this decoder failed, after the same responses
            pass
        kept.clear()
        return self._merger

    # -- plumbing ------------------------------------------------------------------------------------------

    def _body(self, data: bytes) -> list[GenerateContentResponse]:
        """Decode body bytes; an error after some responses waits in ``error`` until they are returned."""
        out: _Responses = []
        reader = self._reader
        try:
            if reader is not None:
                reader.feed(data, out)
            else:
                self._body_into(data, out)
        except SSEError as exc:
            self._failed(exc, out)
        return self._returned(out)

    def _returned(self, out: _Responses) -> list[GenerateContentResponse]:
        """``out``, counted; with none to return, the error the body ends in is raised now (after some it
        waits in ``error`` until they are returned)."""
        if self.error is not None and not out:
            raise self.error
        self.responses += len(out)
        return out

    def _body_into(self, data: bytes, out: _Responses) -> None:
        reader = self._reader
        if reader is None:
            self._start += data
            body_format = sniff_format(self._start)
            if body_format is BodyFormat.UNKNOWN:
                return  # only whitespace so far
            data, self._start = self._start, b""
            status = self._http_status()
            if status is not None and status >= 400 and body_format is BodyFormat.SSE:
                body_format = BodyFormat.UNKNOWN  # no JSON where an error body belongs: an error page
            self.format = body_format
            reader = self._reader = _READERS[body_format](status, data[:60])
        reader.feed(data, out)

    def _end_without_body(self) -> None:
        status = self._http_status()
        if status is not None and status >= 400:
            raise GeminiAPIError.from_body(b"", http_status=status)
        what = "whitespace only" if self._start else "no bytes"
        raise GeminiDecodeError(f"empty body ({what}): no Gemini response in the input", offset=0)

    def _failed(self, exc: SSEError, out: _Responses) -> GeminiError:
        """The error the body ends in, as ``GeminiError`` with ``partial`` set; kept in ``error``."""
        if isinstance(exc, GeminiError):
            error = exc
        else:  # the parser's own errors (an event over the size limit, a broken head)
            error = GeminiDecodeError(str(exc), offset=getattr(exc, "offset", None))
            error.__cause__ = exc
        self.error = error
        if self._kept is not None:  # the twin's errors are dropped
            merger = self.merger  # the responses before the error, ``out`` included
            error.partial = merger.result() if merger.count else None
        return error

    def _http_status(self) -> int | None:
        head = self.splitter.head
        return head.status if head is not None else None


def _check(decoder: ResponseDecoder, strict: bool) -> None:
    if strict and decoder.error is None:
        check_finished(decoder.merger.result())


def iter_responses(
    chunks: Iterable[bytes], *, strict: bool = False, splitter: HeadSplitter | None = None
) -> Iterator[GenerateContentResponse]:
    """Yield each ``GenerateContentResponse`` of a Gemini body as soon as it is complete.

    ``chunks``: any iterable of bytes (httpx ``iter_bytes()``, requests ``iter_content(None)``, a file).
    Accepts ``alt=sse`` events (CRLF or LF framing), the JSON-array stream, ``curl -i`` output and a bare
    error body. Raises ``GeminiAPIError`` (``ClientError``/``ServerError``) for an error body or a mid-stream
    error, after yielding what came before it; ``GeminiDecodeError`` for bytes that are no Gemini body.

    A blocked prompt and a stream without ``finishReason`` are not errors here, as in google-genai (the
    responses say so). With ``strict=True`` the end of the stream raises ``PromptBlockedError`` or
    ``TruncatedStreamError`` for them, carrying the merged response.
    """
    decoder = ResponseDecoder(splitter=splitter)
    feed = decoder.feed
    for chunk in chunks:
        responses = feed(chunk)
        if responses:
            yield from responses
            if decoder.error is not None:
                raise decoder.error
    yield from decoder.close()
    decoder.raise_error()
    _check(decoder, strict)


async def aiter_responses(
    chunks: AsyncIterable[bytes], *, strict: bool = False, splitter: HeadSplitter | None = None
) -> AsyncIterator[GenerateContentResponse]:
    """Async twin of ``iter_responses``: httpx ``aiter_bytes()``, aiohttp ``content.iter_any()``."""
    decoder = ResponseDecoder(splitter=splitter)
    iterator = chunks.__aiter__()
    try:
        async for chunk in iterator:
            for response in decoder.feed(chunk):
                yield response
            decoder.raise_error()
        for response in decoder.close():
            yield response
        decoder.raise_error()
        _check(decoder, strict)
    finally:
        # Close the source when the consumer stops early (httpx-sse 0.4.1 fixed the same leak).
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
