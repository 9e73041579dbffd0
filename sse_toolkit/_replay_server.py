"""Replay layer: the loopback HTTP/1.1 server (lifecycle, threads, chunked streaming, abrupt close).

Strategy: stdlib ``socketserver``, ``http.server``'s request handling (its request line checks; header
fields split here, ``email.parser`` only for unusual heads), one daemon thread per open connection (a
thread that finished one waits ``_IDLE_WORKER`` seconds to take the next, so a burst of connections does not
wait for threads to start), and responses written by hand on the raw socket so that streaming stays exact:
  * each body piece of a :class:`Reply` is sent as ONE HTTP/1.1 chunk in ONE write (TCP_NODELAY is set, so
    it leaves at once), at its own time offset after the request arrived. A piece due later is handed to
    the server's one pacer thread, which writes every piece due at the same instant back to back while
    the connection threads sleep (100 threads each waking for their own write would queue for the GIL:
    tens of milliseconds for the last one), and wakes those threads only once no other chunk is due within
    1 ms (at most 5 ms after their write), so that they do not take the GIL from it while it still writes;
    what does not fit the socket's send buffer goes back to the connection thread, so a stalled reader
    never holds up the others;
  * from the moment its bytes arrive until its first write, a request is handled holding the server's gate
    lock (see ``_RequestHandler._gate``): under a burst, requests take turns instead of sharing the GIL
    and all answering late; the gate is let go before anything that may wait for a client;
  * an abrupt end (a recorded reset/timeout, or a disconnect fault) closes the socket without the final
    ``0\\r\\n\\r\\n`` chunk; a reset closes with ``SO_LINGER 0`` (a TCP RST, as a broken upstream gives)
    once the client has acknowledged every byte sent, since SO_LINGER 0 discards an unsent send queue;
  * a client that leaves mid-stream (BrokenPipe/ConnectionReset) ends that connection quietly, and the
    body iterable is closed (a fixture streamed from disk closes its file); anything else raised in a server
    thread is collected and re-raised by :meth:`LoopbackServer.check` (as pytest-httpserver's
    ``HTTPServerBase`` does).

Limits (attributes of :class:`LoopbackServer`, set before ``start``): the listen backlog is
``backlog`` (1024: hundreds of clients may connect in the same millisecond; the stdlib default of 5 makes
the kernel drop their SYNs, which the clients retry only after a second); at most ``max_connections``
(1024) connections are served at once, one thread each, a connection over that gets ``503`` at once; the
request line and headers must arrive within ``header_timeout`` seconds (10) of the connection opening (or
of the previous response on a kept-alive connection), else the connection is closed, so that a client
that never finishes its head holds one thread for at most that long and never blocks others; the head may
hold at most ``max_head`` bytes (64 KiB; over it, or over 100 header lines, or one line over 64 KiB:
``431``); a body over ``max_body`` bytes (64 MiB) gets ``413``; a request line that is not HTTP gets
``400``. Request paths are never used as file names: the handler picks among fixtures loaded at start.

What to answer is not decided here: a server gets a handler ``ReplayRequest -> Reply``. The Gemini replay
app (``_replay_gemini``) and the recorder's proxy are such handlers. ``Reply.chunks`` may be a lazy iterable
(a proxy yields pieces as they arrive, with ``t=None`` for "now") and may raise :class:`AbruptClose`.
A handler with a true ``cpu_only`` attribute promises never to wait for the network (the replay app): it
runs under the gate, and its head goes out in one write with its first piece.
"""

from __future__ import annotations

import _thread
import contextlib
import email.parser
import heapq
import http.client
import http.server
import io
import ipaddress
import itertools
import os
import queue
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ._exceptions import SSEError
from ._fixture_model import END_COMPLETE, END_RESET, END_TIMEOUT
from ._http_head import find_header

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "AbruptClose",
    "LoopbackServer",
    "ReplayError",
    "ReplayRequest",
    "Reply",
    "ServerStopped",
    "is_loopback",
]

# Errors that only mean "the client went away"; they end one connection, never the server.
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
# Headers the server writes itself; a handler's (or a recording's) copies are dropped.
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date"})
# A read of the request body or a write of the response that stalls this long ends the connection.
_IDLE_TIMEOUT = 30.0
_MAX_LOGGED = 10_000  # requests kept in LoopbackServer.requests
# A connection thread that finished waits this long for another connection before it ends.
_IDLE_WORKER = 1.0
# The pacer wakes the threads whose chunks it wrote only once no other chunk is due within _HOLD seconds
# (or after _HOLD_MAX): 100 streams of one recording have chunks due in the same millisecond, and 100 threads
# woken while the pacer still writes would take the GIL from it for milliseconds (measured: a burst of 100
# streams went from p99 7.6-10.5 ms, max 12-21 ms late to p99 0.7-1.7 ms). The cost: a stream whose next chunk is
# due within the hold gets it late by at most _HOLD_MAX, and only while other streams keep the pacer busy.
_HOLD = 0.001
_HOLD_MAX = 0.005
# How long a reset waits for the client to acknowledge what was sent (a stalled reader: reset anyway).
_RESET_GRACE = 1.0
# Benchmark hook, off unless the environment names a file: every timed chunk's (due, written) instants on
# the time.monotonic clock are kept in memory and written there as JSON when the server stops, so that
# bench/bench_server.py can tell the server's own lateness from its client's. Off, it costs a None check.
_LATENESS_FILE = os.environ.get("SSE_REPLAY_LATENESS_FILE") or None
_lateness: list[tuple[float, float]] | None = [] if _LATENESS_FILE else None


def _dump_lateness() -> None:
    if _lateness is None or _LATENESS_FILE is None:
        return
    import json

    with open(_LATENESS_FILE, "w") as out:
        json.dump(_lateness, out)


class ReplayError(SSEError):
    """The replay (or record) server failed: bad source, bad options, or an error in a server thread."""


class ServerStopped(Exception):
    """Raised inside a server thread's wait when the server is stopping (ends the response at once)."""


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

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of request header ``name`` (case-insensitive), or ``default``."""
        return find_header(self.headers, name, default)

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the last value wins; blank values kept)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


@dataclass
class Reply:
    """A response to send.

    ``chunks`` are ``(t, data)`` pairs: ``data`` goes out as one HTTP chunk at ``t`` seconds after the
    request arrived (``None``: at once). ``stream=False`` sends the joined body with ``Content-Length``
    instead of chunked encoding. ``end`` is END_COMPLETE, or END_RESET/END_TIMEOUT for an abrupt close after
    the last chunk. ``head_t`` delays the status line.
    """

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: Iterable[tuple[float | None, bytes]] = ()
    end: str = END_COMPLETE
    stream: bool = True
    head_t: float | None = None
    reason: str | None = None


Handler = Callable[[ReplayRequest], Reply]


class _TooLarge(Exception):
    """The request body is over ``max_body`` (answered 413)."""


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine (127.0.0.0/8, ::1, ``localhost``)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Linux: the kernel stamps each received packet (SO_TIMESTAMPNS, value 35 on every Linux architecture but a
# few exotic ones; set only on Linux). A request's pace then counts from when its first byte arrived, not
# from when a thread got round to it: under a burst of connections those are milliseconds apart.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
_STAMP_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0


def _arrival(sock: socket.socket, flags: int = 0, buffer: Any = None) -> tuple[int, float | None]:
    """Receive into ``buffer`` (or, without one, look at one byte, e.g. with MSG_PEEK): (bytes got, when
    the kernel received them on the ``time.monotonic`` clock, or None when unknown)."""
    if _SO_TIMESTAMPNS is None or not _STAMP_SPACE:
        got = sock.recv_into(buffer, 0, flags) if buffer is not None else len(sock.recv(1, flags))
        return got, None
    if buffer is not None:
        got, ancillary, _, _ = sock.recvmsg_into([buffer], _STAMP_SPACE, flags)
    else:
        data, ancillary, _, _ = sock.recvmsg(1, _STAMP_SPACE, flags)
        got = len(data)
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = struct.unpack("qq", value[:16])
            now = time.monotonic()
            stamp = now - (time.time() - (seconds + nanoseconds / 1e9))
            return got, min(now, max(stamp, now - 5.0))  # a stepped wall clock must not skew the pace
    return got, None


def _nothing() -> None:
    pass


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose reads fail with ``TimeoutError`` once ``deadline`` has passed.

    A per-``recv`` timeout alone would let a client that trickles one byte every few seconds hold its
    connection for ever; with a deadline every ``recv`` waits only for the time left.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline: float | None = None
        self.timeout: float | None = None  # the socket's timeout, as last set through this reader
        self.stamp: float | None = None  # when the first bytes of the current request arrived
        self.want_stamp = False
        self.on_read: Callable[[], None] = _nothing  # called before every read of the socket
        self.on_arrival: Callable[[], None] = _nothing  # called once the first bytes of a request came

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.on_read()
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request head did not arrive in time")
            if self.timeout is None or self.timeout > left + 0.01:  # each settimeout costs two syscalls
                self.sock.settimeout(left)
                self.timeout = left
        if self.want_stamp:
            got, self.stamp = _arrival(self.sock, 0, buffer)
            self.want_stamp = False
            if got:
                self.on_arrival()
            return got
        return self.sock.recv_into(buffer)


class _HeadBudget:
    """Wraps the request stream while headers are parsed: more than ``budget`` bytes in all is a 431."""

    def __init__(self, stream: Any, budget: int) -> None:
        self.stream = stream
        self.budget = budget

    def readline(self, limit: int = -1) -> bytes:
        line = self.stream.readline(limit if 0 <= limit <= self.budget + 1 else self.budget + 1)
        self.budget -= len(line)
        if self.budget < 0:
            raise http.client.LineTooLong("request head over the size limit")
        return bytes(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


# A header line the quick path takes: a field name (token characters), a colon, a value on the same line.
_SIMPLE_FIELD = re.compile(rb"([!#-'*+\-.0-9A-Z^-z|~]+):[ \t]*([^\r\n]*)\r?\n")


class _Fields:
    """Request header fields with the part of ``email.message.Message``'s API that is used here:
    ``get`` (the first value, any case), ``items``, ``get_all``, ``in``, ``[]``."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        for key, value in self._fields:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        values = [value for key, value in self._fields if key.lower() == name]
        return values or default

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [key for key, _ in self._fields]

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self) -> Any:
        return iter(self.keys())


def _read_headers(stream: Any) -> Any:
    """Read header lines as ``http.client.parse_headers`` does (same limits and errors: a line over 64 KiB,
    more than 100 lines), and split them; anything unusual is left to ``email.parser`` as the stdlib does."""
    lines: list[bytes] = []
    while True:
        line = stream.readline(65537)
        if len(line) > 65536:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > 100:
            raise http.client.HTTPException("got more than 100 headers")
        if line in (b"\r\n", b"\n", b""):
            break
    fields = []
    for line in lines[:-1]:
        match = _SIMPLE_FIELD.fullmatch(line)
        if match is None:
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
        fields.append((match[1].decode("ascii"), match[2].decode("iso-8859-1")))
    return _Fields(fields)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header value, formatted once a second (formatdate costs ~10 us; a burst asks 100 times)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class _Due:
    """A framed chunk waiting in the pacer: written at ``deadline``, then ``done`` is released."""

    __slots__ = ("data", "deadline", "done", "error", "rest", "sock")

    def __init__(self, deadline: float, sock: socket.socket, data: bytes) -> None:
        self.deadline = deadline
        self.sock = sock
        self.data = data
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.rest = b""
        self.error: BaseException | None = None


class _Pacer:
    """One thread that writes every paced chunk of every connection at its time.

    A connection thread calls :meth:`send_at` and sleeps on a lock of its own; at a deadline the pacer
    writes all chunks due (non-blocking writes: the sockets are in timeout mode, hence O_NONBLOCK), then
    releases their threads once no chunk is due within ``_HOLD`` (or ``_HOLD_MAX`` after the first write
    held). Bytes that did not fit the send buffer are returned for the connection thread to ``sendall``
    itself, with its own timeout.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Due]] = []
        self._order = itertools.count()
        self._closed = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="sse-replay-pacer")

    def send_at(self, sock: socket.socket, deadline: float, data: bytes) -> bytes:
        """Write ``data`` to ``sock`` at ``deadline`` (``time.monotonic``); returns what is left to send.
        Raises ServerStopped when the server stops first, or the OSError the write raised."""
        due = _Due(deadline, sock, data)
        with self._cond:
            if self._closed:
                raise ServerStopped()
            heapq.heappush(self._heap, (deadline, next(self._order), due))
            if self._heap[0][2] is due:
                self._cond.notify()
        due.done.acquire()
        if due.error is not None:
            raise due.error
        return due.rest

    def close(self) -> None:
        """Fail every waiting chunk with ServerStopped and end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        heap = self._heap
        held: list[_Due] = []  # written, their threads not yet woken (see _HOLD)
        held_since = 0.0
        while True:
            with self._cond:
                while not self._closed:
                    if not heap:
                        if held:
                            break
                        self._cond.wait()
                        continue
                    delay = heap[0][0] - time.monotonic()
                    if delay <= 0 or (held and delay > _HOLD):
                        break
                    self._cond.wait(delay)
                if self._closed:
                    for due in held:
                        due.done.release()
                    for _, _, due in heap:
                        due.error = ServerStopped()
                        due.done.release()
                    heap.clear()
                    return
                now = time.monotonic()
                batch = []
                while heap and heap[0][0] <= now:
                    batch.append(heapq.heappop(heap)[2])
                upcoming = heap[0][0] if heap else None
            for due in batch:  # outside the lock: connections may queue their next chunk meanwhile
                try:
                    written = os.write(due.sock.fileno(), due.data)
                    due.rest = due.data[written:]
                except BlockingIOError:
                    due.rest = due.data
                except OSError as exc:
                    due.error = exc
                if _lateness is not None:
                    _lateness.append((due.deadline, time.monotonic()))
            if batch and not held:
                held_since = now
            held += batch
            now = time.monotonic()
            if held and (upcoming is None or upcoming - now > _HOLD or now - held_since > _HOLD_MAX):
                # After the writes due now and soon: woken threads do not compete with them for the GIL.
                for due in held:
                    due.done.release()
                held = []


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sse-replay"
    sys_version = ""
    server: _TCPServer

    def setup(self) -> None:
        super().setup()
        # The first head has header_timeout (from about now); parse_request sets the idle timeout after it.
        self.connection.settimeout(self.server.owner.header_timeout)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Replace the stdlib's reader; closing it now drops its hold on the socket (a socket with an open
        # makefile() stream is only really closed, or reset, once that stream is gone).
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection)
        self._reader.timeout = self.server.owner.header_timeout
        self._reader.on_read, self._reader.on_arrival = self._ungate, self._gate
        self._gated = False
        self.rfile = io.BufferedReader(self._reader, 65536)
        # When the first request was already waiting at accept, its pace counts from the accept.
        self._arrived: float | None = self.server.arrivals.pop(self.connection, None)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the CLI keep stderr for real problems."""

    def handle_one_request(self) -> None:
        # The whole head (request line and headers) must come within header_timeout from now.
        self._reader.deadline = time.monotonic() + self.server.owner.header_timeout
        self._reader.stamp, self._reader.want_stamp = None, True
        try:
            super().handle_one_request()
        except _CLIENT_GONE:
            self.close_connection = True
        finally:
            self._ungate()

    # The gate: from the moment its first bytes arrive, a request is handled up to its first write holding
    # the server's gate lock, one at a time. Under a burst the threads then take turns, first come first
    # served, instead of all sharing the GIL and all finishing late (a thread waiting on a lock does not
    # compete for the GIL). Only work that cannot block is done inside: the gate is let go before every
    # read of the socket (the rest of a head or a body may be slow to come), before a handler that may
    # block (one not marked ``cpu_only``), and before any wait or large write.
    def _gate(self) -> None:
        if not self._gated:
            self.server.gate.acquire()
            self._gated = True

    def _ungate(self) -> None:
        if self._gated:
            self._gated = False
            self.server.gate.release()

    def _write(self, data: bytes) -> None:
        """``sendall``, except that under the gate it never waits: what the send buffer does not take at once
        (a client that reads nothing) is sent after letting the gate go."""
        if self._gated:
            if self._reader.timeout:  # timeout mode: the socket is O_NONBLOCK, a write never waits
                try:
                    sent = os.write(self.connection.fileno(), data)
                except BlockingIOError:
                    sent = 0
                if sent == len(data):
                    return
                data = data[sent:]
            self._ungate()
        self.connection.sendall(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers a request line it cannot parse as HTTP/0.9, without a status line; every
        # client today speaks HTTP/1.x and needs one to see the 400.
        if self.request_version == "HTTP/0.9" or not getattr(self, "request_version", ""):
            self.request_version = "HTTP/1.0"
        self.close_connection = True
        self._ungate()  # the stdlib writes the answer with sendall
        super().send_error(code, message, explain)

    def parse_request(self) -> bool:
        # The recorded offsets count from when the request was sent: take the earliest instant known, before
        # parsing (under load, parsing and the handler wait for the GIL; that must not shift the pace).
        self._arrived = self._arrived or self._reader.stamp or time.monotonic()
        self._reader.want_stamp = False
        stream = self.rfile
        self.rfile = _HeadBudget(stream, self.server.owner.max_head - len(self.raw_requestline))  # type: ignore[assignment]
        try:
            ok = self._parse_head()
        finally:
            self.rfile = stream
        self._reader.deadline = None  # the body and the response get the per-operation timeout
        self.connection.settimeout(_IDLE_TIMEOUT)
        self._reader.timeout = _IDLE_TIMEOUT
        return ok

    def _parse_head(self) -> bool:
        """``http.server``'s ``parse_request`` (same answers: 400, 505, 431, HTTP/0.9 GET, Connection,
        Expect: 100-continue), with the header fields split here instead of by ``email.parser`` (~100 us a
        request, which a burst of requests pays one after another); a head with anything unusual (folded
        lines, a line without a field name) still goes through ``email.parser``, as before."""
        self.command = None  # type: ignore[assignment]  # as http.server does, until the line is read
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            numbers = version[5:].split(".") if version.startswith("HTTP/") else []
            if len(numbers) != 2 or not all(n.isdigit() and len(n) <= 10 for n in numbers):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            number = int(numbers[0]), int(numbers[1])
            if number >= (1, 1):
                self.close_connection = False
            if number >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version[5:]})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = _read_headers(self.rfile)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def __getattr__(self, name: str) -> Any:
        # http.server dispatches to do_<METHOD>; every method goes to the one handler.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        limit = self.server.owner.max_body
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size < 0:
                    raise ValueError(f"negative chunk size {size}")
                if size == 0:
                    for _ in range(100):  # trailers, as many as header lines may be
                        if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                            break
                    return b"".join(parts)
                total += size
                if total > limit:
                    raise _TooLarge(f"chunked request body over the {limit} byte limit")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        text = (self.headers.get("Content-Length") or "0").strip()
        if not text.isdigit():
            raise ValueError(f"Content-Length {text!r} is not a number of bytes")
        length = int(text)
        if length > limit:
            raise _TooLarge(f"request body of {length} bytes is over the {limit} byte limit")
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self.close_connection = True
        body = f"sse-replay: {message}\n".encode()
        self._write_head(status, reason, [("Content-Type", "text/plain")], len(body))
        self._write(body)

    def _serve(self) -> None:
        arrived, self._arrived = self._arrived or time.monotonic(), None
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
        except _TooLarge as exc:
            self._refuse(413, "Content Too Large", str(exc))
            return
        except ValueError as exc:  # the client's mistake: answer it, not a server error
            self._refuse(400, "Bad Request", f"bad request body: {exc}")
            return
        request = ReplayRequest(self.command, path, query, list(self.headers.items()), body)
        owner = self.server.owner
        owner._log_request(request)
        head_sent = False
        if not getattr(owner.handler, "cpu_only", False):
            self._ungate()
        try:
            reply = owner.handler(request)
            head_sent = True  # from here on a failure can only end the connection
            self._send(reply, arrived)
        except _CLIENT_GONE:
            self.close_connection = True
        except ServerStopped:
            self._close_abruptly(reset=True)
        except Exception as exc:  # noqa: BLE001 - collected for check(), answered with a 500
            owner._record_error(exc)
            self.close_connection = True
            if not head_sent:
                with contextlib.suppress(OSError):
                    body = f"sse-replay: internal error: {exc}\n".encode()
                    self._write_head(500, "Internal Server Error", [("Content-Type", "text/plain")], len(body))
                    self._write(body)

    def _write_head(self, status: int, reason: str, headers: list[tuple[str, str]], length: int | None) -> None:
        self._write(self._head(status, reason, headers, length))

    def _head(self, status: int, reason: str, headers: list[tuple[str, str]], length: int | None) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _OWN_HEADERS]
        lines.append(f"Date: {_http_date()}")
        lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, reply: Reply, arrived: float) -> None:
        owner = self.server.owner
        reason = reply.reason or _reason(reply.status)
        if reply.head_t:
            self._ungate()
            owner._wait_until(arrived + reply.head_t)
        if not reply.stream or self.command == "HEAD":
            body = b"".join(data for _, data in reply.chunks)
            head = self._head(reply.status, reason, reply.headers, len(body))
            if self.command == "HEAD":
                self._write(head)
            elif len(body) <= 65536:
                self._write(head + body)  # one write
            else:
                self._write(head)
                self._ungate()
                self.connection.sendall(body)
            return
        head = self._head(reply.status, reason, reply.headers, None)
        pacer = owner._pacer
        sock = self.connection
        # A handler that never waits for the network: its head goes out with the first piece, in one write.
        pending: bytes | None = head if getattr(owner.handler, "cpu_only", False) else None
        if pending is None:
            self._write(head)
        try:
            for t, data in reply.chunks:
                if t is not None:
                    if owner._stopping.is_set():
                        raise ServerStopped()
                    if arrived + t > time.monotonic():
                        if pending is not None:
                            self._write(pending)
                            pending = None
                        self._ungate()
                        if data and pacer is not None:
                            rest = pacer.send_at(sock, arrived + t, _chunk(data))
                            if rest:
                                sock.sendall(rest)
                            continue
                        owner._wait_until(arrived + t)
                if data:
                    if pending is not None:
                        self._write(pending + _chunk(data))
                        pending = None
                    else:
                        self._write(_chunk(data))
                    self._ungate()  # after the first piece sent at once
                    if _lateness is not None and t is not None:
                        _lateness.append((arrived + t, time.monotonic()))
        except AbruptClose as close:
            if pending is not None:
                self._write(pending)
                pending = None
            self._close_abruptly(close.reset)
            return
        finally:
            if pending is not None:  # the body failed before its first piece: the head still goes out
                with contextlib.suppress(OSError):
                    self._write(pending)
                pending = None
            # A lazy body (a fixture streamed from disk) closes its file now, also when the client left.
            close_chunks = getattr(reply.chunks, "close", None)
            if close_chunks is not None:
                close_chunks()
        if reply.end in (END_RESET, END_TIMEOUT):
            self._close_abruptly(reset=reply.end == END_RESET)
            return
        self.connection.sendall(b"0\r\n\r\n")

    def _close_abruptly(self, reset: bool) -> None:
        """End the response without the final chunk: a plain close (FIN), or for ``reset`` a TCP RST.

        SO_LINGER 0 makes ``close()`` throw away whatever still waits in the send queue, so the reset waits
        (at most ``_RESET_GRACE`` seconds) until the client's kernel has acknowledged every byte sent: the
        client reads all of them, then gets ECONNRESET, as from an upstream that broke.
        """
        self.close_connection = True
        self.server.abrupt.add(self.connection)
        if not reset:
            return
        owner = self.server.owner
        deadline = time.monotonic() + _RESET_GRACE
        while _unsent(self.connection) and time.monotonic() < deadline and not owner._stopping.is_set():
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _unsent(sock: socket.socket) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (Linux SIOCOUTQ; else 0)."""
    try:
        import fcntl
        import termios

        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except (ImportError, OSError, AttributeError):
        return 0


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False  # LoopbackServer joins its own threads, with a bound

    def __init__(self, owner: LoopbackServer, address: tuple[str, int]) -> None:
        self.owner = owner
        self.request_queue_size = owner.backlog  # listen(backlog); the kernel caps it at net.core.somaxconn
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.abrupt: set[socket.socket] = set()
        self.connections: set[socket.socket] = set()
        self.arrivals: dict[socket.socket, float] = {}
        self.jobs: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self.idle = 0  # waiting workers (see _worker)
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.gate = threading.Lock()  # see _RequestHandler._gate
        super().__init__(address, _RequestHandler)
        if _SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):  # accepted sockets inherit it
                self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            full = len(self.connections) >= self.owner.max_connections
            if not full:
                self.connections.add(request)
        if full:
            # Over the limit: a short 503 from the accepting thread (it fits any send buffer), then close.
            with contextlib.suppress(OSError):
                request.settimeout(0.5)
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            self.close_request(request)
            return
        with contextlib.suppress(OSError):  # BlockingIOError: nothing sent yet
            got, stamp = _arrival(request, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if got:
                # The kernel's stamp, else now (read after the peek, so never before the client sent).
                self.arrivals[request] = stamp or time.monotonic()
        with self.lock:
            if self.idle > 0:
                # A worker waits for work: hand the connection over without starting a thread (starting
                # one waits until it runs, which under a burst queues the accepting thread for the GIL).
                self.idle -= 1
                self.jobs.put((request, client_address))
                return
            thread = threading.Thread(
                target=self._worker, args=(request, client_address), daemon=True,
                name=f"sse-replay-conn-{next(self.numbers)}",
            )
            self.owner._threads.add(thread)
        thread.start()

    def _worker(self, request: Any, client_address: Any) -> None:
        """Serve connections, the given one first, then others handed over, until idle for ``_IDLE_WORKER``
        seconds (or the server stops). ``idle`` counts waiting workers not yet handed a connection."""
        try:
            while True:
                self.process_request_thread(request, client_address)
                with self.lock:
                    if self.owner._stopping.is_set():
                        return
                    self.idle += 1
                try:
                    job = self.jobs.get(timeout=_IDLE_WORKER)
                except queue.Empty:
                    with self.lock:
                        try:
                            job = self.jobs.get_nowait()  # handed over just as the wait ended
                        except queue.Empty:
                            self.idle -= 1
                            return
                if job is None:  # the server stops
                    return
                request, client_address = job
        finally:
            # A finished thread leaves the set, so that a long-running server does not pile them up.
            with self.lock:
                self.owner._threads.discard(threading.current_thread())

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.connections.discard(request)
        if request in self.abrupt:
            # No FIN first: a plain close (with SO_LINGER 0 for a reset) is the break the client must see.
            self.abrupt.discard(request)
            self.close_request(request)
            return
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, _CLIENT_GONE):
            return
        self.owner._record_error(exc)


class _ServerLifecycle:
    """The context-manager half of a loopback server's lifecycle, shared by the replay server and the
    recording proxy: ``with`` starts it and stops it on exit (if still running); the repr shows its URL."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def is_running(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.is_running():
            self.stop()

    def __repr__(self) -> str:
        state = self.url if self.is_running() else "stopped"
        return f"<{type(self).__name__} {state}>"


class LoopbackServer(_ServerLifecycle):
    """A threaded HTTP/1.1 server on loopback that answers every request with ``handler(request)``.

    Lifecycle as pytest-httpserver's ``HTTPServerBase``: ``port=0`` (default) picks a free port, read back
    through :attr:`port`/:attr:`url` once started; :meth:`start` raises if already running; :meth:`stop`
    shuts down, closes open connections and joins the threads; usable as a context manager (starts on
    enter, stops on exit). Errors raised in server threads are kept and re-raised by :meth:`check`.
    The limits below (see the module doc) may be changed on an instance before :meth:`start`.
    """

    backlog: int = 1024
    max_connections: int = 1024
    header_timeout: float = 10.0
    max_head: int = 64 * 1024
    max_body: int = 64 * 1024 * 1024

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self._port = port
        self._server: _TCPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._pacer: _Pacer | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.requests: list[ReplayRequest] = []

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.url + ("" if path.startswith("/") else "/") + path

    def is_running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Bind and serve on a daemon thread; returns once the socket listens."""
        if self._server is not None:
            raise ReplayError(f"server already running at {self.url}")
        self._stopping.clear()
        try:
            self._server = _TCPServer(self, (self.host, self._port))
        except OSError as exc:
            raise ReplayError(f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from exc
        self._pacer = _Pacer()
        self._pacer.thread.start()
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="sse-replay"
        )
        self._serve_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: end waiting responses, close open connections, join the threads."""
        server = self._server
        if server is None:
            raise ReplayError("server is not running")
        self._stopping.set()
        pacer = self._pacer
        if pacer is not None:
            pacer.close()
        server.shutdown()
        with server.lock:
            open_connections = list(server.connections)
            threads = list(self._threads)
            for _ in range(server.idle):  # waiting workers end at once
                server.jobs.put(None)
            server.idle = 0
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in [self._serve_thread, pacer.thread if pacer else None, *threads]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        server.server_close()
        with server.lock:
            self._threads.clear()
        self._pacer = None
        self._server = None
        self._serve_thread = None
        _dump_lateness()

    def check(self) -> None:
        """Re-raise the first error collected from a server thread (then forget them all)."""
        if self.errors:
            first, self.errors = self.errors[0], []
            if isinstance(first, SSEError):
                raise first
            raise ReplayError(
                f"error in a server thread: {type(first).__name__}: {first}\n"
                + "".join(traceback.format_exception(first))
            ) from first


    # -- used by server threads ----------------------------------------------------------------
    def _wait_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0 and self._stopping.wait(delay):
            raise ServerStopped()
        if self._stopping.is_set():
            raise ServerStopped()

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)

    def _log_request(self, request: ReplayRequest) -> None:
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > _MAX_LOGGED:  # a long-running `--serve` keeps only the recent ones
                del self.requests[: _MAX_LOGGED // 2]

