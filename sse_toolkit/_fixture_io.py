"""Fixture layer: read and write fixture files (plain bodies, ``curl -i`` output, the recorded format).

Three kinds of file are fixtures, told apart by their content (never by the file name):

1. A plain response body, what ``curl --no-buffer`` printed: an SSE stream, a Gemini JSON array (the
   endpoint without ``alt=sse``), or a bare JSON body such as an ``{"error": {...}}``. It becomes one
   untimed exchange: status 200 (for an error body, the ``error.code`` it names), headers guessed from the
   content, and the body split into one chunk per SSE event or per JSON-array element.
2. ``curl -i`` output: the same, but status, reason and headers come from the final HTTP head (interim
   ``100 Continue`` and proxy heads are skipped). All headers are kept as printed, hop-by-hop ones
   (``Transfer-Encoding``, ``Content-Length``, ``Connection``) included: the replay server decides what
   it sends.
3. The recorded format, JSON Lines whose first line is ``{"sse_toolkit_fixture": 1, ...}``. One object
   per line; per exchange an optional ``request`` line, a ``response`` line, one line per body chunk as
   it arrived (``{"t": 0.412, "chunk": "data: ...\\r\\n\\r\\n"}``, or ``"chunk_b64"`` when the bytes are
   not valid UTF-8 on their own), and an ``end`` line. README.md ("Fixture files") has the full grammar.

A plain SSE body of ``STREAM_THRESHOLD`` bytes or more (16 MiB) is not read into memory: its exchange's
``chunks`` read the file lazily, one event at a time, on each iteration (split by the same rule as small
files), so replaying or serving a 1 GiB capture keeps memory flat. ``preview(exchange)`` gives its first
64 KiB as an ordinary exchange, for code that only needs to look at the start. A plain body that is
binary (NUL bytes and not UTF-8 in its first 64 KiB: a gzip, an image) is refused with ``FILE:LINE``.

Loading never executes code: the recorded format is read with ``orjson.loads`` and checked field by
field. Anything wrong in it raises ``FixtureError`` with ``FILE:LINE``. Writing is atomic: a temporary
file in the same directory, fsync, ``os.replace``; a crash or Ctrl-C leaves the old file as it was.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import http
import math
import os
import re
import secrets
import stat
from collections.abc import Iterator
from typing import Any

import orjson

from ._exceptions import SSEProtocolError
from ._fixture_errors import FixtureError
from ._fixture_model import END_COMPLETE, END_RESET, END_TIMEOUT, Chunk, Exchange, Fixture, RecordedRequest
from ._http_head import split_http_head

__all__ = [
    "FORMAT_VERSION",
    "STREAM_THRESHOLD",
    "dumps_fixture",
    "iter_sse_pieces",
    "load_fixture",
    "loads_fixture",
    "preview",
    "save_fixture",
    "split_body",
]

FORMAT_VERSION = 1  # the recorded format this code writes, and the newest it reads
_MAGIC = "sse_toolkit_fixture"
_ENDS = (END_COMPLETE, END_RESET, END_TIMEOUT)
# The recorded format is recognised by its first line; a leading BOM or blank lines (an editor's doing)
# are tolerated so that such a file gets a precise error or loads, instead of being served as a body.
_RECORDED = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"sse_toolkit_fixture"\s*:')

_SSE_HEADERS = [("Content-Type", "text/event-stream"), ("Content-Disposition", "attachment")]
_JSON_HEADERS = [("Content-Type", "application/json; charset=UTF-8")]

# ---------------------------------------------------------------------------------------------------------
# Public entry points


# Plain SSE bodies at least this big are streamed from disk instead of loaded whole.
STREAM_THRESHOLD = 16 * 1024 * 1024
_PREVIEW = 64 * 1024  # what is read of a big file up front, and what binary detection looks at
_BLOCK = 1024 * 1024


def load_fixture(path: str | os.PathLike[str]) -> Fixture:
    """Read the fixture file at ``path`` (any of the three kinds). Errors name ``path`` and the line.

    A big plain SSE body (``STREAM_THRESHOLD`` bytes or more) comes back with lazily read chunks."""
    name = os.fspath(path)
    with open(name, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < STREAM_THRESHOLD:
            return loads_fixture(file.read(), source=name)
        head = file.read(_PREVIEW)
        if not _streamable(head):
            return loads_fixture(head + file.read(), source=name)
    _refuse_binary(head, name)
    exchange = Exchange(headers=list(_SSE_HEADERS), chunks=_FileChunks(name, size))  # type: ignore[arg-type]
    return Fixture(exchanges=[exchange], source=name, version=FORMAT_VERSION)


def preview(exchange: Exchange) -> Exchange:
    """``exchange`` itself, or for one streamed from disk an ordinary exchange with its first ~64 KiB of
    chunks (whole events): enough to tell its kind and model without reading the whole file."""
    if not isinstance(exchange.chunks, _FileChunks):
        return exchange
    chunks: list[Chunk] = []
    total = 0
    for chunk in exchange.chunks:
        chunks.append(chunk)
        total += len(chunk.data)
        if total >= _PREVIEW:
            break
    return Exchange(exchange.request, exchange.status, exchange.reason, list(exchange.headers), chunks,
                    exchange.end, exchange.head_t)


def loads_fixture(data: bytes, source: str | None = None) -> Fixture:
    """Read a fixture from bytes; ``source`` names it in error messages (and, for a plain body, in
    ``Fixture.source``). A recorded fixture keeps the ``source`` note stored in its own header."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FixtureError(f"fixture data must be bytes, got {type(data).__name__}", source)
    data = bytes(data)
    if _RECORDED.match(data):
        return _load_recorded(data, source)
    return _load_plain(data, source)


def dumps_fixture(fixture: Fixture) -> bytes:
    """The fixture in the recorded format (JSON Lines, UTF-8, LF line ends, a final newline)."""
    header: dict[str, Any] = {_MAGIC: FORMAT_VERSION}
    if fixture.source is not None:
        header["source"] = _check_str(fixture.source, "source")
    lines = [_dumps(header)]
    for number, exchange in enumerate(fixture.exchanges, 1):
        lines.extend(_dump_exchange(exchange, number))
    return b"\n".join(lines) + b"\n"


def save_fixture(path: str | os.PathLike[str], fixture: Fixture) -> None:
    """Write ``fixture`` to ``path`` in the recorded format, atomically (all or nothing)."""
    _write_atomic(os.fspath(path), dumps_fixture(fixture))


# ---------------------------------------------------------------------------------------------------------
# Plain bodies and curl -i output


def _load_plain(data: bytes, source: str | None) -> Fixture:
    _refuse_binary(data[:_PREVIEW], source)
    try:
        heads, body = split_http_head(data)
    except SSEProtocolError as exc:
        offset = exc.offset or 0
        raise FixtureError(str(exc), source, data.count(b"\n", 0, offset) + 1) from None
    if heads:
        head = heads[-1]
        if head.is_interim:
            raise FixtureError(
                f"the curl -i output has only interim heads (the last: {head.status} {head.reason}), "
                "no final response head before the body",
                source,
                1,
            )
        kind = _kind_from_type(head.header("content-type", "") or "", body)
        exchange = Exchange(
            status=head.status, reason=head.reason, headers=list(head.headers), chunks=_chunks(kind, body)
        )
    else:
        exchange = _guess_exchange(body)
    return Fixture(exchanges=[exchange], source=source, version=FORMAT_VERSION)


def _refuse_binary(sample: bytes, source: str | None) -> None:
    """A plain body with NUL bytes that is not UTF-8 either is no SSE or JSON text (gzip, an image...)."""
    nul = sample.find(b"\x00")
    if nul < 0:
        return
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as exc:
        raise FixtureError(
            f"binary data, not an SSE stream or a JSON body (a NUL byte at byte offset {nul}, invalid UTF-8 at "
            f"byte offset {exc.start}); is it compressed, or not a fixture at all?",
            source,
            sample.count(b"\n", 0, nul) + 1,
        ) from None


def _streamable(head: bytes) -> bool:
    """Whether a big file can be streamed from disk: a plain SSE body (no curl -i head, not JSON, not the
    recorded format, which all need the whole file)."""
    start = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    return not (_RECORDED.match(head) or start.startswith((b"HTTP/", b"[", b"{")))


class _FileChunks:
    """The chunks of a big plain SSE body, read from the file on each iteration, one event each.

    Iterating keeps at most one read block (1 MiB) plus one event in memory. ``len``, indexing and ``==``
    work but read the whole file (they exist so that code written for lists stays correct)."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size

    def __iter__(self) -> Iterator[Chunk]:
        return (Chunk(piece) for piece in iter_sse_pieces(self.path))

    def __bool__(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, _FileChunks)) else NotImplemented

    def __repr__(self) -> str:
        return f"<chunks of {self.path!r}, {self.size} bytes, read lazily>"


def iter_sse_pieces(path: str, block: int = _BLOCK) -> Iterator[bytes]:
    """The pieces ``split_body`` would give for the SSE body in file ``path``, read ``block`` bytes at a time.

    A blank-line match that touches the end of what was read so far may go on in the next block (more line
    ends, or the LF of a CRLF), so it is held back until a byte follows it or the file ends."""
    with open(path, "rb") as file:
        buffer = b""
        scan = 0
        while data := file.read(block):
            buffer = buffer + data if buffer else data
            start = 0
            held: int | None = None
            for match in _EVENT_END.finditer(buffer, scan):
                if match.end() == len(buffer):
                    held = match.start()
                    break
                yield buffer[start : match.end()]
                start = match.end()
            buffer = buffer[start:]
            # Where the next search starts: the held match, else the last byte (a CR or LF may begin one).
            scan = held - start if held is not None else max(0, len(buffer) - 1)
        yield from _split_sse(buffer)


def _guess_exchange(body: bytes) -> Exchange:
    """One untimed exchange for a body without its HTTP head: status and headers guessed from content."""
    start = body.lstrip(b" \t\r\n")
    if start.startswith(b"["):
        return Exchange(headers=list(_JSON_HEADERS), chunks=_chunks("json", body))
    if start.startswith(b"{"):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            status, reason = 200, "OK"
            error = value.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            if type(code) is int and 100 <= code <= 599:
                status, reason = code, _reason(code)
            return Exchange(status=status, reason=reason, headers=list(_JSON_HEADERS), chunks=_chunks("one", body))
    return Exchange(headers=list(_SSE_HEADERS), chunks=_chunks("sse", body))


def _kind_from_type(content_type: str, body: bytes) -> str:
    content_type = content_type.lower()
    if "event-stream" in content_type:
        return "sse"
    if "json" in content_type:
        return "json" if body.lstrip(b" \t\r\n").startswith(b"[") else "one"
    return "one"


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _chunks(kind: str, body: bytes) -> list[Chunk]:
    if kind == "sse":
        pieces = _split_sse(body)
    elif kind == "json":
        pieces = _split_json_array(body)
    else:
        pieces = [body] if body else []
    return [Chunk(piece) for piece in pieces]


def split_body(body: bytes, content_type: str = "text/event-stream") -> list[bytes]:
    """Split a response body into the pieces a fixture stores: one per SSE event (``text/event-stream``),
    one per JSON-array element (a JSON type whose body starts with ``[``), else the body whole.
    ``b"".join(split_body(b)) == b`` always."""
    return [chunk.data for chunk in _chunks(_kind_from_type(content_type, body), body)]


# An event ends at an empty line: a line end followed by one or more line ends (CRLF, LF or CR). A CR
# directly before LF is one line end, never two, so "\r\n" alone never splits.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)+")


def _split_sse(body: bytes) -> list[bytes]:
    pieces = []
    start = 0
    for match in _EVENT_END.finditer(body):
        pieces.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        pieces.append(body[start:])  # an unfinished event, or a mid-stream error's raw JSON
    return pieces


_JSON_TOKEN = re.compile(rb'["\[\]{}]')
_JSON_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.DOTALL)


def _split_json_array(body: bytes) -> list[bytes]:
    """Cut after each element of the top-level array; the closing ``]`` stays with the last element.

    One pass over the brackets and strings (each string is matched once), so linear even on garbage;
    input that is not a well-formed array just yields fewer cuts, and the bytes are always kept whole.
    """
    cuts = []
    depth = 0
    position = 0
    while (match := _JSON_TOKEN.search(body, position)) is not None:
        token = match.group()
        position = match.end()
        if token == b'"':
            rest = _JSON_STRING_REST.match(body, position)
            if rest is None:
                break  # an unterminated string: no further cuts
            position = rest.end()
        elif token in b"[{":
            depth += 1
        else:
            depth -= 1
            if depth == 1:
                cuts.append(position)
            elif depth <= 0:
                break
    pieces = []
    start = 0
    for cut in cuts:
        pieces.append(body[start:cut])
        start = cut
    if start < len(body):
        if pieces:
            pieces[-1] += body[start:]
        else:
            pieces.append(body[start:])
    return pieces


# ---------------------------------------------------------------------------------------------------------
# The recorded format: reading


class _Reader:
    """Reads the recorded format line by line, as a small state machine, raising FixtureError(file, line)."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.line = 0

    def fail(self, detail: str) -> FixtureError:
        return FixtureError(detail, self.source, self.line)

    def load(self, data: bytes) -> Fixture:
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        fixture: Fixture | None = None
        exchange: Exchange | None = None
        request: RecordedRequest | None = None
        exchange_line = 0
        for self.line, raw in enumerate(data.split(b"\n"), 1):
            raw = raw.rstrip(b"\r")  # a CRLF checkout of the file; CRs inside strings are escaped
            if not raw.strip():
                continue
            record = self.parse_line(raw)
            if fixture is None:
                fixture = self.header(record)
                continue
            kind = self.kind(record)
            if kind == "request":
                if exchange is not None or request is not None:
                    raise self.fail(self.out_of_place("request", exchange, request))
                request = self.request(record["request"])
                exchange_line = self.line
            elif kind == "response":
                if exchange is not None:
                    raise self.fail(self.out_of_place("response", exchange, request))
                exchange = self.response(record["response"], request)
                exchange_line = exchange_line if request is not None else self.line
                request = None
            elif kind == "chunk":
                if exchange is None:
                    raise self.fail(self.out_of_place("chunk", exchange, request))
                exchange.chunks.append(self.chunk(record))
            else:  # end
                if exchange is None:
                    raise self.fail(self.out_of_place("end", exchange, request))
                exchange.end = self.end(record)
                fixture.exchanges.append(exchange)
                exchange = None
        if fixture is None:  # only possible for whitespace, which _RECORDED never matches; be safe
            raise FixtureError("empty file: no fixture header", self.source, 1)
        if exchange is not None or request is not None:
            number = len(fixture.exchanges) + 1
            raise self.fail(
                f'the file ends inside exchange {number} (begun on line {exchange_line}) before its "end" line; '
                "the file is truncated"
            )
        return fixture

    @staticmethod
    def out_of_place(kind: str, exchange: Exchange | None, request: RecordedRequest | None) -> str:
        if exchange is not None:
            expected = 'a chunk line or an "end" line'
        elif request is not None:
            expected = 'the "response" line of this request'
        else:
            expected = 'a "request" or "response" line (the start of an exchange)'
        return f'unexpected "{kind}" line here: expected {expected}'

    def parse_line(self, raw: bytes) -> dict[str, Any]:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self.fail(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(record, dict):
            raise self.fail(f"each line must be a JSON object {{...}}, got {_type_name(record)}")
        return record

    def header(self, record: dict[str, Any]) -> Fixture:
        version = record.get(_MAGIC)
        if type(version) is not int:
            raise self.fail(f'"{_MAGIC}" must be the format version, an integer; got {_show(version)}')
        if version > FORMAT_VERSION or version < 1:
            raise self.fail(
                f"unsupported fixture format version {version}: this sse_toolkit reads version {FORMAT_VERSION}"
                + ("; upgrade sse-toolkit" if version > FORMAT_VERSION else "")
            )
        self.keys(record, "header", {_MAGIC}, {"source"})
        source = record.get("source")
        if source is not None and not isinstance(source, str):
            raise self.fail(f'"source" must be a string, got {_show(source)}')
        return Fixture(exchanges=[], source=source, version=version)

    def kind(self, record: dict[str, Any]) -> str:
        for kind in ("request", "response", "end"):
            if kind in record:
                return kind
        if "chunk" in record or "chunk_b64" in record or "t" in record:
            return "chunk"
        if _MAGIC in record:
            raise self.fail("a second fixture header; the header belongs on line 1 only")
        raise self.fail(
            f'unknown line: expected one of "request", "response", "chunk"/"chunk_b64", "end"; '
            f"got keys {sorted(record)}"
        )

    def keys(self, record: dict[str, Any], what: str, required: set[str], optional: set[str]) -> None:
        missing = required - record.keys()
        if missing:
            raise self.fail(f"{what} is missing {', '.join(repr(k) for k in sorted(missing))}")
        unknown = record.keys() - required - optional
        if unknown:
            allowed = ", ".join(repr(k) for k in sorted(required | optional))
            raise self.fail(f"{what} has unknown {', '.join(repr(k) for k in sorted(unknown))} (allowed: {allowed})")

    def request(self, value: Any) -> RecordedRequest:
        obj = self.obj(value, '"request"')
        self.keys(obj, '"request"', {"method", "path"}, {"query", "headers", "body", "body_b64"})
        return RecordedRequest(
            method=self.string(obj, "method"),
            path=self.string(obj, "path"),
            query=self.string(obj, "query", ""),
            headers=self.headers(obj),
            body=self.data(obj, "body", "body_b64", required=False),
        )

    def response(self, value: Any, request: RecordedRequest | None) -> Exchange:
        obj = self.obj(value, '"response"')
        self.keys(obj, '"response"', {"status"}, {"reason", "headers", "head_t"})
        status = obj["status"]
        if type(status) is not int or not 100 <= status <= 999:
            raise self.fail(f'"status" must be an HTTP status code (100-999), got {_show(status)}')
        return Exchange(
            request=request,
            status=status,
            reason=self.string(obj, "reason", ""),
            headers=self.headers(obj),
            chunks=[],
            head_t=self.time(obj, "head_t"),
        )

    def chunk(self, record: dict[str, Any]) -> Chunk:
        self.keys(record, "a chunk line", set(), {"t", "chunk", "chunk_b64"})
        return Chunk(self.data(record, "chunk", "chunk_b64", required=True), self.time(record, "t"))

    def end(self, record: dict[str, Any]) -> str:
        self.keys(record, 'the "end" line', {"end"}, set())
        end = record["end"]
        if end not in _ENDS:
            raise self.fail(f'"end" must be one of {", ".join(repr(e) for e in _ENDS)}; got {_show(end)}')
        return str(end)

    def obj(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be an object {{...}}, got {_type_name(value)}")
        return value

    def string(self, obj: dict[str, Any], key: str, default: str | None = None) -> str:
        value = obj.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f'"{key}" must be a string, got {_show(value)}')
        return value

    def headers(self, obj: dict[str, Any]) -> list[tuple[str, str]]:
        value = obj.get("headers", [])
        if not isinstance(value, list):
            raise self.fail(f'"headers" must be a list of [name, value] pairs, got {_type_name(value)}')
        headers = []
        for index, pair in enumerate(value):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise self.fail(f'"headers"[{index}] must be a [name, value] pair of strings, got {_show(pair)}')
            headers.append((pair[0], pair[1]))
        return headers

    def data(self, obj: dict[str, Any], text_key: str, b64_key: str, *, required: bool) -> bytes:
        if text_key in obj and b64_key in obj:
            raise self.fail(f'use either "{text_key}" or "{b64_key}", not both')
        if text_key in obj:
            return self.string(obj, text_key).encode("utf-8")
        if b64_key in obj:
            encoded = self.string(obj, b64_key)
            try:
                return base64.b64decode(encoded.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise self.fail(f'"{b64_key}" is not valid base64') from None
        if required:
            raise self.fail(f'a chunk line needs "{text_key}" (text) or "{b64_key}" (base64 bytes)')
        return b""

    def time(self, obj: dict[str, Any], key: str) -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
            raise self.fail(f'"{key}" must be seconds since the request (a number >= 0), got {_show(value)}')
        return float(value)


def _load_recorded(data: bytes, source: str | None) -> Fixture:
    return _Reader(source).load(data)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------
# The recorded format: writing


def _dumps(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record)
    except TypeError as exc:  # orjson.JSONEncodeError: a str with lone surrogates, a non-JSON type
        raise FixtureError(f"cannot write the fixture: {exc}") from None


def _dump_exchange(exchange: Exchange, number: int) -> list[bytes]:
    where = f"exchange {number}"
    lines = []
    if exchange.request is not None:
        req = exchange.request
        request: dict[str, Any] = {
            "method": _check_str(req.method, f"{where}: request method"),
            "path": _check_str(req.path, f"{where}: request path"),
            "query": _check_str(req.query, f"{where}: request query"),
            "headers": _check_headers(req.headers, f"{where}: request headers"),
        }
        request.update(_encode_data(req.body, "body", "body_b64", f"{where}: request body"))
        lines.append(_dumps({"request": request}))
    if type(exchange.status) is not int or not 100 <= exchange.status <= 999:
        raise FixtureError(f"cannot write the fixture: {where}: status {exchange.status!r} is not 100-999")
    response: dict[str, Any] = {
        "status": exchange.status,
        "reason": _check_str(exchange.reason, f"{where}: reason"),
        "headers": _check_headers(exchange.headers, f"{where}: response headers"),
    }
    if exchange.head_t is not None:
        response["head_t"] = _check_time(exchange.head_t, f"{where}: head_t")
    lines.append(_dumps({"response": response}))
    for index, chunk in enumerate(exchange.chunks):
        record: dict[str, Any] = {}
        if chunk.t is not None:
            record["t"] = _check_time(chunk.t, f"{where}: chunk {index} time")
        record.update(_encode_data(chunk.data, "chunk", "chunk_b64", f"{where}: chunk {index}"))
        lines.append(_dumps(record))
    if exchange.end not in _ENDS:
        raise FixtureError(f"cannot write the fixture: {where}: end {exchange.end!r} is not one of {_ENDS}")
    lines.append(_dumps({"end": exchange.end}))
    return lines


def _encode_data(data: bytes, text_key: str, b64_key: str, what: str) -> dict[str, str]:
    if not isinstance(data, (bytes, bytearray)):
        raise FixtureError(f"cannot write the fixture: {what} must be bytes, got {type(data).__name__}")
    try:
        return {text_key: bytes(data).decode("utf-8")}
    except UnicodeDecodeError:
        # Not valid UTF-8 by itself (binary, or a network chunk that splits a character): keep it exact.
        return {b64_key: base64.b64encode(data).decode("ascii")}


def _check_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise FixtureError(f"cannot write the fixture: {what} must be a string, got {type(value).__name__}")
    return value


def _check_headers(headers: Any, what: str) -> list[list[str]]:
    pairs = []
    for pair in headers:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise FixtureError(f"cannot write the fixture: {what}: {pair!r} is not a (name, value) pair of str")
        pairs.append([pair[0], pair[1]])
    return pairs


def _check_time(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise FixtureError(f"cannot write the fixture: {what} {value!r} is not a number of seconds >= 0")
    return float(value)


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new one, never half.

    The temporary file sits in the same directory (``os.replace`` is atomic only within one filesystem)
    and is created with mode 0666 minus the umask, like a plain ``open(path, "w")``; an existing file's
    permission bits are kept.
    """
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    # Make the rename itself durable; not every platform can open a directory, which is fine.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
