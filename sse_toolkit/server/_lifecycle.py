"""Server layer: the loopback server's public face, its lifecycle (start, stop, check, the request log).

:class:`LoopbackServer` owns one :class:`._loop.Loop` (the loop thread that reads, answers and paces; its
module doc says how, and which limits below mean what). This module stays plain Python where the loop and
the HTTP framing are compiled with mypyc (setup.py): a class here may be subclassed and its limits read
and set on the class or an instance, as any Python class's.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING

from ..parser._exceptions import SSEError
from ._errors import ReplayError, ServerStopped
from ._http import Handler, ReplayRequest
from ._loop import MAX_WAIT, FullCollections, Loop, dump_lateness

if TYPE_CHECKING:
    from typing import Self

__all__ = ["LoopbackServer", "ServerLifecycle"]

_MAX_ERRORS = 1000  # errors kept for check(); more are counted (a fault that repeats must not grow memory)


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
    enter, stops on exit). Errors raised by the handler (or anywhere while answering one request) are kept
    and re-raised by :meth:`check`; past the first 1000, they are only counted in :attr:`errors_dropped`.
    :attr:`requests` logs each request as received, bodies cut as the module doc says; a server whose
    handler keeps its own journal passes ``log_requests=False``.
    The limits below (see the module doc) may be changed on an instance before :meth:`start`.
    """

    backlog: int = 1024
    max_connections: int = 1024
    header_timeout: float = 10.0
    request_timeout: float = 30.0
    max_head: int = 64 * 1024
    max_body: int = 64 * 1024 * 1024
    log_max_requests: int = 10_000
    log_body_limit: int = 1024 * 1024
    log_total_limit: int = 64 * 1024 * 1024

    def __init__(
        self, handler: Handler, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = True
    ) -> None:
        self.handler = handler
        self.host = host
        self.log_requests = log_requests
        self._port = port
        self._loop: Loop | None = None
        self._threads: set[threading.Thread] = set()  # worker threads of handlers that wait for the network
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.errors_dropped = 0
        self._log: collections.deque[ReplayRequest] = collections.deque()
        self._logged_bytes = 0  # body bytes held by the log

    @property
    def requests(self) -> list[ReplayRequest]:
        """The request log, oldest first (a copy; see the module doc for what it keeps)."""
        with self._lock:
            return list(self._log)

    @property
    def connections(self) -> int:
        """Client connections open now (a test can wait for its client to have closed them all)."""
        loop = self._loop
        return len(loop.conns) if loop is not None else 0

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
            self._loop = Loop(self)
        except OSError as exc:
            raise ReplayError(f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from exc
        FullCollections.defer()  # see _GC_QUIET
        self._loop.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: end open responses (a reset), close connections, join the threads."""
        loop = self._loop
        if loop is None:
            raise ReplayError("server is not running")
        self._stopping.set()
        loop.stopping = True
        loop.wake()
        deadline = time.monotonic() + timeout
        loop.thread.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._loop = None
        FullCollections.resume()
        dump_lateness()

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
        # In slices of at most MAX_WAIT: Event.wait refuses a timeout past threading.TIMEOUT_MAX (and a
        # deadline at infinity is just waited for until the server stops).
        while (delay := deadline - time.monotonic()) > 0:
            if self._stopping.wait(min(delay, MAX_WAIT)):
                raise ServerStopped()
        if self._stopping.is_set():
            raise ServerStopped()

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            if len(self.errors) < _MAX_ERRORS:
                self.errors.append(exc)
            else:
                self.errors_dropped += 1

    def _log_request(self, request: ReplayRequest) -> None:
        size, limit = len(request.body), max(0, self.log_body_limit)
        if size > limit:  # the handler got it all; the log keeps its start and says how much is missing
            marker = b"[sse-toolkit: request body cut in the log, %d of %d bytes dropped]" % (
                size - limit,
                size,
            )
            request = dataclasses.replace(request, body=request.body[:limit] + marker)
        with self._lock:
            log = self._log
            log.append(request)
            self._logged_bytes += len(request.body)
            # A long-running `--serve` keeps only the recent ones: the oldest go one by one as new ones
            # come (a deque: no list shifted, and no batch of thousands freed at once, a pause mid-stream);
            # the newest always stays.
            while len(log) > 1 and (
                len(log) > self.log_max_requests or self._logged_bytes > self.log_total_limit
            ):
                self._logged_bytes -= len(log.popleft().body)
