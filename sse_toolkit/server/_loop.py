"""Replay layer: the loopback HTTP/1.1 server (lifecycle, one event loop, paced chunked streaming, abrupt close).

Strategy: ONE thread runs a ``selectors`` loop that accepts connections, reads and parses requests (the
sans-IO :mod:`._replay_http`), calls the handler and writes every response at its time, all without
blocking: a timer heap holds the instant each waiting stream's next piece is due. Under a burst of 100
requests in the same instant nothing waits for the GIL or a thread switch: each request costs only its own
parse, routing and write, one after another (a thread per connection spent ~0.3 ms a request switching
between 100 threads; see bench/bench_server.py for the figures).
  * each body piece of a :class:`Reply` is sent as ONE HTTP/1.1 chunk in ONE write (TCP_NODELAY is set, so
    it leaves at once), at its own time offset after the request's first byte arrived (the kernel's receive
    stamp, SO_TIMESTAMPNS, where there is one); the head goes in the same write as a first piece due at once;
  * epoll waits in whole milliseconds, so the loop waits for the last fraction of one with a sleep: a piece
    leaves within tens of microseconds of its time when the loop is free;
  * what a client's send buffer does not take waits for that socket to be writable, and the stream goes on
    only once it drained (a client that reads slowly holds up no one, and a 1 GiB fixture replayed at
    speed 0 is read from disk as it is sent); a write that cannot progress for ``_IDLE_TIMEOUT`` ends it;
  * an abrupt end (a recorded reset/timeout, or a disconnect fault) closes the socket without the final
    ``0\\r\\n\\r\\n`` chunk; a reset closes with ``SO_LINGER 0`` (a TCP RST, as a broken upstream gives)
    once the client has acknowledged every byte sent, since SO_LINGER 0 discards an unsent send queue;
  * a client that leaves mid-stream (EPIPE/ECONNRESET) ends that connection quietly, and the body iterable
    is closed (a fixture streamed from disk closes its file); anything else raised by the handler is
    collected and re-raised by :meth:`LoopbackServer.check` (as pytest-httpserver's ``HTTPServerBase`` does).

A handler with a true ``cpu_only`` attribute promises never to wait for the network (the replay app): the
loop calls it. Any other handler (the recorder's proxy, which waits for its upstream) runs on a thread of
its own per request, which writes with blocking writes and sleeps and hands the connection back to the
loop when the response is over.

Limits (attributes of :class:`LoopbackServer`, set before ``start``): the listen backlog is ``backlog``
(1024: hundreds of clients may connect in the same millisecond; the stdlib default of 5 makes the kernel
drop their SYNs, which the clients retry only after a second); at most ``max_connections`` (1024, and
never more than the process's descriptor limit less 64) connections are open at once, one over that gets
``503`` at once (should accept() still fail for want of a descriptor, accepting pauses for 0.1 s); the
request line and headers must arrive within ``header_timeout`` seconds (10) of the connection opening (or
of the previous response on a kept-alive connection), else the connection is closed, and a body must keep
coming (``_IDLE_TIMEOUT``); the head may hold at most ``max_head`` bytes (64 KiB; over it, or over 100
header lines, or one line over 64 KiB: ``431``); a body over ``max_body`` bytes (64 MiB) gets ``413``; a
request line that is not HTTP gets ``400``. Request paths are never used as file names: the handler picks among fixtures loaded at start.

What to answer is not decided here: a server gets a handler ``ReplayRequest -> Reply``. The Gemini replay
app (``_replay_gemini``) and the recorder's proxy are such handlers. ``Reply.chunks`` may be a lazy iterable
(a proxy yields pieces as they arrive, with ``t=None`` for "now") and may raise :class:`AbruptClose`.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import ipaddress
import itertools
import os
import selectors
import socket
import struct
import sys
import threading
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING

from ..parser._exceptions import SSEError
from ._http import (
    CLOSE,
    DONE,
    RESET,
    AbruptClose,
    Handler,
    ParsedRequest,
    Refusal,
    ReplayRequest,
    Reply,
    ReplyWriter,
    RequestReader,
    error_reply,
    refusal_reply,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "AbruptClose",
    "Handler",
    "is_loopback",
    "LoopbackServer",
    "ReplayError",
    "ReplayRequest",
    "Reply",
    "ServerLifecycle",
    "ServerStopped",
]

# Errors that only mean "the client went away"; they end one connection, never the server.
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
# A body that stops coming, or a response the client stops reading, for this long ends the connection.
_IDLE_TIMEOUT = 30.0
_MAX_LOGGED = 10_000  # requests kept in LoopbackServer.requests
# Pieces stepped are written together, back to back, at the end of each turn of the loop or once the first
# of them has waited _BATCH seconds. Under a burst of 100 requests this cut the time to answer them all by
# about a quarter (the last first event 11-20 -> 7-10 ms): every write to a client that sleeps wakes it (an
# interrupt to the other CPU, costly in a VM), and writes in a row reach a client that is still awake.
_BATCH = 0.001
# How long a reset waits for the client to acknowledge what was sent (a stalled reader: reset anyway),
# polling every _LINGER_POLL seconds; how long a closing connection's unread input is drained (see _drain).
_RESET_GRACE = 1.0
_LINGER_POLL = 0.005
_DRAIN_TIME = 1.0
_READ_SIZE = 65536
_ACCEPT_PAUSE = 0.1  # out of descriptors: how long accepting pauses before the next try
_FD_RESERVE = 64  # descriptors kept for everything but client connections (fixtures, the process's own)
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


def _note_lateness(due: list[float]) -> None:
    if _lateness is not None and due:
        written = time.monotonic()
        _lateness.extend((d, written) for d in due)


class ReplayError(SSEError):
    """The replay (or record) server failed: bad source, bad options, or an error in a server thread."""


class ServerStopped(Exception):
    """Raised inside a server thread's wait when the server is stopping (ends the response at once)."""


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
# from when the loop got round to it: under a burst of connections those are milliseconds apart.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
# Linux: accepted sockets inherit TCP_NODELAY from the listening one (one system call less per connection).
_NODELAY_INHERITED = sys.platform == "linux"
_STAMP_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0


def _receive(sock: socket.socket, buffer: bytearray) -> tuple[int, float | None]:
    """Receive into ``buffer``: (bytes got, when the kernel received them on the ``time.monotonic`` clock,
    or None when unknown)."""
    if _SO_TIMESTAMPNS is None or not _STAMP_SPACE:
        return sock.recv_into(buffer), None
    got, ancillary, _, _ = sock.recvmsg_into([buffer], _STAMP_SPACE)
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = struct.unpack("qq", value[:16])
            now = time.monotonic()
            stamp = now - (time.time() - (seconds + nanoseconds / 1e9))
            return got, min(now, max(stamp, now - 5.0))  # a stepped wall clock must not skew the pace
    return got, None


def _unsent(sock: socket.socket) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (Linux SIOCOUTQ; else 0)."""
    try:
        import fcntl
        import termios

        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except (ImportError, OSError, AttributeError):
        return 0


# What a connection is doing; the loop's timer for it (one at most) means something different in each.
_READING = "reading"  # waiting for (the rest of) a request; timer: the head or body deadline
_WAITING = "waiting"  # a response waits for its next piece's instant; timer: that instant
_SENDING = "sending"  # written bytes wait for the socket to take them; timer: the stall deadline
_THREAD = "thread"  # a worker thread has the socket; no timer
_LINGER = "linger"  # a reset waits for the client to acknowledge what was sent; timer: the next poll
_DRAIN = "drain"  # closing: our side is shut, unread input is read and dropped; timer: the drain deadline
_CLOSED = "closed"


class _Conn:
    """One client connection as the loop sees it."""

    __slots__ = ("after", "arrived", "deadline", "due", "events", "fd", "keep_alive", "method", "out", "reader",
                 "sock", "state", "timer", "wait", "writer")

    def __init__(self, sock: socket.socket, reader: RequestReader) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = reader
        self.state = _READING
        self.events = 0  # what the selector watches for
        self.deadline = 0.0  # see the states
        self.timer = 0.0  # the instant of its live entry in the loop's heap (0: none; -1: in ``ready``)
        self.arrived: float | None = None  # when the current request's first byte came
        self.keep_alive = False
        self.method = "GET"
        self.writer: ReplyWriter | None = None
        self.out: collections.deque[bytes] = collections.deque()  # written, not yet taken by the socket
        self.after: str | None = None  # once ``out`` drained: DONE/CLOSE/RESET, or None to step the writer
        self.wait: float | None = None  # then: when the writer's next piece is due (None: at once)
        self.due: list[float] = []  # the due instants of the timed pieces in ``out`` (the lateness hook)


class _Loop:
    """The server's one loop thread: accept, read, answer, pace, close (see the module doc)."""

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        family = socket.AF_INET6 if ":" in owner.host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((owner.host.strip("[]"), owner._port))
            self.socket.listen(owner.backlog)  # the kernel caps it at net.core.somaxconn
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        if _SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):  # accepted sockets inherit it
                self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if _NODELAY_INHERITED:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.socket, selectors.EVENT_READ, None)
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self.selector.register(self._wake_in, selectors.EVENT_READ, "wake")
        self.conns: dict[int, _Conn] = {}  # every open connection, the loop's and the threads'
        self.timers: list[tuple[float, int, _Conn]] = []
        self.ready: collections.deque[_Conn] = collections.deque()  # to go on with in the next turn
        self.unflushed: list[_Conn] = []  # stepped, their pieces not yet written (see _BATCH)
        self.unflushed_since = 0.0
        self._order = itertools.count()
        self.handed_back: collections.deque[tuple[_Conn, str]] = collections.deque()
        self.lock = threading.Lock()  # guards ``handed_back`` and ``closed`` against the worker threads
        self.closed = False
        self.buffer = bytearray(_READ_SIZE)
        self.accept_paused = 0.0  # when accepting was paused until (0: it is not)
        # Over max_connections a connection gets 503; the cap also stays under the descriptors the process
        # may open, so that the 503 comes before accept() fails for want of one.
        self.fd_cap = 1 << 30
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if soft != resource.RLIM_INFINITY:
                self.fd_cap = max(1, soft - _FD_RESERVE)
        self.thread = threading.Thread(target=self._run, daemon=True, name="sse-replay")

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_out.send(b"!")

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = self.owner._stopping
        try:
            while not stopping.is_set():
                for key, mask in self.selector.select(self._timeout()):
                    conn = key.data
                    if conn is None:
                        self._accept()
                    elif conn == "wake":
                        self._take_handed_back()
                    else:
                        if mask & selectors.EVENT_WRITE and conn.state == _SENDING:
                            self._flush(conn)
                        if mask & selectors.EVENT_READ and conn.state in (_READING, _DRAIN):
                            self._read(conn)
                    self._flush_if_due()
                if self.accept_paused and time.monotonic() >= self.accept_paused:
                    self.accept_paused = 0.0
                    self.selector.register(self.socket, selectors.EVENT_READ, None)
                self._fire_timers()
                self._run_ready()
                self._flush_all()
        except BaseException as exc:  # noqa: BLE001 - a bug here must surface in check(), not vanish
            self.owner._record_error(exc)
        finally:
            self._close_all()

    def _timeout(self) -> float | None:
        """How long select may wait. epoll counts whole milliseconds (rounding up), so the last fraction of
        one before a piece is due is slept here instead: it leaves on time, not up to 1 ms late."""
        if self.ready or self.unflushed:
            return 0
        due = [self.timers[0][0]] if self.timers else []
        if self.accept_paused:
            due.append(self.accept_paused)
        if not due:
            return None
        delay = min(due) - time.monotonic()
        if delay >= 0.001:
            return (int(delay * 1000) - 0.5) / 1000  # rounds up to that many whole milliseconds
        if delay > 0:
            time.sleep(delay)
        return 0

    def _soon(self, conn: _Conn) -> None:
        """Go on with ``conn`` in the loop's next turn (its timer entry, if any, is dropped)."""
        conn.timer = -1.0
        self.ready.append(conn)

    def _run_ready(self) -> None:
        for _ in range(len(self.ready)):
            conn = self.ready.popleft()
            if conn.timer != -1.0:
                continue
            conn.timer = 0.0
            if conn.state == _WAITING:
                self._advance(conn)
            elif conn.state == _READING:
                self._take_request(conn)
                if conn.state == _READING and conn.timer == 0.0:  # part of a request waits: its deadline holds
                    self._schedule(conn, conn.deadline)
            self._flush_if_due()

    def _schedule(self, conn: _Conn, when: float) -> None:
        conn.timer = when
        heapq.heappush(self.timers, (when, next(self._order), conn))
        if len(self.timers) > 2 * len(self.conns) + 1024:
            # Replaced entries wait in the heap until their time (each kept-alive request leaves its head
            # deadline behind): drop them, so that the heap stays proportional to the open connections.
            self.timers[:] = [e for e in self.timers if e[2].timer == e[0] and e[2].state != _CLOSED]
            heapq.heapify(self.timers)

    def _fire_timers(self) -> None:
        timers = self.timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            when, _, conn = heapq.heappop(timers)
            if conn.timer != when or conn.state == _CLOSED:
                continue  # replaced by a later one
            conn.timer = 0.0
            if conn.state == _WAITING:
                self._advance(conn)
            elif conn.state == _LINGER:
                self._linger(conn)
            elif conn.state in (_READING, _SENDING, _DRAIN):
                if now >= conn.deadline:
                    self._close(conn)  # no head, no body, no progress in time; or drained long enough
                else:
                    self._schedule(conn, conn.deadline)
            self._flush_if_due()
            now = time.monotonic()

    def _watch(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        if not conn.events:
            self.selector.register(conn.sock, events, conn)
        elif not events:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    # -- accepting and reading ---------------------------------------------------------------------
    def _accept(self) -> None:
        owner = self.owner
        while True:
            try:
                sock, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: connections wait in the backlog meanwhile
                if not self.accept_paused:
                    owner._record_error(ReplayError(f"cannot accept a connection: {exc}"))
                self.selector.unregister(self.socket)  # a listening socket stays readable: no busy loop
                self.accept_paused = time.monotonic() + _ACCEPT_PAUSE
                return
            if len(self.conns) >= min(owner.max_connections, self.fd_cap):
                # Over the limit: a short 503 (it fits any send buffer), then close.
                with contextlib.suppress(OSError):
                    sock.setblocking(False)
                    sock.send(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
                sock.close()
                continue
            sock.setblocking(False)
            if not _NODELAY_INHERITED:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, RequestReader(owner.max_head, owner.max_body))
            self.conns[conn.fd] = conn
            self._await_request(conn)
            self._read(conn)  # under a burst the request came with the connection: answer it now
            self._flush_if_due()

    def _await_request(self, conn: _Conn) -> None:
        conn.state = _READING
        conn.deadline = time.monotonic() + self.owner.header_timeout
        self._schedule(conn, conn.deadline)

    def _read(self, conn: _Conn) -> None:
        try:
            if conn.state == _READING and conn.reader.idle:
                got, stamp = _receive(conn.sock, self.buffer)
                data = bytes(memoryview(self.buffer)[:got])
                if got:
                    conn.arrived = stamp or time.monotonic()
            else:
                data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            self._watch(conn, selectors.EVENT_READ)
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            if conn.timer == -1.0:  # a pipelined request waits in the reader: answer it first (EOF comes again)
                return
            self._close(conn)  # the client closed (mid-head, or between requests)
            return
        if conn.state == _DRAIN:
            return
        conn.reader.feed(data)
        if conn.reader.head_done:  # a body must keep coming, not arrive within the head's deadline
            conn.deadline = time.monotonic() + _IDLE_TIMEOUT
        self._take_request(conn)
        if conn.state == _READING:
            self._watch(conn, selectors.EVENT_READ)

    def _take_request(self, conn: _Conn) -> None:
        try:
            parsed = conn.reader.next_request()
        except Refusal as refusal:
            conn.keep_alive, conn.method = False, "GET"  # not the last request's HEAD: the answer has a body
            self._respond(conn, refusal_reply(refusal), time.monotonic())
            return
        if parsed is None:
            if conn.reader.wants_continue:
                conn.reader.continue_sent()
                with contextlib.suppress(OSError):
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self._dispatch(conn, parsed)

    # -- answering ---------------------------------------------------------------------------------
    def _dispatch(self, conn: _Conn, parsed: ParsedRequest) -> None:
        owner = self.owner
        arrived, conn.arrived = conn.arrived or time.monotonic(), None
        path, _, query = parsed.target.partition("?")
        request = ReplayRequest(parsed.method, path, query, parsed.headers, parsed.body)
        owner._log_request(request)
        conn.keep_alive, conn.method = parsed.keep_alive, parsed.method
        self._watch(conn, 0)  # nothing is read while answering (a pipelined request waits in the reader)
        if not getattr(owner.handler, "cpu_only", False):
            self._to_thread(conn, request, arrived)
            return
        self._respond(conn, self._call_handler(conn, request), arrived)

    def _call_handler(self, conn: _Conn, request: ReplayRequest) -> Reply:
        try:
            return self.owner.handler(request)
        except Exception as exc:  # noqa: BLE001 - collected for check(), answered with a 500
            self.owner._record_error(exc)
            conn.keep_alive = False
            return error_reply(exc)

    def _respond(self, conn: _Conn, reply: Reply, arrived: float) -> None:
        conn.writer = ReplyWriter(reply, arrived, conn.method, not conn.keep_alive, merge_head=True)
        self._advance(conn)

    def _advance(self, conn: _Conn) -> None:
        """Step the response: what is due now is queued for the next :meth:`_flush_all`; then the response
        waits for its next instant (a timer), or ends."""
        writer = conn.writer
        assert writer is not None
        conn.timer = 0.0  # any timer entry left for it is stale from now on
        try:
            step = writer.step(time.monotonic())
        except Exception as exc:  # noqa: BLE001 - a broken reply (e.g. a head that cannot be encoded) ends
            self.owner._record_error(exc)  # its own connection, reported by check(); never the loop
            self._close(conn)
            return
        if writer.error is not None:
            self.owner._record_error(writer.error)
            writer.error = None
        conn.state = _WAITING
        if not step.pieces:
            if step.end is not None:
                self._end(conn, step.end)
            elif step.wait is not None:
                self._schedule(conn, step.wait)
            else:
                self._soon(conn)
            return
        conn.out.extend(step.pieces)
        conn.after, conn.due = step.end, step.due
        if not self.unflushed:
            self.unflushed_since = time.monotonic()
        self.unflushed.append(conn)

    def _flush_if_due(self) -> None:
        if self.unflushed and time.monotonic() - self.unflushed_since >= _BATCH:
            self._flush_all()

    def _flush_all(self) -> None:
        """Write what the responses stepped since the last time have due, back to back; each then steps
        again (reading its next piece, after the write: see ReplyWriter) in the loop's next turn, once the
        requests and chunks due in this one are served."""
        unflushed, self.unflushed = self.unflushed, []
        for conn in unflushed:
            if conn.state == _WAITING and self._flush(conn):
                self._soon(conn)
            _note_lateness(conn.due)

    def _flush(self, conn: _Conn) -> bool:
        """Write ``out``; True when all was taken and the connection goes on at once (then, if the response
        is over, it has ended). False when it waits for the socket, or was closed."""
        out = conn.out
        try:
            while out:
                piece = out[0]
                try:
                    sent = conn.sock.send(piece)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                if sent < len(piece):
                    out[0] = piece[sent:]
                    if conn.state != _SENDING:
                        conn.state = _SENDING
                        conn.deadline = time.monotonic() + _IDLE_TIMEOUT
                        self._schedule(conn, conn.deadline)
                    elif sent:
                        conn.deadline = time.monotonic() + _IDLE_TIMEOUT  # progress: the stall clock restarts
                    self._watch(conn, selectors.EVENT_WRITE)
                    return False
                out.popleft()
        except OSError:  # the client left
            self._close(conn)
            return False
        if conn.state == _SENDING:  # drained after a wait
            conn.state = _WAITING
            self._watch(conn, 0)
            if conn.after is None:
                self._advance(conn)
                return False
        if conn.after is not None:
            self._end(conn, conn.after)
            return False
        return True

    def _end(self, conn: _Conn, how: str) -> None:
        """The response is over and written: serve the next request, or close as ``how`` says."""
        if conn.writer is not None:
            writer, conn.writer = conn.writer, None
            self._close_body(writer)
        conn.after = None
        if how == DONE and conn.keep_alive and not self.owner._stopping.is_set():
            self._await_request(conn)
            self._watch(conn, selectors.EVENT_READ)
            if not conn.reader.idle:
                self._soon(conn)  # a pipelined request waits in the reader (not taken here: no recursion)
        elif how == RESET:
            conn.state = _LINGER
            conn.deadline = time.monotonic() + _RESET_GRACE
            self._linger(conn)
        else:
            self._drain(conn)

    # -- closing -----------------------------------------------------------------------------------
    def _linger(self, conn: _Conn) -> None:
        """Reset once the client acknowledged every byte (SO_LINGER 0 discards an unsent queue)."""
        if _unsent(conn.sock) and time.monotonic() < conn.deadline and not self.owner._stopping.is_set():
            self._schedule(conn, time.monotonic() + _LINGER_POLL)
            return
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close(conn)

    def _drain(self, conn: _Conn) -> None:
        """Close after a FIN, reading (and dropping) what the client still sends for up to ``_DRAIN_TIME``
        seconds: closing with unread input would send a RST, which can destroy the answer before the
        client reads it (an early 413 to a body still coming)."""
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
        conn.state = _DRAIN
        conn.deadline = time.monotonic() + _DRAIN_TIME
        self._schedule(conn, conn.deadline)
        self._watch(conn, selectors.EVENT_READ)

    def _close(self, conn: _Conn) -> None:
        if conn.state == _CLOSED:
            return
        conn.state = _CLOSED
        self._watch(conn, 0)
        self.conns.pop(conn.fd, None)
        conn.sock.close()
        conn.out.clear()
        conn.reader.discard()  # a stale timer entry may keep the conn alive a while: not its buffers
        if conn.writer is not None:
            writer, conn.writer = conn.writer, None
            self._close_body(writer)

    def _close_body(self, writer: ReplyWriter) -> None:
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001 - a lazy body that fails to close is a server error
            self.owner._record_error(exc)

    def _close_all(self) -> None:
        """The server stops: streams in progress end with a reset, threads' sockets are shut (their threads
        then end), everything else closes."""
        with self.lock:
            self.closed = True
            handed_back = [conn for conn, _ in self.handed_back]
        for conn in handed_back:  # handed back after the loop's last turn: theirs to close now
            conn.state = _READING
        for conn in list(self.conns.values()):
            if conn.state == _THREAD:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
                continue
            if conn.writer is not None:
                with contextlib.suppress(OSError):
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._close(conn)
        self.selector.close()
        self.socket.close()
        self._wake_in.close()
        self._wake_out.close()

    # -- handlers that wait for the network: a thread per request ----------------------------------
    def _to_thread(self, conn: _Conn, request: ReplayRequest, arrived: float) -> None:
        conn.state = _THREAD
        conn.sock.settimeout(_IDLE_TIMEOUT)
        thread = threading.Thread(target=self._serve_on_thread, args=(conn, request, arrived), daemon=True,
                                  name=f"sse-replay-request-{conn.fd}")
        with self.owner._lock:
            self.owner._threads.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: this request gets a 503, the server goes on
            with self.owner._lock:
                self.owner._threads.discard(thread)
            conn.sock.setblocking(False)
            conn.keep_alive = False
            conn.state = _WAITING
            self._respond(conn, refusal_reply(Refusal(503, "Service Unavailable", "no thread to serve it")),
                          arrived)

    def _serve_on_thread(self, conn: _Conn, request: ReplayRequest, arrived: float) -> None:
        owner = self.owner
        how = CLOSE
        writer: ReplyWriter | None = None
        try:
            reply = self._call_handler(conn, request)
            writer = ReplyWriter(reply, arrived, conn.method, not conn.keep_alive, merge_head=False)
            while True:
                step = writer.step(time.monotonic())
                if writer.error is not None:
                    owner._record_error(writer.error)
                    writer.error = None
                for piece in step.pieces:
                    conn.sock.sendall(piece)
                _note_lateness(step.due)
                if step.end is not None:
                    how = step.end
                    break
                if step.wait is not None:
                    owner._wait_until(step.wait)
        except (*_CLIENT_GONE, OSError):
            how = CLOSE  # the client left
        except ServerStopped:
            how = RESET
        except Exception as exc:  # noqa: BLE001 - a broken reply ends its connection, reported by check()
            owner._record_error(exc)
            how = CLOSE
        finally:
            if writer is not None:
                self._close_body(writer)
            self._hand_back(conn, how)
            with owner._lock:  # only now: stop() waits for this thread until its socket is handed back
                owner._threads.discard(threading.current_thread())

    def _hand_back(self, conn: _Conn, how: str) -> None:
        with self.lock:
            if not self.closed:
                self.handed_back.append((conn, how))
                self.wake()
                return
        conn.sock.close()  # the loop is gone: the server stopped

    def _take_handed_back(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_in.recv(4096):
                pass
        while True:
            with self.lock:
                if not self.handed_back:
                    return
                conn, how = self.handed_back.popleft()
            conn.sock.setblocking(False)
            self._end(conn, how)


class ServerLifecycle:
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


class LoopbackServer(ServerLifecycle):
    """An HTTP/1.1 server on loopback that answers every request with ``handler(request)``.

    Lifecycle as pytest-httpserver's ``HTTPServerBase``: ``port=0`` (default) picks a free port, read back
    through :attr:`port`/:attr:`url` once started; :meth:`start` raises if already running; :meth:`stop`
    ends open streams, closes connections and joins the threads; usable as a context manager (starts on
    enter, stops on exit). Errors raised by the handler are kept and re-raised by :meth:`check`.
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
        self._loop: _Loop | None = None
        self._threads: set[threading.Thread] = set()  # worker threads of handlers that wait for the network
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.requests: list[ReplayRequest] = []

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return int(self._loop.socket.getsockname()[1]) if self._loop else self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.url + ("" if path.startswith("/") else "/") + path

    def is_running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        """Bind and serve on a daemon thread; returns once the socket listens."""
        if self._loop is not None:
            raise ReplayError(f"server already running at {self.url}")
        self._stopping.clear()
        try:
            self._loop = _Loop(self)
        except OSError as exc:
            raise ReplayError(f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from exc
        self._loop.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: end open responses (a reset), close connections, join the threads."""
        loop = self._loop
        if loop is None:
            raise ReplayError("server is not running")
        self._stopping.set()
        loop.wake()
        deadline = time.monotonic() + timeout
        loop.thread.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._loop = None
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

    # -- used by the server's threads ------------------------------------------------------------
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
