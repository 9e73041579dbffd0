"""Server layer: the loopback HTTP/1.1 server (lifecycle, one event loop, paced chunked streams, abrupt ends).

Strategy: ONE thread runs an epoll loop (``selectors`` where there is no epoll) that accepts connections,
reads and parses requests (the sans-IO :mod:`._http`), calls the handler and writes every response at its
time, all without blocking: a timer heap holds the instant each waiting stream's next piece is due. Under
a burst of 100 requests in the same instant nothing waits for the GIL or a thread switch: each request
costs only its own parse, routing and write, one after another (a thread per connection spent far more
switching between 100 threads; see bench/bench_server.py for the figures).
  * each body piece of a :class:`Reply` is sent as ONE HTTP/1.1 chunk (TCP_NODELAY is set, so it leaves at
    once), at its own time offset after the request's first byte arrived (the kernel's receive stamp,
    SO_TIMESTAMPNS, where there is one); pieces due at the same instant leave together in one writev, and
    the head goes in the same write as a first piece due at once;
  * epoll waits in whole milliseconds, so the loop waits for the last fraction of one with a sleep: a piece
    leaves within tens of microseconds of its time when the loop is free; and it never waits longer than
    ``MAX_WAIT`` at a time, so a piece due in a thousand years (or at infinity) is a timer like another
    (epoll takes at most 2**31 - 1 ms, about 24.8 days; more raised OverflowError on the loop thread);
  * what a client's send buffer does not take waits for that socket to be writable, and the stream goes on
    only once it drained (a client that reads slowly holds up no one, and a 1 GiB fixture replayed at
    speed 0 is read from disk as it is sent); a write that cannot progress for ``_IDLE_TIMEOUT`` ends it;
  * an abrupt end (a recorded reset/timeout, or a disconnect fault) closes the socket without the final
    ``0\\r\\n\\r\\n`` chunk; a reset closes with ``SO_LINGER 0`` (a TCP RST, as a broken upstream gives)
    once the client has acknowledged every byte sent, since SO_LINGER 0 discards an unsent send queue;
  * a client that leaves mid-stream (EPIPE/ECONNRESET) ends that connection quietly, and the body iterable
    is closed (a fixture streamed from disk closes its file);
  * pieces already due (all of them at ``--speed 0``) go out in the turn they became due, each still its own
    chunk, in one writev per step: a request on a kept-alive connection alone in its turn takes them all
    in its first step; under a burst (and on a new connection), a first step takes one piece, and a
    response that has just written steps again at once, in rounds of one step per response (see
    ``Loop._flush_all``), so that every stream's first piece goes before any stream's second; never a loop
    turn (a select and a wake-up of the client) per piece; a connection stays watched for input while it
    is answered until some comes (no epoll change per request);
  * nothing stops the loop for long in a process that has served for hours: the cyclic garbage
    collector's full collections, which scan every object the process holds (the replay journal and the
    request log at their caps among them), are deferred while a server runs and run when the loop is
    quiet (see ``_GC_QUIET``), and the request log drops its oldest request one at a time.

One request never stops the server: anything raised while reading, routing or answering a request (the
parser, the handler, building the reply's head, reading its body, writing) is collected (re-raised by
:meth:`LoopbackServer.check`, as pytest-httpserver's ``HTTPServerBase`` does) and ends THAT connection: with
an answer when none of the response was sent yet (400 when reading the request failed, else 500), by
closing it otherwise. Whatever escapes one connection's handling is caught by the loop's turn.

A handler with a true ``cpu_only`` attribute promises never to wait for the network (the replay app): the
loop calls it. Any other handler (the recorder's proxy, which waits for its upstream) runs on a thread of
its own per request, which writes with blocking writes and sleeps and hands the connection back to the
loop when the response is over.

Limits (attributes of :class:`LoopbackServer`, set before ``start``):
  * ``backlog`` (1024): hundreds of clients may connect in the same millisecond; the stdlib default of 5
    makes the kernel drop their SYNs, which the clients retry only after a second;
  * ``max_connections`` (1024, and never more than the process's descriptor limit less 64) open at once.
    At the cap a new connection takes the place of the one that has waited longest for (the rest of) a
    request, if any (an idle kept-alive connection, a slow sender: it gets ``503`` and is closed), so that
    slow senders cannot lock others out; when every connection is being answered, the new one gets
    ``503``, and then our side is shut and its input drained before closing, so that the client reads the
    503 instead of a reset (should accept() still fail for want of a descriptor, accepting pauses 0.1 s);
  * ``header_timeout`` (10 s): the request line and headers must have arrived this long after the
    connection opened (or the previous response ended), else the connection is closed;
  * ``request_timeout`` (30 s): the whole request, head and body, must have arrived this long after its
    first byte; a deadline, not an idle timer restarted by each byte (a body trickled one byte every few
    seconds would hold its connection for ever); a late body gets ``408``;
  * ``max_head`` (64 KiB; over it, or over 100 header lines, or one line over 64 KiB: ``431``) and
    ``max_body`` (64 MiB: ``413``); a request that is not HTTP/1.x as RFC 9112 frames it gets ``400``;
  * the request log :attr:`LoopbackServer.requests` keeps the last ``log_max_requests`` requests (10,000),
    each body cut to ``log_body_limit`` bytes (1 MiB, with a marker saying how much was dropped), all
    bodies together at most ``log_total_limit`` bytes (64 MiB); past either, the oldest request goes as
    each new one comes.
Request paths are never used as file names: the handler picks among fixtures loaded at start.

What to answer is not decided here: a server gets a handler ``ReplayRequest -> Reply``. The Gemini replay
app and the recorder's proxy are such handlers. ``Reply.chunks`` may be a lazy iterable (a proxy yields
pieces as they arrive, with ``t=None`` for "now") and may raise :class:`AbruptClose`.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import gc
import heapq
import ipaddress
import itertools
import os
import select
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from ._errors import ReplayError, ServerStopped
from ._http import (
    AbruptClose,
    Finish,
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

__all__ = [
    "MAX_WAIT",
    "AbruptClose",
    "FullCollections",
    "Handler",
    "Loop",
    "Owner",
    "ReplayError",
    "ReplayRequest",
    "Reply",
    "ServerStopped",
    "dump_lateness",
    "is_loopback",
]

# Errors that only mean "the client went away"; they end one connection, never the server.
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
# A response the client stops reading for this long ends the connection (and a worker thread's socket
# operations time out after it).
_IDLE_TIMEOUT = 30.0
# The longest the loop waits in select at a time: a timer due later (a piece at 1e9 s, at infinity) is then
# just waited for again. epoll takes at most 2**31 - 1 ms; a wake-up a minute costs nothing.
MAX_WAIT = 60.0
# Pieces stepped are written together, back to back, at the end of each turn of the loop or once the first
# of them has waited _BATCH seconds. Under a burst of requests this shortens the time to answer them all
# (bench/bench_server.py measures it): every write to a client that sleeps wakes it (an interrupt to the
# other CPU, costly in a VM), and writes in a row reach a client that is still awake.
_BATCH = 0.001
# How long one flush may go on writing pieces already due (see Loop._flush_all) before the loop's next
# turn looks for new requests and readable sockets: as long as the batch, so that a burst of streams at
# --speed 0 delays a request that arrives meanwhile by no more than a batch does.
_ROUNDS = 0.001
# Pieces already due that one step of a response may give after a write (see Loop._advance); each is still
# its own chunk, and they leave together in one writev.
_PIECES = 64
# Pieces per writev at most (Linux takes IOV_MAX, 1024); 1 where the platform has no sendmsg (Windows).
_IOV = 512 if hasattr(socket.socket, "sendmsg") else 1
_JOIN_PIECE = 4096  # a step's pieces are joined when they average less than this (see _advance)
# How long a reset waits for the client to acknowledge what was sent (a stalled reader: reset anyway),
# polling every _LINGER_POLL seconds; how long a closing connection's unread input is drained (see _drain).
_RESET_GRACE = 1.0
_LINGER_POLL = 0.005
_DRAIN_TIME = 1.0
_READ_SIZE = 65536
_ACCEPT_PAUSE = 0.1  # out of descriptors: how long accepting pauses before the next try
_FD_RESERVE = 64  # descriptors kept for everything but client connections (fixtures, the process's own)
# Connections refused over the cap that are shut and drained (so that the 503 is read, not reset) besides
# the cap; beyond that many at once (a flood of connections) they are closed at once. Half the reserve.
_OVERFLOW_DRAINS = _FD_RESERVE // 2
# Benchmark hook, off unless the environment names a file: every timed chunk's (due, written) instants on
# the time.monotonic clock are kept in memory and written there as JSON when the server stops, so that
# bench/bench_server.py can tell the server's own lateness from its client's. Off, it costs a None check.
_LATENESS_FILE = os.environ.get("SSE_REPLAY_LATENESS_FILE") or None
_lateness: list[tuple[float, float]] | None = [] if _LATENESS_FILE else None


def dump_lateness() -> None:
    if _lateness is None or _LATENESS_FILE is None:
        return
    import json

    with open(_LATENESS_FILE, "w") as out:
        json.dump(_lateness, out)


def _note_lateness(due: list[float]) -> None:
    if _lateness is not None and due:
        written = time.monotonic()
        _lateness.extend((d, written) for d in due)


# The cyclic garbage collector's full collections scan every object the process holds: with the replay
# journal and the request log at their caps (bench/bench_server.py --only tail measures them), one stops
# the loop, and every stream it paces, for as long as that scan takes, whenever an allocation anywhere in
# the process tips the count, mid-stream included. While a server runs they are deferred (the oldest
# generation's threshold is put out of reach; young collections go on: they scan only what is new), and
# the loop runs the full collection itself:
#   * once it owes one (as many young collections since the last as the threshold it replaced) and has
#     been quiet for _GC_QUIET seconds: nothing answered, nothing being read, no timer of a response due;
#   * or, should it never be quiet, when the process's memory blocks have grown past twice what they were
#     after its last full collection plus _GC_GROWTH (garbage cycles that pile up), looked at every
#     _GC_CHECK seconds. The journal and the log are bounded, so a loop that is always busy pays this at
#     most once or twice as they fill, not every few thousand requests.
# The previous thresholds come back when the last server of the process stops. A process that switched
# the collector off (gc.disable(), or a first threshold of 0) is left alone. (From Python 3.14 on the
# collector is incremental and ignores the third threshold: this then changes nothing.)
_GC_QUIET = 0.25
_GC_CHECK = 10.0
_GC_GROWTH = 1_000_000
_GC_OUT_OF_REACH = 1 << 30


class FullCollections:
    """Process-wide bookkeeping of the deferral above: how many servers run, the thresholds to restore."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    users: ClassVar[int] = 0
    # The thresholds before the first server deferred them.
    saved: ClassVar[tuple[int, int, int] | None] = None

    @classmethod
    def defer(cls) -> None:
        with cls.lock:
            cls.users += 1
            if cls.users == 1 and gc.isenabled():
                first, second, third = gc.get_threshold()
                if first and third < _GC_OUT_OF_REACH:
                    cls.saved = (first, second, third)
                    gc.set_threshold(first, second, _GC_OUT_OF_REACH)

    @classmethod
    def resume(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and cls.saved is not None:
                first, second, third = gc.get_threshold()
                if third == _GC_OUT_OF_REACH:  # not changed by someone else meanwhile
                    gc.set_threshold(first, second, cls.saved[2])
                cls.saved = None

    @classmethod
    def owed(cls) -> bool:
        """A full collection would have run by now (as many young collections as the old threshold)."""
        saved = cls.saved
        return saved is not None and gc.isenabled() and gc.get_count()[2] > saved[2]


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
_TIMESPEC = struct.Struct("qq")  # the stamp: seconds and nanoseconds


def _receive(sock: socket.socket, buffer: bytearray) -> tuple[int, float | None]:
    """Receive into ``buffer``: (bytes got, when the kernel received them on the ``time.monotonic`` clock,
    or None when unknown)."""
    if _SO_TIMESTAMPNS is None or not _STAMP_SPACE:
        return sock.recv_into(buffer), None
    got, ancillary, _, _ = sock.recvmsg_into([buffer], _STAMP_SPACE)
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            now = time.monotonic()
            stamp = now - (time.time() - (seconds + nanoseconds / 1e9))
            # Within the last 5 s: a stepped wall clock must not skew the pace.
            return got, now if stamp > now else stamp if stamp > now - 5.0 else now - 5.0
    return got, None


def _unsent(sock: socket.socket) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (Linux SIOCOUTQ; else 0)."""
    try:
        import fcntl
        import termios

        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except (ImportError, OSError, AttributeError):
        return 0


class _State(enum.Enum):
    """What a connection is doing; the loop's timer for it (one at most) means something different in each."""

    READING = "reading"  # waiting for (the rest of) a request; timer: the head or whole-request deadline
    WAITING = "waiting"  # a response waits for its next piece's instant; timer: that instant
    SENDING = "sending"  # written bytes wait for the socket to take them; timer: the stall deadline
    THREAD = "thread"  # a worker thread has the socket; no timer
    LINGER = "linger"  # a reset waits for the client to acknowledge what was sent; timer: the next poll
    DRAIN = "drain"  # closing: our side is shut, unread input is read and dropped; timer: the drain deadline
    CLOSED = "closed"


# The states, and the finish that keeps a connection, by name, as the loop reads them on every request: in
# Python 3.11 reading a member off its enum class goes through EnumType's __getattr__ hook (a bound method
# made and dropped per read).
READING = _State.READING
WAITING = _State.WAITING
SENDING = _State.SENDING
THREAD = _State.THREAD
LINGER = _State.LINGER
DRAIN = _State.DRAIN
CLOSED = _State.CLOSED
_DONE = Finish.DONE


def _canned(status: int, reason: str, message: str, *extra: str) -> bytes:
    """A whole short answer that closes the connection, for when no :class:`ReplyWriter` can be trusted
    (or none is needed): it fits any socket's send buffer in one write (a long message is cut)."""
    body = f"sse-replay: {message[:500]}\n".encode("utf-8", "replace")
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/plain", *extra]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


_FULL = _canned(503, "Service Unavailable", "over the connection limit, try again", "Retry-After: 1")
_YIELDED = _canned(
    503,
    "Service Unavailable",
    "the server is full and this connection was still waiting for a request",
    "Retry-After: 1",
)
_LATE = _canned(408, "Request Timeout", "the request body did not arrive in time")


# What a socket is watched for, in the bits its readiness comes back in (epoll's values; the selectors
# fallback translates). Any other bit (a hang-up, an error) counts as ready for both, as selectors has it.
_EPOLL = hasattr(select, "epoll")  # read when a loop starts (a test runs the fallback by setting it False)
_IN = 0x001  # select.EPOLLIN
_OUT = 0x004  # select.EPOLLOUT
_LISTENER = "listener"  # the loop's object for the listening socket (None: a descriptor no longer watched)


class _Poller:
    """The sockets the loop waits on, by descriptor, each with what it is watched for (``_IN``, ``_OUT``)
    and the loop's object for it. ``poll(timeout)`` gives ``(descriptor, events)`` pairs: on Linux it is
    epoll's own, so a turn of the loop builds no key object per ready socket and makes no Python call to
    wait (``selectors`` made two); elsewhere the selectors module's default selector, in the same shape.
    The timeout is None (no limit) or >= 0: epoll would wait for ever on a negative one (``_timeout``)."""

    def __init__(self) -> None:
        self.objects: dict[int, object] = {}
        self.poll: Callable[[float | None], list[tuple[int, int]]]
        self._epoll = select.epoll() if _EPOLL else None
        if self._epoll is not None:
            self.poll = self._epoll.poll
        else:
            self._selector = selectors.DefaultSelector()
            self.poll = self._select

    def _select(self, timeout: float | None) -> list[tuple[int, int]]:
        return [
            (
                key.fd,
                (_IN if events & selectors.EVENT_READ else 0)
                | (_OUT if events & selectors.EVENT_WRITE else 0),
            )
            for key, events in self._selector.select(timeout)
        ]

    @staticmethod
    def _selector_events(events: int) -> int:
        return (selectors.EVENT_READ if events & _IN else 0) | (selectors.EVENT_WRITE if events & _OUT else 0)

    def register(self, fd: int, events: int, obj: object) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, events)
        else:
            self._selector.register(fd, self._selector_events(events))
        self.objects[fd] = obj

    def modify(self, fd: int, events: int) -> None:
        if self._epoll is not None:
            self._epoll.modify(fd, events)
        else:
            self._selector.modify(fd, self._selector_events(events))

    def unregister(self, fd: int) -> None:
        if self._epoll is not None:
            self._epoll.unregister(fd)
        else:
            self._selector.unregister(fd)
        del self.objects[fd]

    def close(self) -> None:
        self.objects.clear()
        if self._epoll is not None:
            self._epoll.close()
        else:
            self._selector.close()


class _Conn:
    """One client connection as the loop sees it."""

    __slots__ = (
        "after",
        "arrived",
        "deadline",
        "due",
        "events",
        "fd",
        "head_by",
        "keep_alive",
        "method",
        "out",
        "overflow",
        "reader",
        "sent",
        "sock",
        "started",
        "state",
        "timer",
        "wait",
        "writer",
    )

    def __init__(self, sock: socket.socket, reader: RequestReader) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = reader
        self.state = READING
        self.events = 0  # what the poller watches for (_IN, _OUT)
        self.deadline = 0.0  # see the states
        self.timer = 0.0  # the instant of its live entry in the loop's heap (0: none; -1: in ``ready``)
        self.arrived: float | None = None  # when the current request's first byte came (the pace's zero)
        self.started = 0.0  # when the loop saw the current request's first byte (0: none yet)
        self.head_by = 0.0  # when the current request's head must have come (the idle deadline)
        self.sent = False  # bytes of the current response were written (an error can no longer answer)
        self.overflow = False  # refused over the cap, draining: not counted against it
        self.keep_alive = False
        self.method = "GET"
        self.writer: ReplyWriter | None = None
        self.out: collections.deque[bytes] = collections.deque()  # written, not yet taken by the socket
        self.after: Finish | None = None  # once ``out`` drained: how the response ends, or None to step
        self.wait: float | None = None  # then: when the writer's next piece is due (None: at once)
        self.due: list[float] = []  # the due instants of the timed pieces in ``out`` (the lateness hook)


class Owner(Protocol):
    """What a :class:`Loop` reads and calls on the server that owns it: ``LoopbackServer``
    (server/_lifecycle.py), its limits, its handler and the bookkeeping its threads share."""

    # The limits a user sets: Any, read as Python reads them (max_body = 1e6 works; compiled, a declared int
    # is checked where it is read).
    handler: Handler
    host: str
    backlog: Any
    max_connections: Any
    header_timeout: float
    request_timeout: float
    max_head: Any
    max_body: Any
    log_requests: Any
    _port: int
    _lock: threading.Lock
    _threads: set[threading.Thread]

    def _record_error(self, exc: BaseException) -> None: ...

    def _log_request(self, request: ReplayRequest) -> None: ...

    def _wait_until(self, deadline: float) -> None: ...


class Loop:
    """The server's one loop thread: accept, read, answer, pace, close (see the module doc)."""

    def __init__(self, owner: Owner) -> None:
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
        self.poller = _Poller()
        self.poller.register(self.socket.fileno(), _IN, _LISTENER)
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self.poller.register(self._wake_in.fileno(), _IN, "wake")
        self.conns: dict[int, _Conn] = {}  # every open connection, the loop's and the threads'
        # Connections by when they began to wait for (the rest of) a request, oldest first: at the cap the
        # first that still waits yields its place. Entries of connections that moved on are skipped then.
        self.reading: dict[int, _Conn] = {}
        self.overflow = 0  # connections refused over the cap that are draining (see _OVERFLOW_DRAINS)
        self.timers: list[tuple[float, int, _Conn]] = []
        self.ready: collections.deque[_Conn] = collections.deque()  # to go on with in the next turn
        self.unflushed: list[_Conn] = []  # stepped, their pieces not yet written (see _BATCH)
        self.unflushed_since = 0.0
        self.flushing = False  # in _flush_all
        self.alone = False  # the turn's only event is being handled (see _turn)
        self._order = itertools.count()
        self.handed_back: collections.deque[tuple[_Conn, Finish]] = collections.deque()
        self.lock = threading.Lock()  # guards ``handed_back`` and ``closed`` against the worker threads
        self.closed = False
        self.stopping = False  # set by LoopbackServer.stop (with its event, which worker threads wait on)
        self.buffer = bytearray(_READ_SIZE)
        self.accept_paused = 0.0  # when accepting was paused until (0: it is not)
        self.accept_failing = False  # accept() failed and has not succeeded since (reported once)
        # Over max_connections a connection gets 503; the cap also stays under the descriptors the process
        # may open, so that the 503 comes before accept() fails for want of one.
        self.fd_cap = 1 << 30
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if soft != resource.RLIM_INFINITY:
                self.fd_cap = max(1, soft - _FD_RESERVE)
        # Full collections (see _GC_QUIET): whether the select now waiting was cut short to look for a
        # quiet moment, the memory blocks after the last one, when memory growth is looked at next.
        self.quiet_wait = False
        self.gc_blocks = sys.getallocatedblocks()
        self.gc_check = time.monotonic() + _GC_CHECK
        self.thread = threading.Thread(target=self._run, daemon=True, name="sse-replay")

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_out.send(b"!")

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self.stopping:
                try:
                    self._turn()
                except Exception as exc:  # outside any one connection's handling: reported, the loop goes on
                    self.owner._record_error(exc)
        except BaseException as exc:
            self.owner._record_error(exc)
        finally:
            self._close_all()

    def _turn(self) -> None:
        events = self.poller.poll(self._timeout())
        objects = self.poller.objects
        if self.quiet_wait:
            self.quiet_wait = False
            if not events and not self._busy():
                self._collect()  # quiet for _GC_QUIET, and nothing in progress that it could delay
        # A request on a kept-alive connection alone in this turn gives all its pieces due in its first step
        # (one write); in a burst, and on new connections (the backlog may hold a burst), each takes one, so
        # that every stream's first piece goes before any stream's second.
        self.alone = (
            len(events) == 1
            and isinstance(objects.get(events[0][0]), _Conn)
            and not self.ready
            and not self.unflushed
        )
        for fd, mask in events:
            conn = objects.get(fd)  # None: closed (and not reused) by an event before it in this turn
            if conn is _LISTENER:
                self._accept()
            elif conn == "wake":
                self._take_handed_back()
            elif conn is not None:
                assert isinstance(conn, _Conn)
                try:
                    # Ready for what it is watched for; a hang-up or an error counts as both.
                    if mask & ~_IN and conn.events & _OUT and conn.state is SENDING:
                        self._flush(conn)
                    if mask & ~_OUT and conn.events & _IN:
                        if conn.state is READING or conn.state is DRAIN:
                            self._read(conn)
                        else:
                            # Input while answering (a pipelined request, the client's FIN) waits in the
                            # socket until the answer ends: only now is the connection no longer watched
                            # for it (an answer the client sends nothing during costs no epoll change).
                            self._watch(conn, conn.events & ~_IN)
                except Exception as exc:
                    self._fail(conn, exc)
            self._flush_if_due()
        self.alone = False
        if self.accept_paused and time.monotonic() >= self.accept_paused:
            self.accept_paused = 0.0
            self.poller.register(self.socket.fileno(), _IN, _LISTENER)
        self._fire_timers()
        if self.ready:
            self._run_ready()
        if self.unflushed:
            self._flush_all()

    def _timeout(self) -> float | None:
        """How long select may wait. epoll counts whole milliseconds (rounding up), so the last fraction of
        one before a piece is due is slept here instead: it leaves on time, not up to 1 ms late."""
        if self.ready or self.unflushed:
            return 0
        due = self.timers[0][0] if self.timers else None
        if self.accept_paused and (due is None or self.accept_paused < due):
            due = self.accept_paused
        if due is None:
            if FullCollections.saved is None:
                return None
            if not FullCollections.owed():
                return _GC_CHECK  # a turn now and then looks at the memory (see _GC_QUIET)
            self.quiet_wait = True
            return _GC_QUIET
        delay = due - time.monotonic()
        if delay > MAX_WAIT:
            delay = MAX_WAIT
        if delay > _GC_QUIET and FullCollections.owed():
            delay, self.quiet_wait = _GC_QUIET, True
        if delay >= 0.001:
            return (int(delay * 1000) - 0.5) / 1000  # rounds up to that many whole milliseconds
        if delay > 0:
            time.sleep(delay)
        return 0

    def _busy(self) -> bool:
        """Something is in progress that a full collection now would delay: a response, a request."""
        return any(
            conn.writer is not None or conn.state is THREAD or not conn.reader.idle
            for conn in self.conns.values()
        )

    def _collect(self) -> None:
        gc.collect()
        self.gc_blocks = sys.getallocatedblocks()

    def _check_growth(self, now: float) -> None:
        """Never quiet, and memory keeps growing: the full collection is run anyway (see _GC_QUIET)."""
        self.gc_check = now + _GC_CHECK
        deferred = FullCollections.saved is not None and gc.isenabled()
        if deferred and sys.getallocatedblocks() > 2 * self.gc_blocks + _GC_GROWTH:
            self._collect()

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
            try:
                if conn.state is WAITING:
                    self._advance(conn, _PIECES)
                elif conn.state is READING:
                    self._take_request(conn)
                    if conn.state is READING:  # part of a request waits: its deadline holds
                        self._set_deadline(conn)
            except Exception as exc:
                self._fail(conn, exc)
            self._flush_if_due()

    def _schedule(self, conn: _Conn, when: float) -> None:
        if when != when:  # NaN: never due by comparison, it would sit atop the heap for ever; due now
            when = time.monotonic()
        conn.timer = when
        heapq.heappush(self.timers, (when, next(self._order), conn))
        if len(self.timers) > 2 * len(self.conns) + 1024:
            # Replaced entries wait in the heap until their time (each kept-alive request leaves its head
            # deadline behind): drop them, so that the heap stays proportional to the open connections.
            self.timers[:] = [e for e in self.timers if e[2].timer == e[0] and e[2].state is not CLOSED]
            heapq.heapify(self.timers)

    def _fire_timers(self) -> None:
        timers = self.timers
        now = time.monotonic()
        if now >= self.gc_check:
            self._check_growth(now)
        while timers and timers[0][0] <= now:
            when, _, conn = heapq.heappop(timers)
            if conn.timer != when or conn.state is CLOSED:
                continue  # replaced by a later one
            conn.timer = 0.0
            try:
                if conn.state is WAITING:
                    self._advance(conn)
                elif conn.state is LINGER:
                    self._linger(conn)
                elif conn.state in (READING, SENDING, DRAIN):
                    if now < conn.deadline:
                        self._schedule(conn, conn.deadline)
                    elif conn.state is READING and conn.reader.head_done:
                        self._answer_and_drain(conn, _LATE)  # the body did not come in time: say so
                    else:
                        self._close(conn)  # no head in time, no progress, or drained long enough
            except Exception as exc:
                self._fail(conn, exc)
            self._flush_if_due()
            now = time.monotonic()

    def _watch(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        if not conn.events:
            self.poller.register(conn.fd, events, conn)
        elif not events:
            self.poller.unregister(conn.fd)
        else:
            self.poller.modify(conn.fd, events)
        conn.events = events

    # -- one connection's failure ------------------------------------------------------------------
    def _fail(self, conn: _Conn, exc: Exception) -> None:
        """Something raised while handling ``conn``: report it and end that connection, with an answer if
        none of the response was sent yet (400 when the request could not be read, else 500)."""
        self.owner._record_error(exc)
        if conn.state in (CLOSED, THREAD):
            return  # closed already, or the worker thread's to end
        try:
            if conn.sent or conn.state in (DRAIN, LINGER):
                self._close(conn)
            elif conn.state is READING:
                self._answer_and_drain(conn, _canned(400, "Bad Request", f"cannot read the request: {exc}"))
            else:
                self._answer_and_drain(conn, _canned(500, "Internal Server Error", f"internal error: {exc}"))
        except Exception as again:  # the answer failed too: close, whatever state it was left in
            self.owner._record_error(again)
            self._close(conn)

    def _answer_and_drain(self, conn: _Conn, answer: bytes) -> None:
        """Send a short closing ``answer`` (any response in progress is dropped), then shut and drain."""
        if conn.writer is not None:
            writer, conn.writer = conn.writer, None
            self._close_body(writer)
        conn.out.clear()
        conn.after = None
        with contextlib.suppress(OSError):
            conn.sock.send(answer)
        conn.sent = True
        self._drain(conn)

    # -- accepting and reading ---------------------------------------------------------------------
    def _accept(self) -> None:
        owner = self.owner
        while True:
            try:
                sock, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: connections wait in the backlog meanwhile
                if not self.accept_failing:  # reported once, not at every retry
                    self.accept_failing = True
                    owner._record_error(ReplayError(f"cannot accept a connection: {exc}"))
                # A listening socket stays readable: unwatched meanwhile (no busy loop).
                self.poller.unregister(self.socket.fileno())
                self.accept_paused = time.monotonic() + _ACCEPT_PAUSE
                return
            self.accept_failing = False
            try:
                conn = self._take(sock)
            except Exception as exc:  # before the connection was the loop's: only its socket to close
                owner._record_error(exc)
                sock.close()
                continue
            if conn is not None:
                try:
                    self._await_request(conn)
                    self._read(conn)  # under a burst the request came with the connection: answer it now
                except Exception as exc:
                    self._fail(conn, exc)
            self._flush_if_due()

    def _take(self, sock: socket.socket) -> _Conn | None:
        """A new connection, or None when the cap left no room for it (it got a 503)."""
        sock.setblocking(False)
        owner = self.owner
        full = len(self.conns) - self.overflow >= min(owner.max_connections, self.fd_cap)
        if full and not self._make_room():
            self._refuse_over_cap(sock, _FULL)
            return None
        if not _NODELAY_INHERITED:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, RequestReader(owner.max_head, owner.max_body))
        self.conns[conn.fd] = conn
        return conn

    def _make_room(self) -> bool:
        """At the cap: the connection that has waited longest for (the rest of) a request yields its place
        (a 503, then closed). False when every connection is being answered."""
        reading = self.reading
        while reading:
            fd = next(iter(reading))
            conn = reading.pop(fd)
            if conn.state is READING and self.conns.get(fd) is conn:
                conn.reader.discard()  # before it leaves conns (see _close)
                self.conns.pop(fd)
                self._watch(conn, 0)
                conn.state = CLOSED  # its timer entries are stale from now on
                self._refuse_over_cap(conn.sock, _YIELDED)
                return True
        return False

    def _refuse_over_cap(self, sock: socket.socket, answer: bytes) -> None:
        """Answer ``answer`` (a 503) to a connection the cap leaves no room for, and shut our side. It is
        then drained before closing (closing with unread input sends a RST, which can destroy the 503
        before the client reads it), unless _OVERFLOW_DRAINS are draining already: then it is closed now,
        after reading what it has sent so far."""
        if self.overflow < _OVERFLOW_DRAINS:
            conn = _Conn(sock, RequestReader(0, 0))
            conn.overflow = True
            self.overflow += 1
            self.conns[conn.fd] = conn
            self._answer_and_drain(conn, answer)
            return
        with contextlib.suppress(OSError):
            for _ in range(16):  # bounded: a client that floods us is not read for ever
                if not sock.recv(_READ_SIZE):
                    break
        with contextlib.suppress(OSError):
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
        sock.close()

    def _await_request(self, conn: _Conn) -> None:
        conn.state = READING
        conn.sent = False
        now = time.monotonic()
        conn.head_by = now + self.owner.header_timeout
        conn.started = 0.0 if conn.reader.idle else now  # a pipelined request: its bytes are here already
        conn.deadline = 0.0
        self.reading.pop(conn.fd, None)
        self.reading[conn.fd] = conn
        self._set_deadline(conn)

    def _set_deadline(self, conn: _Conn) -> None:
        """The instant the request being read must have come by: its head by ``head_by``, and all of it
        within ``request_timeout`` of its first byte. Never restarted by a byte that comes."""
        deadline = conn.head_by
        if conn.started:
            whole = conn.started + self.owner.request_timeout
            if whole < deadline or conn.reader.head_done:
                deadline = whole
        conn.deadline = deadline
        # No timer (0), or one due after the deadline: schedule it. A timer due before it fires first and
        # then finds the deadline; one in ``ready`` (-1) gets its deadline scheduled there.
        if conn.timer == 0.0 or deadline < conn.timer:
            self._schedule(conn, deadline)

    def _read(self, conn: _Conn) -> None:
        try:
            if conn.state is READING and conn.reader.idle:  # the request's first bytes
                got, stamp = _receive(conn.sock, self.buffer)
                data = bytes(memoryview(self.buffer)[:got])
                if got:
                    conn.arrived = stamp or time.monotonic()
            else:
                data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            self._watch(conn, _IN)
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            if (
                conn.timer == -1.0
            ):  # a pipelined request waits in the reader: answer it first (EOF comes again)
                return
            self._close(conn)  # the client closed (mid-head, or between requests)
            return
        if conn.state is DRAIN:
            return
        if not conn.started:
            conn.started = conn.arrived or time.monotonic()
        conn.reader.feed(data)
        self._take_request(conn)
        if conn.state is READING:
            self._set_deadline(conn)
            self._watch(conn, _IN)

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
        conn.state = WAITING  # from here on a failure is the answer's (500), not the request's (400)
        conn.keep_alive, conn.method = parsed.keep_alive, parsed.method
        request = ReplayRequest.of(parsed)
        if owner.log_requests:
            owner._log_request(request)
        # Nothing is read while answering (a pipelined request waits in the reader or the socket); the
        # connection stays watched for input until some comes (see _turn).
        if not getattr(owner.handler, "cpu_only", False):
            self._watch(conn, 0)  # the worker thread's socket
            self._to_thread(conn, request, arrived)
            return
        self._respond(conn, self._call_handler(conn, request), arrived)

    def _call_handler(self, conn: _Conn, request: ReplayRequest) -> Reply:
        try:
            return self.owner.handler(request)
        except Exception as exc:
            self.owner._record_error(exc)
            conn.keep_alive = False
            return error_reply(exc)

    def _respond(self, conn: _Conn, reply: Reply, arrived: float) -> None:
        conn.state = WAITING
        conn.writer = ReplyWriter(reply, arrived, conn.method, not conn.keep_alive, merge_head=True)
        self._advance(conn, _PIECES if self.alone else 1)

    def _advance(self, conn: _Conn, limit: int = 1) -> None:
        """Step the response: what is due now (up to ``limit`` body pieces) is queued for the next
        :meth:`_flush_all`; then the response waits for its next instant (a timer), or ends. A first step
        in a burst and a timer's step take one piece, already read: at its instant only its write is left
        to do (a burst of streams has first pieces due at once); a step right after a write, or the first
        step of a request on a kept-alive connection alone in its turn, takes every piece due (_PIECES at
        most)."""
        writer = conn.writer
        assert writer is not None
        conn.timer = 0.0  # any timer entry left for it is stale from now on
        step = writer.step(time.monotonic(), limit)  # never raises: a broken reply is a 500 or an abrupt end
        if writer.error is not None:
            self.owner._record_error(writer.error)  # its own connection, reported by check(); never the loop
            writer.error = None
        conn.state = WAITING
        if not step.pieces:
            if step.end is not None:
                self._end(conn, step.end)
            elif step.wait is not None:
                self._schedule(conn, step.wait)
            else:
                self._soon(conn)
            return
        pieces = step.pieces
        if len(pieces) > 1 and len(pieces) * _JOIN_PIECE > sum(map(len, pieces)):
            # Small pieces go out joined (each is its own HTTP chunk still): a writev of many small buffers
            # cost the kernel more per byte than the one copy joining them costs here.
            conn.out.append(b"".join(pieces))
        else:
            conn.out.extend(pieces)
        conn.after, conn.due = step.end, step.due
        if not self.unflushed:
            self.unflushed_since = time.monotonic()
        self.unflushed.append(conn)

    def _flush_if_due(self) -> None:
        if self.unflushed and not self.flushing and time.monotonic() - self.unflushed_since >= _BATCH:
            self._flush_all(rounds=False)

    def _flush_all(self, rounds: bool = True) -> None:
        """Write what the responses stepped since the last time have due, back to back. Each then steps
        again (reading its next piece, after the write: see ReplyWriter), and a piece due already is
        written in another round of this flush: one step per response a round, so that under a burst
        every stream's first piece goes before any stream's second, as when each round was a turn of the
        loop. Rounds go on for at most ``_ROUNDS`` seconds, with the timers fired between them; what is
        left goes on in the loop's next turn, after a select that takes in what came meanwhile. (A turn
        per piece cost a select, the timers and a wake-up of the client per piece.) Only the flush that
        ends a turn goes on in rounds: one in the middle of a turn (a batch that waited _BATCH) writes
        once, and the rest of the turn's requests get their first pieces before those streams get their
        second."""
        self.flushing = True  # the timers fired between rounds add to the next round, not flush it
        until = 0.0
        try:
            while self.unflushed:
                unflushed, self.unflushed = self.unflushed, []
                going_on = []
                for conn in unflushed:
                    try:
                        if conn.state is WAITING and self._flush(conn):
                            going_on.append(conn)
                    except Exception as exc:
                        self._fail(conn, exc)
                    _note_lateness(conn.due)
                if not going_on:
                    break
                now = time.monotonic()
                if not until:
                    until = now + _ROUNDS
                if not rounds or now >= until:
                    for conn in going_on:
                        self._soon(conn)
                    break
                for conn in going_on:
                    try:
                        self._advance(conn, _PIECES)  # its next pieces, if due, join the next round
                    except Exception as exc:
                        self._fail(conn, exc)
                self._fire_timers()
        finally:
            self.flushing = False

    def _flush(self, conn: _Conn) -> bool:
        """Write ``out``; True when all was taken and the connection goes on at once (then, if the response
        is over, it has ended). False when it waits for the socket, or was closed."""
        out, sock = conn.out, conn.sock
        try:
            while out:
                # The pieces due go in one writev (each still its own HTTP chunk): a send per piece cost a
                # system call, a TCP segment and a wake-up of the client each.
                offered = len(out) if len(out) < _IOV else _IOV
                try:
                    wrote = (
                        sock.send(out[0]) if offered == 1 else sock.sendmsg(itertools.islice(out, offered))
                    )
                except (BlockingIOError, InterruptedError):
                    wrote = 0
                if wrote:
                    conn.sent = True
                left = wrote
                while offered and left >= len(out[0]):
                    left -= len(out.popleft())
                    offered -= 1
                if offered:  # the socket took less than offered: wait until it is writable
                    if left:
                        out[0] = out[0][left:]
                    if conn.state is not SENDING:
                        conn.state = SENDING
                        conn.deadline = time.monotonic() + _IDLE_TIMEOUT
                        self._schedule(conn, conn.deadline)
                    elif wrote:
                        conn.deadline = time.monotonic() + _IDLE_TIMEOUT  # progress: the stall clock restarts
                    self._watch(conn, _OUT)
                    return False
        except OSError:  # the client left
            self._close(conn)
            return False
        if conn.state is SENDING:  # drained after a wait
            conn.state = WAITING
            self._watch(conn, 0)
            if conn.after is None:
                self._advance(conn, _PIECES)
                return False
        if conn.after is not None:
            self._end(conn, conn.after)
            return False
        return True

    def _end(self, conn: _Conn, how: Finish) -> None:
        """The response is over and written: serve the next request, or close as ``how`` says."""
        if conn.writer is not None:
            writer, conn.writer = conn.writer, None
            self._close_body(writer)
        conn.after = None
        if how is _DONE and conn.keep_alive and not self.stopping:
            self._await_request(conn)
            self._watch(conn, _IN)
            if conn.started:
                self._soon(conn)  # a pipelined request waits in the reader (not taken here: no recursion)
        elif how is Finish.RESET:
            self._watch(conn, 0)
            conn.state = LINGER
            conn.deadline = time.monotonic() + _RESET_GRACE
            self._linger(conn)
        else:
            self._drain(conn)

    # -- closing -----------------------------------------------------------------------------------
    def _linger(self, conn: _Conn) -> None:
        """Reset once the client acknowledged every byte (SO_LINGER 0 discards an unsent queue)."""
        if _unsent(conn.sock) and time.monotonic() < conn.deadline and not self.stopping:
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
        conn.state = DRAIN
        conn.deadline = time.monotonic() + _DRAIN_TIME
        self._schedule(conn, conn.deadline)
        self._watch(conn, _IN)

    def _close(self, conn: _Conn) -> None:
        if conn.state is CLOSED:
            return
        conn.state = CLOSED
        self._watch(conn, 0)
        # Its buffers and last head go before it leaves ``conns``: a stale timer entry may keep the conn
        # alive a while, and once ``connections`` says it is closed nothing of its requests is left.
        conn.out.clear()
        conn.reader.discard()
        if conn.writer is not None:
            writer, conn.writer = conn.writer, None
            self._close_body(writer)
        self.conns.pop(conn.fd, None)
        if self.reading.get(conn.fd) is conn:
            del self.reading[conn.fd]
        if conn.overflow:
            conn.overflow = False
            self.overflow -= 1
        conn.sock.close()

    def _close_body(self, writer: ReplyWriter) -> None:
        try:
            writer.close()
        except Exception as exc:
            self.owner._record_error(exc)

    def _close_all(self) -> None:
        """The server stops: streams in progress end with a reset, threads' sockets are shut (their threads
        then end), everything else closes."""
        with self.lock:
            self.closed = True
            handed_back = [conn for conn, _ in self.handed_back]
        for conn in handed_back:  # handed back after the loop's last turn: theirs to close now
            conn.state = READING
        for conn in list(self.conns.values()):
            if conn.state is THREAD:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
                continue
            if conn.writer is not None:
                with contextlib.suppress(OSError):
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._close(conn)
        self.poller.close()
        self.socket.close()
        self._wake_in.close()
        self._wake_out.close()

    # -- handlers that wait for the network: a thread per request ----------------------------------
    def _to_thread(self, conn: _Conn, request: ReplayRequest, arrived: float) -> None:
        conn.state = THREAD
        conn.sock.settimeout(_IDLE_TIMEOUT)
        thread = threading.Thread(
            target=self._serve_on_thread,
            args=(conn, request, arrived),
            daemon=True,
            name=f"sse-replay-request-{conn.fd}",
        )
        with self.owner._lock:
            self.owner._threads.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: this request gets a 503, the server goes on
            with self.owner._lock:
                self.owner._threads.discard(thread)
            conn.sock.setblocking(False)
            conn.keep_alive = False
            conn.state = WAITING
            self._respond(
                conn, refusal_reply(Refusal(503, "Service Unavailable", "no thread to serve it")), arrived
            )

    def _serve_on_thread(self, conn: _Conn, request: ReplayRequest, arrived: float) -> None:
        owner = self.owner
        how = Finish.CLOSE
        writer: ReplyWriter | None = None
        sent = False  # bytes of the response were written: an error can no longer answer
        try:
            reply = self._call_handler(conn, request)
            writer = ReplyWriter(reply, arrived, conn.method, not conn.keep_alive, merge_head=False)
            while True:
                step = writer.step(time.monotonic())
                if writer.error is not None:
                    owner._record_error(writer.error)
                    writer.error = None
                for piece in step.pieces:
                    sent = True
                    conn.sock.sendall(piece)
                _note_lateness(step.due)
                if step.end is not None:
                    how = step.end
                    break
                if step.wait is not None:
                    owner._wait_until(step.wait)
        except (*_CLIENT_GONE, OSError):
            how = Finish.CLOSE  # the client left
        except ServerStopped:
            how = Finish.RESET
        except Exception as exc:
            owner._record_error(exc)
            how = Finish.CLOSE
            if not sent:
                with contextlib.suppress(OSError):
                    conn.sock.sendall(_canned(500, "Internal Server Error", f"internal error: {exc}"))
        finally:
            if writer is not None:
                self._close_body(writer)
            self._hand_back(conn, how)
            with owner._lock:  # only now: stop() waits for this thread until its socket is handed back
                owner._threads.discard(threading.current_thread())

    def _hand_back(self, conn: _Conn, how: Finish) -> None:
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
            try:
                conn.sock.setblocking(False)
                self._end(conn, how)
            except Exception as exc:
                self._fail(conn, exc)
