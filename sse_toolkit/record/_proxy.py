"""Record layer: the recording reverse proxy (loopback in, upstream out, every chunk passed on at once).

Strategy:
  * The client side is the replay layer's :class:`LoopbackServer` (HTTP/1.1, chunked streaming, abrupt
    close); the proxy is its handler, run on a thread per request since it waits for the upstream. The upstream side is stdlib ``http.client``, one connection
    per exchange, read with ``read1`` (one ``recv`` at most): each piece goes to the client as one HTTP
    chunk the moment it arrives and is recorded with its offset in seconds since the request was sent
    upstream. The body is never buffered whole.
  * Forwarded: method, path (after the upstream URL's own path), raw query, headers and body. ``Host`` is
    the upstream's; hop-by-hop headers (RFC 9110 7.6.1, plus those named in ``Connection``) are dropped.
  * Encoding: the proxy asks for ``Accept-Encoding: identity`` (Google's servers honour it), so the
    recording is the body as sent. If an upstream compresses anyway (gzip/deflate) the body is decoded on
    the fly and ``Content-Encoding`` dropped, for the client and the fixture alike; other encodings pass
    through untouched with their header.
  * Breaks: a reset, an EOF before the final chunk (or before ``Content-Length``) or no byte for
    ``timeout`` seconds ends the client's response the same way (no final chunk, the connection closed:
    RST for a reset, FIN for a timeout), and the fixture keeps every byte that came with ``end`` =
    ``reset``/``timeout``. A client that leaves mid-stream is recorded as ``reset`` too (with a warning).
  * Writing: each finished exchange is redacted (``Redactor``), put in request order, and the whole
    fixture is rewritten atomically (``save_fixture``), checked for leaks before and after. A stop or
    Ctrl-C never writes a half exchange; the file keeps the complete ones.
  * Not recorded: requests the upstream never answered (refused connection, timeout before the status
    line); the client gets a 502/504 JSON error naming the upstream.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from ..fixture._model import End, Chunk, Exchange, Fixture, RecordedRequest
from ..fixture._redact import Redactor
from ..server._loop import AbruptClose, LoopbackServer, ReplayError, ReplayRequest, Reply, ServerLifecycle

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_UPSTREAM", "HOP_BY_HOP", "RecordingProxy"]

DEFAULT_UPSTREAM = "https://generativelanguage.googleapis.com"
# Thinking models can stay silent for minutes before the first token; a shorter default would cut them.
DEFAULT_TIMEOUT = 300.0
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "transfer-encoding", "upgrade"}
)
# Request headers the proxy sets itself; response headers whose framing the proxy (or replay) redoes.
_REQUEST_OWN = frozenset({"host", "content-length", "accept-encoding", "expect"})
_RESPONSE_FRAMING = frozenset({"content-length"})
_READ_SIZE = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


def _forwardable(headers: Iterable[tuple[str, str]], drop: frozenset[str]) -> list[tuple[str, str]]:
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | drop and k.lower() not in named]


class RecordingProxy(ServerLifecycle):
    """A loopback reverse proxy that records every exchange with ``upstream`` into the fixture ``out``.

    ``RecordingProxy(upstream, out, host="127.0.0.1", port=0, redact=(), timeout=300)``; lifecycle as the
    replay server: :meth:`start`/:meth:`stop`, a context manager, :attr:`url` once started. ``redact`` is a
    list of extra regular expressions (or a ready :class:`Redactor`). :attr:`fixture` holds what was written
    so far; :meth:`check` re-raises errors from the server threads (e.g. a failed write). ``log`` gets one
    line per exchange recorded (and warnings).
    """

    def __init__(
        self,
        upstream: str = DEFAULT_UPSTREAM,
        out: str | os.PathLike[str] = "recording.sse",
        host: str = "127.0.0.1",
        port: int = 0,
        redact: Iterable[str] | Redactor = (),
        timeout: float = DEFAULT_TIMEOUT,
        log: Callable[[str], None] | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReplayError(f"upstream {upstream!r} is not an http:// or https:// URL")
        self.upstream = upstream.rstrip("/")
        self.out = os.fspath(out)
        directory = os.path.dirname(os.path.abspath(self.out))
        if not os.path.isdir(directory):
            raise ReplayError(f"cannot record into {self.out}: the directory {directory} does not exist")
        self.timeout = timeout
        self.redactor = redact if isinstance(redact, Redactor) else Redactor(redact)
        self.fixture = Fixture(source=self.upstream)
        self.errors: list[BaseException] = []
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._hostname = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._log = log
        self._server = LoopbackServer(self._handle, host, port)
        self._sequence = itertools.count()
        self._done: list[tuple[int, Exchange]] = []
        self._lock = threading.Lock()
        self._open: dict[http.client.HTTPConnection, socket.socket] = {}
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The address the proxy listens on."""
        return self._server.host

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. ``http://127.0.0.1:41234``: give it to the client as its base URL."""
        return self._server.url

    def is_running(self) -> bool:
        return self._server.is_running()

    def start(self) -> None:
        """Listen (returns once the socket listens); nothing is written before the first exchange ends."""
        self._stopping = False
        self._server.start()

    def stop(self) -> None:
        """Stop: exchanges still streaming are cut and not recorded; the file keeps the complete ones."""
        self._stopping = True
        with self._lock:
            upstreams = list(self._open.values())
        for sock in upstreams:  # unblock threads waiting on the upstream
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.stop()

    def check(self) -> None:
        """Re-raise the first error of a server thread (a failed write, a leak found after writing)."""
        if self.errors:
            first, self.errors = self.errors[0], []
            raise first
        self._server.check()

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} -> {self.upstream}>"

    # -- one exchange -------------------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._hostname, self._port, timeout=self.timeout)

    def _handle(self, request: ReplayRequest) -> Reply:
        sequence = next(self._sequence)
        target = self._base_path + request.path + ("?" + request.query if request.query else "")
        headers = _forwardable(request.headers, _REQUEST_OWN)
        headers += [("Host", self._netloc), ("Accept-Encoding", "identity")]
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(request.body))))
        conn = self._connect()
        try:
            conn.connect()
            with self._lock:
                # The socket itself: once the response owns the connection, ``conn.sock`` is None.
                self._open[conn] = conn.sock
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(request.body or None)
            sent = time.monotonic()
            response = conn.getresponse()
            head_t = time.monotonic() - sent
        except (OSError, http.client.HTTPException) as exc:
            self._forget(conn)
            timed_out = isinstance(exc, TimeoutError)
            reason = "no answer within the timeout" if timed_out else (getattr(exc, "strerror", None) or str(exc))
            # The path only: the query may hold the key, and stderr often ends up in a log file.
            self._say(f"sse-record: warning: {request.method} {request.path}: upstream {self.upstream}: {reason}")
            body = json.dumps(
                {"error": {"code": 504 if timed_out else 502, "message": f"sse-record: upstream {self.upstream}: {reason}"}}
            ).encode()
            return Reply(504 if timed_out else 502, [("Content-Type", "application/json")], [(None, body)], stream=False)

        recorded = RecordedRequest(
            request.method,
            request.path,
            request.query,
            _forwardable(request.headers, _REQUEST_OWN),
            request.body,
        )
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        decoder = _decoder(encoding)
        drop = _RESPONSE_FRAMING | ({"content-encoding"} if decoder else frozenset())
        response_headers = _forwardable(response.getheaders(), drop)
        exchange = Exchange(recorded, response.status, response.reason, response_headers, [], End.COMPLETE, head_t)
        if request.method == "HEAD" or response.status in _NO_BODY_STATUS or 100 <= response.status < 200:
            self._forget(conn)
            self._finish(sequence, exchange)
            return Reply(response.status, response_headers, (), stream=False, reason=response.reason)
        return Reply(
            response.status,
            response_headers,
            self._stream(sequence, conn, response, sent, decoder, exchange),
            reason=response.reason,
        )

    def _stream(
        self,
        sequence: int,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        sent: float,
        decoder: zlib._Decompress | None,
        exchange: Exchange,
    ) -> Iterator[tuple[float | None, bytes]]:
        """Yield upstream pieces as they come (``t=None``: send now); record them; mirror a break."""
        end = None
        try:
            while True:
                try:
                    data = response.read1(_READ_SIZE)
                except TimeoutError:
                    end = End.TIMEOUT
                    break
                except (OSError, http.client.HTTPException):
                    end = End.RESET  # a reset, or EOF inside the chunked framing
                    break
                t = time.monotonic() - sent
                if not data:
                    # EOF: clean unless Content-Length promised more.
                    end = End.RESET if response.length else End.COMPLETE
                    if decoder is not None:
                        data = decoder.flush()
                        if data:
                            exchange.chunks.append(Chunk(data, t))
                            yield None, data
                    break
                if decoder is not None:
                    data = decoder.decompress(data)
                    if not data:
                        continue
                exchange.chunks.append(Chunk(data, t))
                yield None, data
        finally:
            response.close()
            self._forget(conn)
            if end is None:  # the client left (GeneratorExit) or the proxy is stopping
                end = End.RESET
                if not self._stopping:
                    self._say(f"sse-record: warning: the client left {exchange.request.path if exchange.request else ''} "
                              "before the end; recorded as a broken stream")
            exchange.end = end
            if not self._stopping:
                self._finish(sequence, exchange)
        if end != End.COMPLETE:
            raise AbruptClose(reset=end == End.RESET)

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._open.pop(conn, None)
        conn.close()

    def _finish(self, sequence: int, exchange: Exchange) -> None:
        """Redact, insert in request order, rewrite the file atomically; keep errors for :meth:`check`."""
        try:
            with self._lock:
                self._done.append((sequence, self.redactor.exchange(exchange)))
                self._done.sort(key=lambda item: item[0])
                fixture = Fixture([ex for _, ex in self._done], source=self.upstream)
                self.redactor.save_checked(self.out, fixture)
                self.fixture = fixture
            size = len(exchange.body)
            self._say(
                f"sse-record: {exchange.request.method if exchange.request else ''} "
                f"{exchange.request.path if exchange.request else ''} -> {exchange.status}, "
                f"{len(exchange.chunks)} chunks, {size} bytes, {exchange.end}; wrote {self.out}"
            )
        except OSError as exc:  # disk full, permissions: report through check(), keep serving
            self.errors.append(ReplayError(f"cannot write {self.out}: {exc.strerror or exc}"))
        except Exception as exc:  # noqa: BLE001 - a server thread must not die silently; check() re-raises
            self.errors.append(exc)

    def _say(self, message: str) -> None:
        if self._log is not None:
            self._log(message)


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None
