"""One request never stops the loop: a failure injected into each stage of answering one request (reading
it, the handler, building the reply's head, iterating its body, writing) ends that connection, with a 400
or 500 when nothing was sent yet, and the next client is served; a piece due in a billion seconds, at
infinity or at NaN is a timer like another (epoll refused more than about 24.8 days and the loop died);
the whole-request deadline reclaims a body trickled byte by byte; a client over the connection cap reads
its 503 (no reset eats it), and one that waits for a request yields its place to a new client; the errors
kept for ``check()`` and the request log are bounded."""

from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayError, ReplayRequest, Reply

PATHS = {"loop": True, "thread": False}  # the handler's cpu_only: called by the loop, or on a worker thread


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.01)


def _connect(server: LoopbackServer, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while piece := sock.recv(65536):
            got += piece
    return got


def _exchange(server: LoopbackServer, request: bytes) -> bytes:
    with _connect(server) as sock:
        sock.sendall(request)
        return _read_all(sock)


def _get(path: str) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode()


def _served(server: LoopbackServer) -> bool:
    """A fresh client gets a whole answer (the loop is alive and answering)."""
    return httpx.get(server.url + "/fine", timeout=5).content == b"fine"


# -- a failure in each stage of one request ----------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:  # an f-string calls it (through format(); compiled code calls str() directly)
        raise RuntimeError("injected head failure")


def _stages(request: ReplayRequest) -> Reply:
    if request.path == "/handler":
        raise RuntimeError("injected handler failure")
    if request.path == "/head":
        return Reply(200, [("X-Bad", _Unprintable())], [(None, b"data: x\n\n")])  # type: ignore[list-item]
    if request.path == "/body-first":
        return Reply(200, [], _failing_body(pieces_before=0))
    if request.path == "/body-later":
        return Reply(200, [], _failing_body(pieces_before=1))
    if request.path == "/write":
        return Reply(200, [], [(None, b"EXPLODE-WRITE")])
    return Reply(200, [], [(None, b"fine")])


def _failing_body(pieces_before: int) -> Iterator[tuple[float | None, bytes]]:
    for _ in range(pieces_before):
        yield None, b"data: before\n\n"
    raise RuntimeError("injected body failure")


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receiving a request whose bytes hold EXPLODE-READ (with recv, recv_into or recvmsg_into), and writing
    bytes that hold EXPLODE-WRITE (with send, sendall or a writev), raise. (The socket's methods, not the
    reader's: the loop and the reader may be compiled, and a compiled class cannot be patched.)"""
    recv, recv_into, recvmsg_into = socket.socket.recv, socket.socket.recv_into, socket.socket.recvmsg_into
    send, sendall, sendmsg = socket.socket.send, socket.socket.sendall, socket.socket.sendmsg

    def _check_read(data: bytes) -> None:
        if b"EXPLODE-READ" in data:
            raise RuntimeError("injected read failure")

    def exploding_recv(self: socket.socket, *args: Any) -> bytes:
        data = recv(self, *args)
        _check_read(data)
        return data

    def exploding_recv_into(self: socket.socket, buffer: Any, *args: Any) -> int:
        got = recv_into(self, buffer, *args)
        _check_read(bytes(memoryview(buffer)[:got]))
        return got

    def exploding_recvmsg_into(self: socket.socket, buffers: Any, *args: Any) -> Any:
        got = recvmsg_into(self, buffers, *args)
        _check_read(b"".join(bytes(b) for b in buffers)[: got[0]])
        return got

    def exploding_send(self: socket.socket, data: Any, *args: Any) -> int:
        if b"EXPLODE-WRITE" in bytes(data):
            raise RuntimeError("injected write failure")
        return send(self, data, *args)

    def exploding_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
        buffers = [bytes(b) for b in buffers]
        if any(b"EXPLODE-WRITE" in b for b in buffers):
            raise RuntimeError("injected write failure")
        return sendmsg(self, buffers, *args)

    def exploding_sendall(self: socket.socket, data: Any, *args: Any) -> None:
        if b"EXPLODE-WRITE" in bytes(data):
            raise RuntimeError("injected write failure")
        sendall(self, data, *args)

    monkeypatch.setattr(socket.socket, "recv", exploding_recv)
    monkeypatch.setattr(socket.socket, "recv_into", exploding_recv_into)
    monkeypatch.setattr(socket.socket, "recvmsg_into", exploding_recvmsg_into)
    monkeypatch.setattr(socket.socket, "send", exploding_send)
    monkeypatch.setattr(socket.socket, "sendall", exploding_sendall)
    monkeypatch.setattr(socket.socket, "sendmsg", exploding_sendmsg)


# (stage, request path, what the client gets on the loop path, on the thread path): a status when nothing
# was sent before the failure; "cut" when the head (and any piece) went out and the connection was closed
# without the final chunk.
STAGES = [
    ("read", "/EXPLODE-READ", 400, 400),
    ("handler", "/handler", 500, 500),
    ("head", "/head", 500, 500),
    ("body-first", "/body-first", 500, "cut"),  # a worker thread sends the head before the first piece
    ("body-later", "/body-later", "cut", "cut"),
    ("write", "/write", 500, "cut"),  # the loop writes head and piece at once; a thread, the head first
]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("stage, target, on_loop, on_thread", STAGES, ids=[s[0] for s in STAGES])
@pytest.mark.usefixtures("inject")
def test_a_failure_in_any_stage_ends_that_connection_and_the_next_client_is_served(
    path: str, stage: str, target: str, on_loop: int | str, on_thread: int | str
) -> None:
    _stages.cpu_only = PATHS[path]  # type: ignore[attr-defined]
    expected = on_loop if path == "loop" else on_thread
    with LoopbackServer(_stages) as server:
        got = _exchange(server, _get(target))
        if expected == "cut":
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ") and b"chunked" in head, got
            assert not body.endswith(b"0\r\n\r\n"), got  # no final chunk: the client sees a broken stream
        else:
            assert got.startswith(f"HTTP/1.1 {expected} ".encode()), got
            assert b"injected" in got and b"Connection: close" in got, got
        with pytest.raises(ReplayError, match=f"injected {stage.split('-')[0]} failure"):
            server.check()
        assert _served(server)
        server.check()  # nothing else went wrong


def test_errors_kept_for_check_are_bounded_and_the_rest_counted() -> None:
    def broken(request: ReplayRequest) -> Reply:
        raise RuntimeError(f"broken {request.path}")

    broken.cpu_only = True  # type: ignore[attr-defined]
    with LoopbackServer(broken) as server:
        for n in range(1003):  # a fault that repeats on every request must not grow memory for ever
            assert _exchange(server, _get(f"/{n}")).startswith(b"HTTP/1.1 500 ")
        assert len(server.errors) == 1000 and server.errors_dropped == 3
        with pytest.raises(ReplayError, match="broken /0"):
            server.check()


# -- delays too long for any selector ----------------------------------------------------------------------


def _late(request: ReplayRequest) -> Reply:
    if request.path == "/fine":
        return Reply(200, [], [(None, b"fine")])
    when = float(request.params["t"])
    if request.params.get("where") == "head":
        return Reply(200, [], [(None, b"data: a\n\n")], head_t=when)
    return Reply(200, [], [(None, b"data: a\n\n"), (when, b"data: late\n\n")])


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(
    "when, where",
    [
        (1e9, "piece"),
        (math.inf, "piece"),
        (3e6, "piece"),
        (1e300, "piece"),
        (1e9, "head"),
        (math.inf, "head"),
    ],
)
def test_a_piece_due_beyond_any_selector_timeout_leaves_the_loop_serving(
    path: str, when: float, where: str
) -> None:
    _late.cpu_only = PATHS[path]  # type: ignore[attr-defined]
    server = LoopbackServer(_late)
    server.header_timeout = 0.05  # the head deadline's stale timer leaves the heap at once
    with server, _connect(server) as waiting:
        waiting.sendall(
            b"GET /?t=%s&where=%s HTTP/1.1\r\nHost: x\r\n\r\n"
            % (repr(when).replace("+", "%2B").encode(), where.encode())
        )
        if where == "piece":
            assert waiting.recv(16).startswith(b"HTTP/1.1 200")  # the first piece came; the next never will
        if PATHS[path]:  # the loop: wait until the far timer is the next one it waits for
            loop = server._loop
            assert loop is not None
            wait_for(lambda: loop.timers and loop.timers[0][0] > time.monotonic() + 1e5)
        assert _served(server) and _served(server)
        assert server.errors == []
        assert server._loop is not None and server._loop.thread.is_alive()


@pytest.mark.parametrize("path", list(PATHS))
def test_a_piece_due_at_nan_goes_out_at_once(path: str) -> None:
    _late.cpu_only = PATHS[path]  # type: ignore[attr-defined]
    with LoopbackServer(_late) as server:
        response = httpx.get(server.url + "/?t=nan", timeout=5)
        assert response.content == b"data: a\n\ndata: late\n\n"
        assert _served(server)
        server.check()


# -- the whole-request deadline ----------------------------------------------------------------------------


def _echo_length(request: ReplayRequest) -> Reply:
    return Reply(200, [], [(None, b"fine" if request.path == "/fine" else b"%d" % len(request.body))])


_echo_length.cpu_only = True  # type: ignore[attr-defined]


def _trickle_until_answered(sock: socket.socket, byte_count: int, every: float) -> tuple[int, bytes]:
    """Send one body byte every ``every`` s until the server answers (or closes): (bytes sent, answer)."""
    sock.settimeout(every)
    for sent in range(byte_count):
        try:
            sock.sendall(b"x")
        except OSError:
            return sent, b""
        try:
            first = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return sent + 1, b""
        sock.settimeout(5)
        return sent + 1, first + _read_all(sock)
    return byte_count, b""


def test_a_body_trickled_byte_by_byte_is_cut_at_the_request_deadline_not_kept_alive_by_each_byte() -> None:
    server = LoopbackServer(_echo_length)
    server.request_timeout = 0.5
    with server, _connect(server) as sock:
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        sent, answer = _trickle_until_answered(sock, 400, every=0.05)  # 400 bytes take 20 s at least
        assert sent < 400, "the trickled body was never cut: each byte restarted the clock"
        assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive in time" in answer, answer
        assert _served(server)
        server.check()


def test_a_normal_client_is_served_while_many_connections_trickle_bodies() -> None:
    server = LoopbackServer(_echo_length)
    with server:
        trickling = []
        try:
            for _ in range(200):
                sock = _connect(server)
                sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
                trickling.append(sock)
            for _ in range(20):
                assert _served(server)
            wait_for(lambda: server._loop is not None and len(server._loop.conns) >= 200)
        finally:
            for sock in trickling:
                sock.close()
        server.check()


def test_at_the_cap_a_connection_still_waiting_for_its_request_yields_its_place_to_a_new_client() -> None:
    server = LoopbackServer(_echo_length)
    server.max_connections = 20
    with server:
        trickling = []
        try:
            for _ in range(40):  # twice the cap: each one over it takes the place of the oldest
                sock = _connect(server)
                sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
                trickling.append(sock)
            for _ in range(10):
                assert _served(server)
            # The ones that yielded were told why (a 503) and closed; the newest still wait.
            yielded = trickling[0]
            yielded.settimeout(5)
            assert _read_all(yielded).startswith(b"HTTP/1.1 503 "), "the oldest did not yield"
            assert server._loop is not None and len(server._loop.conns) - server._loop.overflow <= 20
        finally:
            for sock in trickling:
                sock.close()
        server.check()


# -- over the cap: a 503 the client reads ------------------------------------------------------------------


def _held(request: ReplayRequest) -> Reply:
    return Reply(200, [], [(None, b"data: a\n\n"), (60.0, b"data: b\n\n")])


_held.cpu_only = True  # type: ignore[attr-defined]


# A body beyond what the socket buffers hold: the server must read (and drop) it, or its close resets the
# connection while the client still sends, and the client never gets to read the 503.
@pytest.mark.parametrize(
    "body", [0, 256 * 1024, 4 * 1024 * 1024], ids=["no body", "a body", "a body beyond the socket buffers"]
)
def test_a_client_over_the_cap_reads_its_503_every_time(body: int) -> None:
    server = LoopbackServer(_held)
    server.max_connections = 3
    with server:
        held = []
        try:
            for _ in range(3):  # every place is taken by a response in progress: nobody can yield
                sock = _connect(server)
                sock.sendall(_get("/held"))
                assert sock.recv(16).startswith(b"HTTP/1.1 200")
                held.append(sock)
            request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body + b"x" * body
            for _ in range(30):
                answer = _exchange(server, request)  # a reset fails this: the request's send or the read
                assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer, answer
                assert answer.endswith(b"over the connection limit, try again\n"), answer
        finally:
            for sock in held:
                sock.close()
        server.check()


# -- the request log ---------------------------------------------------------------------------------------


def test_the_request_log_cuts_big_bodies_with_a_marker_and_stays_under_its_total() -> None:
    server = LoopbackServer(_echo_length)
    server.log_body_limit = 100
    server.log_total_limit = 2000
    with server, httpx.Client() as client:
        small = client.post(server.url + "/small", content=b"s" * 50)
        assert small.content == b"50"
        for n in range(40):
            assert client.post(server.url + f"/big{n}", content=b"b" * 5000).content == b"5000"  # all of it
    assert server.requests[-1].path == "/big39"
    assert (
        server.requests[-1].body
        == b"b" * 100 + b"[sse-toolkit: request body cut in the log, 4900 of 5000 bytes dropped]"
    )
    assert sum(len(request.body) for request in server.requests) <= 2000
    assert len(server.requests) < 41  # the oldest went


def test_a_server_can_keep_no_request_log() -> None:
    with LoopbackServer(_echo_length, log_requests=False) as server:
        assert httpx.post(server.url + "/x", content=b"abc").content == b"3"
    assert server.requests == []
