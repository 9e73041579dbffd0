"""Replay layer: sans-IO HTTP/1.1 for the loopback server: requests read from bytes, replies turned into bytes.

Goal: no thread and no file object per connection, so that one loop can serve hundreds of streams.
:class:`RequestReader` is fed whatever bytes a socket gave and gives back a whole request, nothing yet, or
a :class:`Refusal` to answer before closing: the answers ``http.server`` gives (400 for a request line that
is not HTTP, 414 for one over 64 KiB, 431 for a head over its limits, 505 for HTTP/2 and later, HTTP/0.9
``GET``), plus 413 for a body over its limit. :class:`ReplyWriter` turns a handler's :class:`Reply` into the
pieces to write now and the instant the next one is due; the server's loop writes them without blocking,
a worker thread (for a handler that waits for the network) with blocking writes and sleeps.

Cost: O(n) in the bytes fed. The end of a head is searched only in new bytes (plus the 3 before them), a
body is sliced out once, a chunked body is parsed chunk by chunk as it arrives; a reply's pieces are framed
once each, and a writer holds at most one piece ahead (a 1 GiB stream replayed at speed 0 is never held in
memory).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl

from ..parser._end import End

__all__ = [
    "AbruptClose",
    "Handler",
    "ParsedRequest",
    "Refusal",
    "ReplayRequest",
    "Reply",
    "ReplyWriter",
    "RequestReader",
    "Step",
    "chunk",
    "error_reply",
    "refusal_reply",
]

_MAX_LINE = 65536  # as http.server: a request line or header line longer than this is refused
_MAX_FIELDS = 100  # as http.client.parse_headers
_MAX_SIZE_LINE = 1024  # a chunk-size line (size and extensions)
_FIELD_NAME = re.compile(rb"[!#-'*+\-.0-9A-Z^-z|~]+")
_VERSION = re.compile(r"HTTP/(\d{1,10})\.(\d{1,10})")


class Refusal(Exception):
    """The request cannot be served: answer ``status`` with ``message`` and close the connection."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class ParsedRequest:
    """One request as read: ``target`` is the raw request target (path and query)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool


_SPECIAL = frozenset({"connection", "transfer-encoding", "content-length", "expect"})


def _special(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The first value of each header the reader itself acts on, by lower-case name."""
    found: dict[str, str] = {}
    for key, value in headers:
        lower = key.lower()
        if lower in _SPECIAL and lower not in found:
            found[lower] = value
    return found


class RequestReader:
    """Feed bytes with :meth:`feed`; :meth:`next_request` gives each whole request in order.

    ``max_head`` bounds the request line and headers together (431 over it), ``max_body`` the body (413).
    After a head that says ``Expect: 100-continue`` and whose body has not all come, :attr:`wants_continue`
    is true until :meth:`continue_sent` is called (the server then writes ``100 Continue``).
    """

    def __init__(self, max_head: int, max_body: int) -> None:
        self.max_head = max_head
        self.max_body = max_body
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer already searched for the end of the head
        self._head: tuple[str, str, str, list[tuple[str, str]], bool] | None = None
        self._length: int | None = None  # the body's length, known from Content-Length
        self._chunks: list[bytes] | None = None  # a chunked body read so far
        self._chunked_total = 0
        self.wants_continue = False

    @property
    def idle(self) -> bool:
        """True when no byte of a next request has come yet."""
        return not self._buffer and self._head is None

    @property
    def head_done(self) -> bool:
        """True once the current request's head is read (its body may still be coming)."""
        return self._head is not None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def continue_sent(self) -> None:
        self.wants_continue = False

    def discard(self) -> None:
        """Drop what is buffered (the connection is closed)."""
        self._buffer = bytearray()
        self._head, self._chunks = None, None

    def next_request(self) -> ParsedRequest | None:
        """The next whole request, or None until more bytes come. Raises :class:`Refusal`."""
        if self._head is None and not self._read_head():
            return None
        assert self._head is not None
        body = self._read_body()
        if body is None:
            return None
        method, target, version, headers, keep_alive = self._head
        self._head, self._length, self._chunks, self._chunked_total = None, None, None, 0
        self.wants_continue = False
        return ParsedRequest(method, target, version, headers, body, keep_alive)

    # -- head ------------------------------------------------------------------------------------
    def _read_head(self) -> bool:
        buffer = self._buffer
        while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":  # empty lines before a request are ignored
            del buffer[: 2 if buffer[:1] == b"\r" else 1]
            self._searched = 0
        start = max(0, self._searched - 3)
        ends = [i for i in (buffer.find(b"\n\r\n", start), buffer.find(b"\n\n", start)) if i >= 0]
        if not ends:
            self._searched = len(buffer)
            line_end = buffer.find(b"\n")
            if (line_end < 0 and len(buffer) > _MAX_LINE) or line_end > _MAX_LINE:
                raise Refusal(414, "Request-URI Too Long", "request line over 64 KiB")
            if len(buffer) > self.max_head:
                raise Refusal(431, "Request Header Fields Too Large", f"request head over {self.max_head} bytes")
            return False
        end = min(ends)
        size = end + (3 if buffer[end + 1 : end + 2] == b"\r" else 2)
        head = bytes(buffer[:size])
        del buffer[:size]
        self._searched = 0
        line_end = head.find(b"\n")
        if line_end + 1 > _MAX_LINE:
            raise Refusal(414, "Request-URI Too Long", "request line over 64 KiB")
        if size > self.max_head:
            raise Refusal(431, "Request Header Fields Too Large", f"request head over {self.max_head} bytes")
        method, target, version, keep_alive = _request_line(head[:line_end].rstrip(b"\r"))
        headers = _fields(head[line_end + 1 : end + 1])
        special = _special(headers)
        connection = special.get("connection", "").lower()
        if connection == "close":
            keep_alive = False
        elif connection == "keep-alive" and version != "HTTP/0.9":
            keep_alive = True
        self._head = (method, target, version, headers, keep_alive)
        if "chunked" in special.get("transfer-encoding", "").lower():
            self._chunks = []
        else:
            text = special.get("content-length", "").strip() or "0"
            if not text.isdigit():
                raise Refusal(400, "Bad Request", f"bad request body: Content-Length {text!r} is not a number of bytes")
            self._length = int(text)
            if self._length > self.max_body:
                raise Refusal(413, "Content Too Large",
                              f"request body of {self._length} bytes is over the {self.max_body} byte limit")
        body_pending = self._chunks is not None or bool(self._length)
        if body_pending and version >= "HTTP/1.1" and special.get("expect", "").lower() == "100-continue":
            self.wants_continue = True
        return True

    # -- body ------------------------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        buffer = self._buffer
        if self._chunks is None:
            length = self._length or 0
            if len(buffer) < length:
                return None
            body = bytes(buffer[:length])
            del buffer[:length]
            return body
        # Chunked: size line, data, CRLF; ...; the 0 chunk, trailers, a blank line. Parsed from ``pos`` on,
        # and what was parsed is cut off the buffer once per call: a body of many tiny chunks stays linear.
        pos = 0
        try:
            while True:
                line_end = buffer.find(b"\n", pos, pos + _MAX_SIZE_LINE + 1)
                if line_end < 0:
                    if len(buffer) - pos > _MAX_SIZE_LINE:
                        raise Refusal(400, "Bad Request", "bad request body: chunk size line too long")
                    return None
                size_text = bytes(buffer[pos:line_end]).split(b";")[0].strip()
                try:
                    size = int(size_text or b"0", 16)
                except ValueError:
                    raise Refusal(400, "Bad Request", f"bad request body: chunk size {size_text!r} is not hex") from None
                if size < 0:
                    raise Refusal(400, "Bad Request", f"bad request body: negative chunk size {size}")
                if size == 0:
                    trailers_end = _blank_line_after(buffer, line_end + 1)
                    if trailers_end is None:
                        if len(buffer) - pos > self.max_head:
                            raise Refusal(431, "Request Header Fields Too Large", "request trailers over the head limit")
                        return None
                    pos = trailers_end
                    return b"".join(self._chunks)
                if self._chunked_total + size > self.max_body:
                    raise Refusal(413, "Content Too Large", f"chunked request body over the {self.max_body} byte limit")
                data_end = line_end + 1 + size
                if len(buffer) < data_end + 2:
                    return None
                crlf_end = data_end + (1 if buffer[data_end : data_end + 2] == b"\r\n" else 0)
                if buffer[crlf_end : crlf_end + 1] != b"\n":
                    raise Refusal(400, "Bad Request", "bad request body: a chunk does not end with CRLF")
                self._chunks.append(bytes(buffer[line_end + 1 : data_end]))
                self._chunked_total += size
                pos = crlf_end + 1
        finally:
            del buffer[:pos]


def _blank_line_after(buffer: bytearray, start: int) -> int | None:
    """The end of the first empty line at or after ``start`` (trailer lines skipped), or None."""
    position = start
    while True:
        line_end = buffer.find(b"\n", position)
        if line_end < 0:
            return None
        if buffer[position:line_end].rstrip(b"\r") == b"":
            return line_end + 1
        position = line_end + 1


def _request_line(line: bytes) -> tuple[str, str, str, bool]:
    """(method, target, version, keep-alive by default) of a request line, as ``http.server`` reads it."""
    text = line.decode("iso-8859-1")
    words = text.split()
    if len(words) == 2 and words[0] == "GET":
        return words[0], words[1], "HTTP/0.9", False
    if len(words) != 3:
        raise Refusal(400, "Bad Request", f"bad request syntax ({text!r})")
    method, target, version = words
    match = _VERSION.fullmatch(version)
    if match is None:
        raise Refusal(400, "Bad Request", f"bad request version ({version!r})")
    number = int(match[1]), int(match[2])
    if number >= (2, 0):
        raise Refusal(505, "HTTP Version Not Supported", f"invalid HTTP version ({version[5:]})")
    if target.startswith("//"):
        target = "/" + target.lstrip("/")
    return method, target, version, number >= (1, 1)


# A header line: a field name (token characters) at the start of a line, a colon, a value on the same line
# (spaces and tabs around it dropped). One findall (in C) splits the block; when it found one field a line,
# every line was one; anything else (a folded line, a line without a name) takes the line-by-line path.
_FIELD_SPLIT = re.compile(rb"(?m)^([!#-'*+\-.0-9A-Z^-z|~]+):[ \t]*((?:[^\r\n]*[^ \t\r\n])?)[ \t]*\r?\n")


def _fields(block: bytes) -> list[tuple[str, str]]:
    """Header fields in order, from the header lines (each ending with a line feed, without the blank line
    that ends the head); a folded line (starting with a space or tab) continues the one before."""
    lines = block.count(b"\n")
    if len(block) <= _MAX_LINE and lines <= _MAX_FIELDS:
        found = _FIELD_SPLIT.findall(block)
        if len(found) == lines:
            return [(name.decode("ascii"), value.decode("iso-8859-1")) for name, value in found]
    if lines > _MAX_FIELDS:
        raise Refusal(431, "Request Header Fields Too Large", f"more than {_MAX_FIELDS} header lines")
    fields: list[tuple[str, str]] = []
    for raw in block.split(b"\n")[:-1]:
        if len(raw) + 1 > _MAX_LINE:
            raise Refusal(431, "Request Header Fields Too Large", "header line over 64 KiB")
        line = raw.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and fields:
            last, value = fields[-1]
            fields[-1] = (last, (value + " " + line.strip(b" \t").decode("iso-8859-1")).strip())
            continue
        name, colon, raw_value = line.partition(b":")
        if not colon or _FIELD_NAME.fullmatch(name) is None:
            raise Refusal(400, "Bad Request", f"bad header line {line[:80]!r}")
        fields.append((name.decode("ascii"), raw_value.strip(b" \t").decode("iso-8859-1")))
    return fields


# -- replies ---------------------------------------------------------------------------------------------


class AbruptClose(Exception):
    """Raised from ``Reply.chunks`` to end the response without the final chunk.

    ``reset=True`` closes with a TCP RST (SO_LINGER 0); otherwise with a plain FIN.
    """

    def __init__(self, reset: bool = True) -> None:
        super().__init__("abrupt close" + (" (reset)" if reset else ""))
        self.reset = reset


@dataclass
class ReplayRequest:
    """A request as the server received it. ``query`` is the raw query string (without ``?``)."""

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Worked out on first use (a replay handler asks for several headers and parameters of each request).
    _by_name: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _params: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of request header ``name`` (case-insensitive), or ``default``."""
        if self._by_name is None:
            self._by_name = {key.lower(): value for key, value in self.headers}  # the last value wins
        return self._by_name.get(name.lower(), default)

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the last value wins; blank values kept)."""
        if self._params is None:
            if "%" in self.query or "+" in self.query:
                self._params = dict(parse_qsl(self.query, keep_blank_values=True))
            else:  # nothing to decode (``alt=sse``): what parse_qsl gives, without its cost
                pairs = (item.partition("=") for item in self.query.split("&") if item)
                self._params = {name: value for name, _, value in pairs}
        return dict(self._params)

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


@dataclass
class Reply:
    """A response to send.

    ``chunks`` are ``(t, data)`` pairs: ``data`` goes out as one HTTP chunk at ``t`` seconds after the
    request arrived (``None``: at once). ``stream=False`` sends the joined body with ``Content-Length``
    instead of chunked encoding. ``end`` is End.COMPLETE, or End.RESET/End.TIMEOUT for an abrupt close after
    the last chunk. ``head_t`` delays the status line.
    """

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: Iterable[tuple[float | None, bytes]] = ()
    end: End = End.COMPLETE
    stream: bool = True
    head_t: float | None = None
    reason: str | None = None


Handler = Callable[[ReplayRequest], Reply]


def error_reply(exc: BaseException) -> Reply:
    """The 500 answer to a handler (or a body) that raised ``exc`` before anything was sent."""
    body = f"sse-replay: internal error: {exc}\n".encode()
    return Reply(500, [("Content-Type", "text/plain")], [(None, body)], stream=False)


def refusal_reply(refusal: Refusal) -> Reply:
    """The answer to a request that cannot be served (see :class:`Refusal`)."""
    body = f"sse-replay: {refusal.message}\n".encode()
    return Reply(refusal.status, [("Content-Type", "text/plain")], [(None, body)], stream=False,
                 reason=refusal.reason)


# How a response ends: the final chunk went out and the connection may serve another request (DONE); close
# after the bytes written (CLOSE, a FIN); or close with a TCP RST (RESET).
DONE, CLOSE, RESET = "done", "close", "reset"
# Headers the server writes itself; a handler's (or a recording's) copies are dropped.
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date"})
_FINAL = b"0\r\n\r\n"
_HEAD_MEASURE = 1 << 20
_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass
class Step:
    """What a :class:`ReplyWriter` step gives: ``pieces`` to write now, one write each; ``due``, the instants
    the timed ones among them were due (for the lateness hook); then either ``end`` (DONE, CLOSE, RESET:
    the response is over once the pieces are written), or ``wait``, the instant to step again, or neither:
    step again as soon as the pieces are written."""

    pieces: list[bytes]
    due: list[float]
    wait: float | None = None
    end: str | None = None


def chunk(data: bytes) -> bytes:
    """``data`` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header value, formatted once a second (formatdate costs ~10 us; a burst asks 100 times)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


# Heads already built, by everything that goes in them (the Date included): the streams of one fixture
# all get the same head, and building one costs more than the rest of a piece's way to the socket.
_heads: dict[tuple[object, ...], bytes] = {}


class ReplyWriter:
    """One :class:`Reply` to a request that arrived at ``arrived`` (``time.monotonic``), as steps.

    Each :meth:`step` gives what is due by ``now``: the head (once ``head_t`` is due), a body piece framed
    as one chunk, or the final chunk; at most one body piece a step, and the next piece is read from the
    body (and framed) only in the step after it, that is once the caller has written it: at a piece's
    instant only its write is left to do, the work of reading the next one comes after (100 streams of
    one recording have pieces due in the same millisecond). A step that meets a piece due later returns
    its instant as ``wait``. With ``merge_head`` the head goes out in the same write as a first piece due
    at once (a handler that never waits: one packet); without, alone, at once (a proxy whose first piece
    may take long). ``stream=False`` and ``HEAD`` replies are one piece with ``Content-Length``. An error
    raised by a lazy body ends the response (CLOSE) and is kept in :attr:`error`; :meth:`close` closes a
    lazy body (a fixture streamed from disk) early or at the end.
    """

    def __init__(self, reply: Reply, arrived: float, method: str, close_connection: bool, *,
                 merge_head: bool) -> None:
        self.reply = reply
        self.arrived = arrived
        self.method = method
        self.close_connection = close_connection
        self.merge_head = merge_head
        self.error: BaseException | None = None
        self._items: Iterator[tuple[float | None, bytes]] | None = None
        # The next piece, read from the body and framed ahead of its time: (when due or None, bytes).
        self._pending: tuple[float | None, bytes] | None = None

    def head(self, length: int | None) -> bytes:
        reply = self.reply
        date = _http_date()
        key = (reply.status, reply.reason, tuple(reply.headers), length, self.close_connection, date)
        head = _heads.get(key)
        if head is None:
            lines = [f"HTTP/1.1 {reply.status} {reply.reason or _REASONS.get(reply.status, 'Unknown')}"]
            lines += [f"{k}: {v}" for k, v in reply.headers if k.lower() not in _OWN_HEADERS]
            lines.append(f"Date: {date}")
            lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
            if self.close_connection:
                lines.append("Connection: close")
            text = "\r\n".join(lines) + "\r\n\r\n"
            try:
                head = text.encode("latin-1")  # what HTTP/1.1 header bytes are read as
            except UnicodeEncodeError:  # a hand-written fixture header such as "café€": send it as UTF-8
                head = text.encode("utf-8")
            if len(_heads) >= 256:
                _heads.clear()
            _heads[key] = head
        return head

    def step(self, now: float) -> Step:
        reply, step = self.reply, Step([], [])
        with_head = False  # the head is in this step (a first piece due now joins it)
        if self._items is None:
            if reply.head_t and self.arrived + reply.head_t > now:
                step.wait = self.arrived + reply.head_t
                return step
            if not reply.stream or self.method == "HEAD":
                try:
                    body = self._joined()
                except Exception as exc:  # noqa: BLE001 - nothing sent yet: answer 500, report it
                    self.error, self.reply, self.close_connection = exc, error_reply(exc), True
                    return self.step(now)
                if body is None:  # HEAD of a stream too long to measure: its head as a GET would get it
                    step.pieces.append(self.head(None))
                    step.end = CLOSE if self.close_connection else DONE
                    return step
                head = self.head(len(body))
                step.pieces.append(head if self.method == "HEAD" else head + body)
                step.end = CLOSE if self.close_connection else DONE
                return step
            self._items = iter(reply.chunks)
            step.pieces.append(self.head(None))
            if not self.merge_head:
                return step
            with_head = True
        while True:
            if self._pending is not None:
                due, framed = self._pending
                if due is not None and due > now:
                    step.wait = due
                    return step
                self._pending = None
                if not framed:
                    continue  # an empty piece only marks a pause
                if due is not None:
                    step.due.append(due)
                if with_head:
                    step.pieces[0] += framed  # the head and the first piece: one write
                else:
                    step.pieces.append(framed)
                return step  # one piece a step: the next is read from the body once this one is written
            try:
                item = next(self._items, None)
            except AbruptClose as close:
                step.end = RESET if close.reset else CLOSE
                return step
            except Exception as exc:  # noqa: BLE001 - the body failed: end the response, report it
                self.error = exc
                step.end = CLOSE
                return step
            if item is None:
                step.end = DONE if reply.end == End.COMPLETE else RESET if reply.end == End.RESET else CLOSE
                if step.end == DONE:
                    step.pieces.append(_FINAL)
                    if self.close_connection:
                        step.end = CLOSE
                return step
            t, data = item
            self._pending = (None if t is None else self.arrived + t, chunk(data) if data else b"")

    def _joined(self) -> bytes | None:
        """The whole body; for ``HEAD`` of a stream, None once past _HEAD_MEASURE bytes (a 1 GiB fixture
        is not read to give a Content-Length nobody downloads)."""
        if self.method != "HEAD" or not self.reply.stream:
            return b"".join(data for _, data in self.reply.chunks)
        parts, size = [], 0
        for _, data in self.reply.chunks:
            parts.append(data)
            size += len(data)
            if size > _HEAD_MEASURE:
                return None
        return b"".join(parts)

    def close(self) -> None:
        """Close a lazy body (a generator, a file-backed iterator); safe to call more than once."""
        close = getattr(self.reply.chunks, "close", None)
        if close is not None:
            close()
