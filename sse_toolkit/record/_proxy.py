"""Record layer: the recording reverse proxy (loopback in, upstream out, every chunk passed on at once).

Strategy:
  * The client side is the server layer's :class:`LoopbackServer` (HTTP/1.1, chunked streaming, abrupt
    close); the proxy is its handler, run on a thread per request since it waits for the upstream. The
    upstream side is stdlib ``http.client``, one connection per exchange, read with ``read1`` (one
    ``recv`` at most): each piece goes to the client as one HTTP chunk the moment it arrives and is
    recorded with its offset in seconds since the request was sent upstream.
  * Forwarded: method, path (after the upstream URL's own path), the upstream URL's query followed by
    the request's, headers and body. ``Host`` is the upstream's host and port (never its user or
    password); a user and password in the upstream URL go as ``Authorization: Basic`` unless the client
    sends its own ``Authorization``. Hop-by-hop headers (RFC 9110 7.6.1, plus those named in
    ``Connection``) are dropped. A request ``http.client`` cannot put on the wire (a method that is not a
    token, a target or header value with characters outside printable ASCII or a control character) is
    answered 400 here, before any upstream connection is made.
  * The upstream URL as written anywhere (the fixture's ``source``, messages, error bodies) has no user,
    password or ``key=`` value: ``Redactor.url``; those values are credentials from the start.
  * Encoding: the proxy asks for ``Accept-Encoding: identity`` (Google's servers honour it), so the
    recording is the body as sent. If an upstream compresses anyway (gzip/deflate) the body is decoded on
    the fly and ``Content-Encoding`` dropped, for the client and the fixture alike; other encodings pass
    through untouched with their header (and stay out of redaction's reach).
  * Breaks: a reset, an EOF before the final chunk (or before ``Content-Length``) or no byte for
    ``timeout`` seconds ends the client's response the same way (no final chunk, the connection closed:
    RST for a reset, FIN for a timeout), and the fixture keeps every byte that came with ``end`` =
    ``reset``/``timeout``. A client that leaves mid-stream is recorded as ``reset`` too (with a warning).
  * Writing: each finished exchange is redacted and appended to the file (``FixtureWriter``, one write,
    fsync), its own lines checked for leaks: the cost of an exchange is its own size, not the file's.
    A credential seen for the first time (a key, a token, a cookie) may already sit in exchanges written
    before (unlabelled in a body, echoed): the file is then rewritten without it in one streaming pass;
    if even that cannot be written (a full disk), it is overwritten in place with ``*`` and the rewrite
    retried with the next exchange. A write that fails is reported (each one, through :meth:`check` /
    :meth:`take_errors`), the file stays as it was, and the exchange is kept in memory and written with
    the next one (up to ``MAX_PENDING`` bytes of them). Exchanges are appended as they finish; at
    :meth:`stop` the file is put in request order (one rewrite, only if concurrent exchanges finished out
    of order). A stop or Ctrl-C never writes a half exchange: exchanges still streaming are counted in
    :attr:`dropped`.
  * Not recorded: requests the upstream never answered (refused connection, timeout before the status
    line); the client gets a 502/504 JSON error naming the upstream.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..fixture._errors import FixtureError
from ..fixture._jsonl import FixtureWriter, dump_exchange, remove_leftovers
from ..fixture._load import loads_fixture
from ..fixture._model import Chunk, End, Exchange, Fixture, RecordedRequest
from ..fixture._redact import Redactor, SecretLeakError
from ..server._lifecycle import LoopbackServer, ServerLifecycle
from ..server._loop import AbruptClose, ReplayError, ReplayRequest, Reply

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_UPSTREAM", "HOP_BY_HOP", "MAX_PENDING", "RecordingProxy"]

DEFAULT_UPSTREAM = "https://generativelanguage.googleapis.com"
# Thinking models can stay silent for minutes before the first token; a shorter default would cut them.
DEFAULT_TIMEOUT = 300.0
# Body bytes of exchanges whose write failed that are kept to be written later; beyond, the oldest go.
MAX_PENDING = 64 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers the proxy sets itself; response headers whose framing the proxy (or replay) redoes.
_REQUEST_OWN = frozenset({"host", "content-length", "accept-encoding", "expect"})
_RESPONSE_FRAMING = frozenset({"content-length"})
_READ_SIZE = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})
# What http.client accepts on the wire (RFC 9110 tokens; a target of printable ASCII; no control
# character but a tab in a header value, which it must also be able to encode as Latin-1).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_NOT_IN_TARGET = re.compile(r"[^\x21-\x7e]")
_NOT_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


def _forwardable(headers: Iterable[tuple[str, str]], drop: frozenset[str]) -> list[tuple[str, str]]:
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | drop and k.lower() not in named]


def _unforwardable(request: ReplayRequest) -> str | None:
    """Why ``request`` cannot be forwarded as it is (None: it can)."""
    if not _TOKEN.match(request.method):
        return f"its method {request.method!r} is not an HTTP token"
    for part, what in ((request.path, "path"), (request.query, "query")):
        if bad := _NOT_IN_TARGET.search(part):
            return (
                f"its {what} has {bad.group()!r} at character {bad.start()}; only printable ASCII can be "
                "forwarded (percent-encode the rest)"
            )
    for name, value in request.headers:
        if not _TOKEN.match(name):
            return f"the header name {name!r} is not an HTTP token"
        if bad := _NOT_IN_VALUE.search(value):
            return f"the value of header {name!r} has {bad.group()!r} at character {bad.start()}"
    return None


def _json_error(status: int, status_name: str, message: str) -> Reply:
    body = json.dumps({"error": {"code": status, "message": message, "status": status_name}}).encode()
    return Reply(status, [("Content-Type", "application/json")], [(None, body)], stream=False)


@dataclass
class _Pending:
    """A finished exchange not yet in the file (as received: it is redacted when written)."""

    sequence: int
    exchange: Exchange
    reported: bool = False  # a failed write of it was reported already


class RecordingProxy(ServerLifecycle):
    """A loopback reverse proxy that records every exchange with ``upstream`` into the fixture ``out``.

    ``RecordingProxy(upstream, out, host="127.0.0.1", port=0, redact=(), timeout=300)``; lifecycle as the
    replay server: :meth:`start`/:meth:`stop`, a context manager, :attr:`url` once started. ``redact`` is a
    list of extra regular expressions (or a ready :class:`Redactor`). :attr:`fixture` reads back what the
    file holds; :attr:`exchange_count` says how many exchanges that is. :meth:`check` re-raises errors
    (a failed write, a leak found), one per call; :meth:`take_errors` hands over all of them. ``log`` gets
    one line per exchange recorded (and warnings).
    """

    def __init__(
        self,
        upstream: str = DEFAULT_UPSTREAM,
        out: str | os.PathLike[str] = "recording.jsonl",
        host: str = "127.0.0.1",
        port: int = 0,
        redact: Iterable[str] | Redactor = (),
        timeout: float = DEFAULT_TIMEOUT,
        log: Callable[[str], None] | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        self.redactor = redact if isinstance(redact, Redactor) else Redactor(redact)
        try:
            shown = self.redactor.url(upstream)
            upstream_port = parts.port
        except ValueError:
            raise ReplayError("the upstream URL's port is not a number") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReplayError(f"upstream {shown!r} is not an http:// or https:// URL")
        if bad := _NOT_IN_TARGET.search(parts.path + parts.query):
            raise ReplayError(
                f"upstream {shown!r}: {bad.group()!r} cannot be sent in a request target; percent-encode it"
            )
        self.upstream = shown.rstrip("/")  # no user, password or key: safe to show and to store
        self.out = os.fspath(out)
        directory = os.path.dirname(os.path.abspath(self.out))
        if not os.path.isdir(directory):
            raise ReplayError(f"cannot record into {self.out}: the directory {directory} does not exist")
        self.timeout = timeout
        self.errors: list[BaseException] = []
        self.dropped = 0  # exchanges still streaming when the proxy stopped (not recorded)
        self._scheme = parts.scheme
        self._hostname = parts.hostname
        self._port = upstream_port
        host_part = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self._host_header = host_part + (f":{upstream_port}" if upstream_port is not None else "")
        self._base_path = parts.path.rstrip("/")
        self._base_query = parts.query
        self._authorization: str | None = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self._log = log
        self._server = LoopbackServer(self._handle, host, port)
        self._sequence = itertools.count()
        self._lock = threading.Lock()  # guards _open
        self._open: dict[http.client.HTTPConnection, socket.socket] = {}
        self._write_lock = threading.RLock()  # one writer (and one redactor user) at a time
        self._writer = FixtureWriter(self.out, self.upstream, durable=True, log=self._note)
        self._pending: list[_Pending] = []
        self._scrubbed = len(self.redactor.credentials)  # credentials the file is known to be free of
        self._scrub_reported = self._scrubbed  # credentials whose failed removal was reported
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

    @property
    def exchange_count(self) -> int:
        """How many exchanges the file holds."""
        return self._writer.count

    @property
    def requests_received(self) -> int:
        """How many requests reached the proxy, recorded or not: more than :attr:`exchange_count` when the
        upstream failed or a stream was cut (read from the server's request log, which drops its oldest
        entries past its caps)."""
        return len(self._server.requests)

    @property
    def fixture(self) -> Fixture:
        """What the file holds now, read back through the proxy's descriptor (empty before any write)."""
        with self._write_lock:
            if not self._writer.created:
                return Fixture(source=self.upstream)
            return loads_fixture(self._writer.read(), self.out)

    def is_running(self) -> bool:
        return self._server.is_running()

    def start(self) -> None:
        """Listen (returns once the socket listens); nothing is written before the first exchange ends.
        Temporary files an earlier crash left beside ``out`` are removed first (and logged)."""
        self._stopping = False
        for note in remove_leftovers(self.out):
            self._say(f"sse-record: {note}")
        self._server.start()

    def stop(self) -> None:
        """Stop: exchanges still streaming are cut and not recorded (counted in :attr:`dropped`); exchanges
        whose write failed are tried once more; the file is put in request order and synced."""
        self._stopping = True
        with self._lock:
            upstreams = list(self._open.values())
        for sock in upstreams:  # unblock threads waiting on the upstream
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.stop()
        with self._write_lock:
            self._flush()
            if self._pending:
                lost = ", ".join(self._describe(item.exchange) for item in self._pending)
                self._error(
                    ReplayError(f"{len(self._pending)} exchanges could not be written to {self.out}: {lost}")
                )
                self._pending.clear()
            try:
                if self._writer.sort():
                    self._say(f"sse-record: put the exchanges of {self.out} in request order")
                self._writer.sync()
            except OSError as exc:
                self._error(
                    ReplayError(
                        f"cannot put {self.out} in request order: {exc.strerror or exc}; it keeps them "
                        "in the order they finished"
                    )
                )

    def check(self) -> None:
        """Re-raise the oldest error not raised yet (a failed write, a leak found, an error in a server
        thread); the others stay for the next call."""
        with self._lock:
            error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        self._server.check()

    def take_errors(self) -> list[BaseException]:
        """Every error not handed over yet, server threads' included, oldest first; each is given once."""
        with self._lock:
            errors, self.errors = self.errors, []
        while self._server.errors:
            errors.append(self._server.errors.pop(0))
        return errors

    def summary(self) -> str:
        """One line: how many exchanges the file holds, and how many were still streaming at the stop."""
        count = self.exchange_count
        text = f"{count} exchange{'' if count == 1 else 's'} in {self.out}"
        if not self._writer.created:
            text = f"nothing recorded, {self.out} not written"
        if self.dropped:
            text += f"; {self.dropped} still streaming when stopped, not recorded"
        return text

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} -> {self.upstream}>"

    # -- one exchange -------------------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._hostname, self._port, timeout=self.timeout)

    def _handle(self, request: ReplayRequest) -> Reply:
        sequence = next(self._sequence)
        problem = _unforwardable(request)
        if problem is not None:
            self._say(f"sse-record: warning: not forwarded, {problem}")
            return _json_error(400, "INVALID_ARGUMENT", f"sse-record: cannot forward this request: {problem}")
        query = "&".join(part for part in (self._base_query, request.query) if part)
        target = (self._base_path + request.path) + ("?" + query if query else "")
        headers = _forwardable(request.headers, _REQUEST_OWN)
        if self._authorization is not None and not any(k.lower() == "authorization" for k, _ in headers):
            headers.append(("Authorization", self._authorization))
        headers += [("Host", self._host_header), ("Accept-Encoding", "identity")]
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
            reason = (
                "no answer within the timeout" if timed_out else (getattr(exc, "strerror", None) or str(exc))
            )
            # The path only: the query may hold the key, and stderr often ends up in a log file.
            self._say(
                f"sse-record: warning: {request.method} {request.path}: upstream {self.upstream}: {reason}"
            )
            status = 504 if timed_out else 502
            name = "DEADLINE_EXCEEDED" if timed_out else "UNAVAILABLE"
            return _json_error(status, name, f"sse-record: upstream {self.upstream}: {reason}")
        except Exception as exc:  # anything else http.client refuses: never keep its socket
            self._forget(conn)
            self._say(f"sse-record: warning: {request.method} {request.path}: not forwarded: {exc}")
            return _json_error(502, "UNAVAILABLE", f"sse-record: cannot forward this request: {exc}")

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
        exchange = Exchange(
            recorded, response.status, response.reason, response_headers, [], End.COMPLETE, head_t
        )
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
            if self._stopping and end != End.COMPLETE:  # cut by the stop (or broken while stopping)
                with self._lock:
                    self.dropped += 1
            else:
                if end is None:  # the client left (GeneratorExit)
                    end = End.RESET
                    path = exchange.request.path if exchange.request else ""
                    self._say(
                        f"sse-record: warning: the client left {path} before the end; "
                        "recorded as a broken stream"
                    )
                exchange.end = end
                self._finish(sequence, exchange)
        if end != End.COMPLETE:
            raise AbruptClose(reset=end == End.RESET)

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._open.pop(conn, None)
        conn.close()

    # -- writing ------------------------------------------------------------------------------------------
    def _finish(self, sequence: int, exchange: Exchange) -> None:
        """Queue the exchange and write everything queued (see the module doc); errors go to check()."""
        with self._write_lock:
            self._pending.append(_Pending(sequence, exchange))
            self._flush()

    def _flush(self) -> None:
        for item in list(self._pending):
            where = f"{self.out}: exchange {self._describe(item.exchange)}"
            try:
                redacted = self.redactor.exchange(item.exchange)
                data = dump_exchange(redacted, self._writer.count + 1)
                self.redactor.check_exchange(data, redacted, where)
                self._writer.add_exchange(data, item.sequence)
            except OSError as exc:
                if not item.reported:
                    item.reported = True
                    self._error(
                        ReplayError(
                            f"cannot write {self.out}: {exc.strerror or exc}; "
                            f"{self._describe(item.exchange)} is kept in memory and written with the next "
                            "exchange"
                        )
                    )
                continue
            except (SecretLeakError, FixtureError) as exc:
                self._pending.remove(item)
                self._error(ReplayError(f"{exc}; that exchange is not recorded"))
                continue
            self._pending.remove(item)
            body = item.exchange.body
            self._say(
                f"sse-record: {self._describe(item.exchange)} -> {item.exchange.status}, "
                f"{len(item.exchange.chunks)} chunks, {len(body)} bytes, {item.exchange.end}; "
                f"wrote {self.out}" + (" (after an earlier failure)" if item.reported else "")
            )
        self._scrub()
        self._bound_pending()

    def _scrub(self) -> None:
        """A credential seen for the first time: rewrite the file without it (if it is there at all)."""
        known = len(self.redactor.credentials)
        if known == self._scrubbed or not self._writer.created:
            self._scrubbed = known
            return
        new = self.redactor.credentials[self._scrubbed :]

        def scrub(exchange: Exchange) -> Exchange:
            # Written before, it was redacted of every secret known then: only the new ones can be in it.
            return self.redactor.exchange(exchange) if self.redactor.mentions(exchange, new) else exchange

        try:
            changed = self._writer.rewrite(scrub)
            if changed:
                self.redactor.check_bytes(self._writer.read(), self.out)
        except OSError as exc:
            try:
                done = f"overwrote {self._writer.mask(lambda data: self.redactor.locate(data, new))} "
                done += "occurrences of it with '*' in place"
            except OSError as again:
                done = f"could not overwrite it in place either ({again.strerror or again})"
            if self._scrub_reported < known:  # once per credential, not again at every retry
                self._scrub_reported = known
                self._error(
                    ReplayError(
                        f"cannot rewrite {self.out} without a credential seen in an earlier exchange: "
                        f"{exc.strerror or exc}; {done}; the rewrite is tried again with each exchange"
                    )
                )
            return
        except SecretLeakError as exc:
            self._error(exc)
            return
        self._scrubbed = known
        if changed:
            self._say(
                "sse-record: a credential first seen now was in exchanges written before; "
                f"rewrote {self.out} without it"
            )

    def _bound_pending(self) -> None:
        total = sum(len(item.exchange.body) for item in self._pending)
        while self._pending and total > MAX_PENDING:
            item = self._pending.pop(0)
            total -= len(item.exchange.body)
            self._error(
                ReplayError(
                    f"{self._describe(item.exchange)} is not recorded: {self.out} could not be written "
                    f"and the exchanges waiting for it passed {MAX_PENDING} bytes"
                )
            )

    @staticmethod
    def _describe(exchange: Exchange) -> str:
        request = exchange.request
        return f"{request.method} {request.path}" if request is not None else "(no request)"

    def _error(self, error: BaseException) -> None:
        with self._lock:
            self.errors.append(error)

    def _note(self, message: str) -> None:
        self._say(f"sse-record: warning: {message}")

    def _say(self, message: str) -> None:
        if self._log is not None:
            self._log(message)


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None
