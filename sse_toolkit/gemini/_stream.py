"""Gemini layer: body bytes -> ``GenerateContentResponse`` objects, incrementally, for both wire formats.

``ResponseDecoder`` is sans-IO (``feed(bytes) -> list``, ``close() -> list``); ``iter_responses`` and
``aiter_responses`` drive it over sync and async byte iterables. The format is detected from the first
bytes of the body (after any ``curl -i`` heads, which ``HeadSplitter`` strips and keeps):

- ``data: {...}`` lines: ``alt=sse``. Events come from ``EventParser`` (so LF, CR and CRLF framing all
  work). The API's mid-stream error arrives as raw JSON lines *without* ``data:``, which the SSE rules
  ignore as unknown fields; a cheap regex over line starts (C speed, not a second parser) notices the
  first line that is no SSE field, and from there on the bytes are collected as that raw JSON.
- ``[{...},\\r\\n{...}]``: the stream without ``alt=sse``. A small scanner finds where each top-level
  object ends (strings matched whole by one regex, brackets counted) and decodes it at once, so each
  response comes out as soon as its ``}`` arrives, not at ``]``.
- ``{...}``: a bare JSON body: an error body (``{"error": ...}``, raised as ``GeminiAPIError`` with the HTTP
  status from the heads when there are any) or a unary ``generateContent`` response.

Errors are raised after the responses that came before them have been returned: ``feed`` returns those
and keeps the error in ``error``; the next ``feed``/``close`` (and the iterators, right after yielding)
raise it. ``partial`` on the error is the merge of everything returned before it. The decoder does not merge
as it goes: it keeps the body bytes it was fed (references to the chunks, which the garbage collector never
scans) and, only when an error or ``merger`` asks, replays them through a twin decoder into the merge. The
same bytes give the same responses, so a stream that ends well pays nothing for ``partial``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import orjson

from ..parser._exceptions import SSEError, SSEUsageError
from ._errors import GeminiAPIError, GeminiDecodeError, GeminiError
from ._merge import ResponseMerger, check_finished
from ._types import GenerateContentResponse
from ..parser._http_head import HeadSplitter
from ..parser._parser import DEFAULT_MAX_EVENT_SIZE, EventParser

__all__ = ["FORMAT_JSON", "FORMAT_JSON_ARRAY", "FORMAT_SSE", "ResponseDecoder", "aiter_responses", "iter_responses"]

FORMAT_SSE = "sse"
FORMAT_JSON_ARRAY = "json-array"
FORMAT_JSON = "json"
_FORMAT_ERROR_BODY = "error-body"  # a non-JSON body under an HTTP error status (a proxy's HTML page)

_from_dict = GenerateContentResponse._lazy_from_dict  # the dicts are orjson's, fresh and ours alone
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# Line starts of raw JSON in an SSE body: the API's mid-stream error starts with a "{" line (pretty or not).
# Four substring searches run at C speed; a regex over every line start cost as much as the SSE parser.
# Other non-SSE lines are ignored as the SSE rules say; a body with no event at all is reported at its end.
_DATA_PREFIX = b"data: "
_BLOCK_END = b"\r\n\r"
_RAW_JSON = json.JSONDecoder()  # raw_decode: the first JSON value of a text and where it ends
_INCOMPLETE = object()
_JSON_LINE_STARTS = (b"\n{", b"\r{", b"\n[", b"\r[")
# Raw (non-SSE) bytes kept while waiting for them to become complete JSON: an error body is ~3 KB.
_MAX_RAW = 1024 * 1024
# One JSON string whole, or one bracket; a lone quote means a string that has not ended yet.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|"', re.DOTALL)


class ResponseDecoder:
    """Sans-IO decoder of one Gemini response body; see the module docstring for the formats.

    - ``feed(chunk)`` returns the responses the chunk completes; ``close()`` ends the body.
    - ``format``: ``"sse"``, ``"json-array"`` or ``"json"`` once detected, else None.
    - ``splitter``: the ``HeadSplitter`` that strips ``curl -i`` heads; pass your own if you have already
      stripped them with it, so that the HTTP status is known for an error body.
    - ``responses``: how many responses were returned so far; ``error``: the pending error, if any.
    - ``merger``: a ``ResponseMerger`` holding all of them merged (``merger.result()``); brought up to date
      on each use from the body bytes the decoder keeps until then (see the module docstring), not from
      the objects returned, so changes a consumer makes to those do not leak into it.
    """

    def __init__(self, *, splitter: HeadSplitter | None = None) -> None:
        self.splitter = splitter if splitter is not None else HeadSplitter()
        self.format: str | None = None
        self.error: GeminiError | None = None
        self.responses = 0
        # Body bytes fed since ``merger`` was last brought up to date; None in the twin that replays them.
        # Merging as they go cost 1.3 us per response, keeping the response objects more (the garbage
        # collector scans them), keeping each event's bytes 0.3 us; a chunk costs one list append.
        self._kept: list[bytes] | None = []
        self._twin: ResponseDecoder | None = None
        self._merger = ResponseMerger()
        self._offset = 0  # body offset of the next byte fed to the format decoder
        self._start = b""  # body bytes held until the format is known
        self._first = b""  # the first body bytes, for error messages
        self._closed = False
        # SSE
        self._parser: EventParser | None = None
        self._tail = b"\n"  # the last byte before this chunk: a "{" after a line end starts raw JSON
        self._raw: bytearray | None = None  # bytes from the first foreign line on
        self._raw_offset = 0
        self._fast = True  # the API's exact framing so far (see _sse)
        self._skip_lf = False  # a block ended at a chunk's final CR: drop an LF that starts the next chunk
        self._pending: list[bytes] = []  # fast path: the unfinished block, in pieces (joined once)
        self._pending_size = 0
        self._pending_tail = b""  # its last 2 bytes: the block end may straddle chunks
        # JSON array / bare JSON
        self._buf = b""  # unscanned or unfinished JSON; _buf[0] is at body offset _buf_offset
        self._buf_offset = 0
        self._pos = 0  # scan position in _buf
        self._depth = 0
        self._obj_start = -1
        self._searched = 0  # _pretty_end: where to resume looking for "\n}"
        self._array_state = "start"  # start -> items -> end

    # -- public --------------------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[GenerateContentResponse]:
        """Decode the next bytes (heads included); return the responses they complete, in order."""
        if self.error is not None:
            raise self.error
        if self._closed:
            raise SSEUsageError("ResponseDecoder.feed() called after close()")
        if type(chunk) is not bytes:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise SSEUsageError(
                    f"ResponseDecoder.feed() takes bytes, not {type(chunk).__name__} (open files in binary mode)"
                )
            chunk = bytes(chunk)
        try:
            body = self.splitter.feed(chunk)
            if not body:
                return []
            if self._kept is not None:
                self._kept.append(body)
            return self._body(body)
        except GeminiError:
            raise
        except SSEError as exc:
            raise GeminiDecodeError(str(exc), offset=getattr(exc, "offset", None), partial=self._partial()) from exc

    def close(self) -> list[GenerateContentResponse]:
        """End of the body: return what was still held back, or raise what it ends in."""
        self._raise_pending()
        if self._closed:
            return []
        self._closed = True
        try:
            tail = b""
            if self._kept is not None:  # the twin is fed body bytes only: the splitter is not its own
                tail = self.splitter.close()
                if tail:
                    self._kept.append(tail)
            out = self._body(tail)
            if self.format == FORMAT_SSE and self._fast and self.error is None:
                self._leave_fast(out)
            if self.format == FORMAT_SSE and self._raw is None and self.error is None:
                # Leniency of this layer (the parser keeps the spec): a last event whose blank line is
                # missing (a saved file cut after its last newline) still counts; a cut JSON then says so.
                out += self._body(b"\n\n")
        except GeminiError:
            raise
        except SSEError as exc:
            raise GeminiDecodeError(str(exc), offset=getattr(exc, "offset", None), partial=self._partial()) from exc
        if self.error is None:
            try:
                self._finish()
            except GeminiError as exc:
                if not out:
                    raise
                self.error = exc
        if self.error is not None and not out:
            self._raise_pending()
        return out

    def raise_error(self) -> None:
        """Raise the pending error, if there is one (the iterators call it after yielding)."""
        self._raise_pending()

    # -- plumbing ------------------------------------------------------------------------------------------

    def _raise_pending(self) -> None:
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

    def _partial(self) -> GenerateContentResponse | None:
        if self._kept is None:
            return None  # the twin: its errors are dropped
        merger = self.merger
        return merger.result() if merger.count else None

    def _http_status(self) -> int | None:
        head = self.splitter.head
        return head.status if head is not None else None

    def _emit(self, d: Any, out: list[GenerateContentResponse], where: str) -> None:
        """Turn one decoded JSON value into a response (appended to ``out``) or the pending error."""
        if type(d) is dict:
            if "error" in d and "candidates" not in d:
                self._fail_api(d, out)
                return
            try:
                response = _from_dict(d)
            except (AttributeError, TypeError) as exc:
                raise self._decode_error(f"{where}: not a GenerateContentResponse ({exc})", None, out) from None
        else:
            raise self._decode_error(f"{where}: expected a JSON object, got {type(d).__name__}", None, out)
        out.append(response)
        self.responses += 1

    def _fail_api(self, body: Any, out: list[GenerateContentResponse]) -> None:
        status = self._http_status()
        self.error = GeminiAPIError.from_body(body, http_status=status if status is not None else None)
        self.error.partial = self._partial()

    def _decode_error(
        self, message: str, offset: int | None, out: list[GenerateContentResponse]
    ) -> GeminiDecodeError:
        """A decode error; when ``out`` has responses it is kept pending so that they are returned first."""
        error = GeminiDecodeError(message, offset=offset, partial=self._partial())
        if out:
            self.error = error
            raise _Pending
        return error

    def _body(self, data: bytes) -> list[GenerateContentResponse]:
        out: list[GenerateContentResponse] = []
        try:
            self._body_into(data, out)
        except _Pending:
            pass
        if self.error is not None and not out:
            self._raise_pending()
        return out

    def _body_into(self, data: bytes, out: list[GenerateContentResponse]) -> None:
        if self.format is None:
            if not data:
                return
            self._start += data
            start = self._start
            if start.startswith(_BOM):
                start = start[3:]
            first = start.lstrip(_WHITESPACE)[:1]
            if not first or _BOM.startswith(self._start):
                return  # only whitespace so far
            data, self._start = self._start, b""
            self._first = data[:60]
            status = self._http_status()
            if status is not None and status >= 400 and first not in (b"[", b"{"):
                self.format = _FORMAT_ERROR_BODY
            elif first == b"[":
                self.format = FORMAT_JSON_ARRAY
            elif first == b"{":
                self.format = FORMAT_JSON
            else:
                self.format = FORMAT_SSE
                self._parser = EventParser()
                if data.startswith(_BOM):
                    self._fast = False
                    self._tail = b""  # the parser drops the BOM; the first line was judged above
        if self.format == FORMAT_SSE:
            self._sse(data, out)
        elif self.format == _FORMAT_ERROR_BODY:
            self._buf += data
            if len(self._buf) > _MAX_RAW:
                self._buf = self._buf[:_MAX_RAW]
        else:
            self._json(data, out)

    def _finish(self) -> None:
        """Checks at the end of the body."""
        if self.format is None:
            what = "whitespace only" if self._start else "no bytes"
            status = self._http_status()
            if status is not None and status >= 400:
                self.error = GeminiAPIError.from_body(b"", http_status=status)
                return
            raise GeminiDecodeError(f"empty body ({what}): no Gemini response in the input", offset=0)
        if self.format == _FORMAT_ERROR_BODY:
            self.error = GeminiAPIError.from_body(self._buf, http_status=self._http_status())
            return
        if self.format == FORMAT_SSE:
            if self._raw is None and not self.responses:
                assert self._parser is not None
                raise GeminiDecodeError(
                    f"unexpected bytes in an SSE stream at body offset 0 (no 'data:' event in it): "
                    f"{self._first[:60]!r}",
                    offset=0,
                )
            if self._raw is not None:
                raise GeminiDecodeError(
                    f"unexpected bytes that are neither SSE nor a JSON error at body offset {self._raw_offset}: "
                    f"{bytes(self._raw[:60])!r}",
                    offset=self._raw_offset,
                    partial=self._partial(),
                )
            return
        if self._obj_start >= 0 or (self._buf[self._pos :].strip() and self._array_state != "end"):
            offset = self._buf_offset + max(self._obj_start, 0)
            raise GeminiDecodeError(
                f"input ends inside a JSON object that starts at body offset {offset} (truncated JSON)",
                offset=offset,
                partial=self._partial(),
            )
        if self.format == FORMAT_JSON_ARRAY and self._array_state == "start":
            raise GeminiDecodeError("input ends before the JSON array starts", offset=self._buf_offset)

    # -- SSE -----------------------------------------------------------------------------------------------

    def _sse(self, data: bytes, out: list[GenerateContentResponse]) -> None:
        """The fast path for the API's exact framing, ``data: <one line>\\r\\n\\r\\n``, else ``_sse_general``.

        Each block that is exactly one ``data: `` line ended by CRLF + CR is decoded from the bytes directly
        (orjson reads bytes: no str detour). The first block of any other shape (LF framing, other fields,
        comments, raw JSON) hands the rest of the body to ``EventParser``, for good. Until then the parser
        would be in its initial state (every block ended with a blank line, no id, no retry), so the
        hand-over is exact. Like the parser, a block ends at the CR of its blank line.
        """
        if not self._fast:
            self._sse_general(data, out)
            return
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
                self._offset += 1
        pending = self._pending
        if pending:
            if b"\r" not in data and b"\r" not in self._pending_tail:
                # No line end yet: the block goes on (a memchr; searching for "\r\n\r" in the whole chunk
                # cost 2 us per chunk). Joining only when a CR comes keeps a long block linear.
                pending.append(data)
                self._pending_size += len(data)
                self._pending_tail = (self._pending_tail + data[-2:])[-2:]
                if self._pending_size > DEFAULT_MAX_EVENT_SIZE or b"\n" in data:
                    self._leave_fast(out)
                return
            data = pending[0] + data if len(pending) == 1 else b"".join(pending) + data
            pending.clear()
            self._pending_size = 0
        pos = 0
        size = len(data)
        find = data.find
        startswith = data.startswith
        add_response = out.append
        base = self.responses - len(out)  # self.responses == base + len(out), synced where it is read
        while (end := find(b"\r", pos)) >= 0:
            # The first CR after the block start must begin its blank line (a one-line block): one memchr
            # finds it; searching for the 4-byte end itself cost more than decoding the JSON.
            if startswith(b"\r\n\r\n", end) and startswith(b"data: ", pos) and find(b"\n", pos, end) < 0:
                text = data[pos + 6 : end]
                pos = end + 4
            else:  # the rarer shapes, one block at a time
                if not startswith(b"\r\n\r", end):
                    if end + 3 > size and _BLOCK_END.startswith(data[end:]):
                        end = -1  # the block end straddles this chunk and the next
                    break
                if not startswith(b"data: ", pos) or find(b"\n", pos, end) >= 0:
                    break
                text = data[pos + 6 : end]
                pos = end + 3  # a blank line ended by a CR alone, or by the chunk's end
                if pos >= size:
                    self._skip_lf = True
            # The common case inline (each call per event showed in the profile). Anything else, including
            # every error and a value that is no JSON object, goes through _emit_data, which decodes again
            # and says what is wrong. (The decoder takes any object with "in": the type test must stay.)
            try:
                d = _loads(text)
                if type(d) is dict and "error" not in d:
                    add_response(_from_dict(d))
                    continue
            except (_JSONDecodeError, AttributeError, TypeError):
                pass
            self.responses = base + len(out)
            self._emit_data(text, out)
            if self.error is not None:
                return
        self.responses = base + len(out)
        self._offset += pos
        rest = data[pos:] if pos else data
        if rest:
            pending.append(rest)
            self._pending_size = len(rest)
            self._pending_tail = rest[-2:]
            if not _DATA_PREFIX.startswith(rest[:6]) or end >= 0 or not _one_line_so_far(rest):
                self._leave_fast(out)  # a block of another shape: the parser takes over

    def _leave_fast(self, out: list[GenerateContentResponse]) -> None:
        """Hand the held bytes and the rest of the body to ``EventParser`` (``_sse_general``)."""
        self._fast = False
        rest = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if rest:
            self._sse_general(rest, out)

    def _emit_data(self, data: bytes | str, out: list[GenerateContentResponse]) -> None:
        try:
            value = _loads(data)
        except _JSONDecodeError as exc:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            try:
                value = _loads(text)  # invalid UTF-8 is replaced, as the parser would have done
            except _JSONDecodeError:
                raise self._decode_error(
                    f"event {self.responses + 1}: data is not JSON ({exc}): {text[:60]!r}", None, out
                ) from None
        self._emit(value, out, f"event {self.responses + 1}")

    def _sse_general(self, data: bytes, out: list[GenerateContentResponse]) -> None:
        offset = self._offset
        self._offset += len(data)
        if self._raw is not None:
            self._raw += data
            self._try_raw(out, data)
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
        assert self._parser is not None
        for event in self._parser.feed(sse_part):
            self._emit_data(event.data, out)
            if self.error is not None:
                return
        if self._raw is not None:
            self._try_raw(out, bytes(self._raw))

    def _try_raw(self, out: list[GenerateContentResponse], new: bytes) -> None:
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
                    self._fail_api(value, out)
                    return
                raise self._decode_error(
                    f"JSON without 'data:' at body offset {self._raw_offset} in an SSE stream, and not an error: "
                    f"{stripped[:60]!r}",
                    self._raw_offset,
                    out,
                )
        if len(self._raw) > _MAX_RAW or (stripped[:1] not in (b"{", b"[") and stripped):
            raise self._decode_error(
                f"unexpected bytes in an SSE stream at body offset {self._raw_offset}: {stripped[:60]!r}",
                self._raw_offset,
                out,
            )

    # -- JSON array / bare JSON --------------------------------------------------------------------------------

    def _json(self, data: bytes, out: list[GenerateContentResponse]) -> None:
        if self._pos:
            # Drop what was consumed: the buffer only ever holds the unfinished object (linear time).
            keep = self._obj_start if self._obj_start >= 0 else self._pos
            self._buf = self._buf[keep:]
            self._buf_offset += keep
            self._pos -= keep
            self._searched = max(0, self._searched - keep)
            self._obj_start = min(0, self._obj_start)
        buf = self._buf = self._buf + data
        pos = self._pos
        depth = self._depth
        array = self.format == FORMAT_JSON_ARRAY
        if self._obj_start >= 0 and self._pretty_end(buf, out):
            pos, depth = self._pos, 0
            if self.error is not None:
                return
        while True:
            match = _JSON_TOKEN.search(buf, pos)
            if match is None:
                if depth == 0:
                    self._check_gap(buf, pos, len(buf), out)
                pos = len(buf)
                break
            token = match.group()
            first = token[0]
            if first == 0x22:  # a string
                if len(token) == 1 or token[-1] != 0x22 or match.end() == len(buf) and _unfinished(token):
                    pos = match.start()  # the string has not ended yet: wait for more bytes
                    break
                if depth == 0:
                    raise self._decode_error(
                        f"unexpected JSON string at body offset {self._buf_offset + match.start()}",
                        self._buf_offset + match.start(),
                        out,
                    )
                pos = match.end()
                continue
            if depth == 0:
                self._check_gap(buf, pos, match.start(), out)
                if first == 0x5B and array and self._array_state == "start":  # [
                    self._array_state = "items"
                    pos = match.end()
                    continue
                if first == 0x5D and array and self._array_state == "items":  # ]
                    self._array_state = "end"
                    pos = match.end()
                    continue
                if first == 0x7B and (not array or self._array_state == "items"):  # {
                    self._obj_start = match.start()
                    self._searched = match.start()
                    if self._pretty_end(buf, out):
                        if self.error is not None:
                            break
                        pos = self._pos
                        continue
                    depth = 1
                    pos = match.end()
                    continue
                raise self._decode_error(
                    f"unexpected {token.decode()!r} at body offset {self._buf_offset + match.start()}",
                    self._buf_offset + match.start(),
                    out,
                )
            pos = match.end()
            if first in (0x7B, 0x5B):
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    text = buf[self._obj_start : pos]
                    where = f"JSON object at body offset {self._buf_offset + self._obj_start}"
                    self._obj_start = -1
                    try:
                        value = orjson.loads(text)
                    except orjson.JSONDecodeError as exc:
                        raise self._decode_error(f"{where} is not valid JSON ({exc})", None, out) from None
                    self._emit(value, out, where)
                    if self.error is not None:
                        break
        self._pos = pos
        self._depth = depth

    def _pretty_end(self, buf: bytes, out: list[GenerateContentResponse]) -> bool:
        """Fast path for the API's pretty-printed objects, whose closing brace is the only ``}`` that starts
        a line (a JSON string cannot hold a raw newline). Try the text up to such a ``\\n}`` as the whole
        object; if it decodes, it is the object (a prefix of a JSON value that is itself a complete value
        ends where the value does). Returns True after emitting it (``_pos`` is then after it); False leaves
        the token scanner to find the end. Resumes its search where it stopped: linear time.
        """
        start = self._obj_start
        end = buf.find(b"\n}", max(self._searched, start))
        for _ in range(2):  # a "\n}" that is not the end (other formatting): leave it to the scanner
            if end < 0:
                self._searched = max(start, len(buf) - 1)
                return False
            text = buf[start : end + 2]
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                end = buf.find(b"\n}", end + 2)
                continue
            self._obj_start = -1
            self._pos = end + 2
            self._emit(value, out, f"JSON object at body offset {self._buf_offset + start}")
            return True
        self._searched = len(buf)
        return False

    def _check_gap(self, buf: bytes, start: int, end: int, out: list[GenerateContentResponse]) -> None:
        """Between top-level values only whitespace (and, inside the array, commas) may appear."""
        gap = buf[start:end]
        allowed = b" \t\r\n," if self._array_state == "items" else b" \t\r\n"
        if gap.strip(allowed) or (self._array_state == "end" and gap.strip()):
            bad = start + len(gap) - len(gap.lstrip(allowed))
            raise self._decode_error(
                f"unexpected bytes at body offset {self._buf_offset + bad}: {gap.strip()[:60]!r}",
                self._buf_offset + bad,
                out,
            )


def _one_line_so_far(piece: bytes) -> bool:
    """True if ``piece`` has no line end, or only the start of the API's ``\\r\\n\\r`` at its end."""
    stripped = piece.rstrip(b"\r\n")
    return b"\n" not in stripped and b"\r" not in stripped and piece[len(stripped) :] in (b"", b"\r", b"\r\n")


def _find_foreign(scan: bytes) -> int:
    """Index of the first byte of a line of raw JSON in ``scan`` (which starts with a line end), or -1."""
    found = -1
    for needle in _JSON_LINE_STARTS:
        index = scan.find(needle)
        if index >= 0 and (found < 0 or index + 1 < found):
            found = index + 1
    return found


class _Pending(Exception):
    """Internal: stop decoding this chunk; the error waits in ``ResponseDecoder.error``."""


def _unfinished(token: bytes) -> bool:
    """True if a string token ending the buffer ends in an escaping backslash (regex matched up to it)."""
    count = len(token) - 1 - len(token[:-1].rstrip(b"\\"))
    return count % 2 == 1


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
    for chunk in chunks:
        responses = decoder.feed(chunk)
        if responses:
            yield from responses
        decoder.raise_error()
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
