"""Tests: a tiny scripted upstream for the recorder, on loopback, written on raw sockets.

Each request gets the next :class:`Script` (the last one repeats): a status line and headers, then body
pieces each sent after its delay, framed as HTTP/1.1 chunks (``framing="chunked"``), under a
``Content-Length`` (``"length"``) or until the connection closes (``"close"``), and an ending: ``complete``,
``eof`` (FIN before the body is over), ``reset`` (RST) or ``hang`` (silence until the server stops).
``Script.wait_for`` makes piece N wait for an event instead of a delay (to prove the proxy streams).
The requests received are kept in ``requests`` as (method, target, headers, body).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Script", "Upstream"]


@dataclass
class Script:
    pieces: list[tuple[float, bytes]] = field(default_factory=list)  # (delay before, bytes)
    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(
        default_factory=lambda: [("Content-Type", "text/event-stream"), ("Content-Disposition", "attachment")]
    )
    framing: str = "chunked"  # chunked | length | close
    end: str = "complete"  # complete | eof | reset | hang
    wait_for: dict[int, threading.Event] = field(default_factory=dict)  # piece index -> event to wait for
    waited: dict[int, bool] = field(default_factory=dict)  # piece index -> whether the event came in time

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.pieces)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        request_line = reader.readline().decode("latin-1").rstrip("\r\n")
        if not request_line:
            return
        method, target, _ = request_line.split(" ", 2)
        headers = []
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        body = reader.read(length) if length else b""
        owner = self.server.owner
        with owner.lock:
            owner.requests.append((method, target, headers, body))
            script = owner.scripts[min(len(owner.requests) - 1, len(owner.scripts) - 1)]
        self._respond(sock, script, method)

    def _respond(self, sock: socket.socket, script: Script, method: str) -> None:
        head = [f"HTTP/1.1 {script.status} {script.reason}", *(f"{k}: {v}" for k, v in script.headers)]
        if script.framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        elif script.framing == "length":
            head.append(f"Content-Length: {len(script.body)}")
        head.append("Connection: close")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for index, (delay, data) in enumerate(script.pieces):
            if index in script.wait_for:
                script.waited[index] = script.wait_for[index].wait(5.0)
            elif delay:
                time.sleep(delay)
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if script.framing == "chunked" else data)
        if script.end == "complete":
            if script.framing == "chunked":
                sock.sendall(b"0\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
        elif script.end == "reset":
            time.sleep(0.05)  # let the pieces leave before the RST throws away what is unsent
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif script.end == "hang":
            self.server.owner.stopping.wait(30)
        # "eof": just close (FIN) before the final chunk / before Content-Length is reached
        sock.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: Upstream) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class Upstream:
    """``with Upstream(Script(...), ...) as up:`` serves on ``up.url`` (port 0) until the block ends."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts) or [Script()]
        self.requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        with contextlib.suppress(OSError):
            self._server.server_close()
        self._thread.join(5)
