"""The loop's wait, both ways: epoll (Linux) and the selectors fallback (every other platform), through a
real server and real clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from sse_toolkit.server import _loop
from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayRequest, Reply

BIG = 4 * 1024 * 1024  # more than a loopback socket's send buffer: the server waits until it is writable


class _Handler:
    cpu_only = True

    def __call__(self, request: ReplayRequest) -> Reply:
        if request.path == "/big":
            return Reply(200, [("Content-Type", "application/octet-stream")], [(None, b"x" * BIG)])
        if request.path == "/paced":
            return Reply(200, [], [(0.0, b"data: a\n\n"), (0.05, b"data: b\n\n")])
        return Reply(200, [("Content-Type", "text/plain")], [(None, request.path.encode())], stream=False)


@pytest.fixture(params=["epoll", "selectors"])
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    if request.param == "epoll" and not _loop._EPOLL:
        pytest.skip("no epoll on this platform")
    monkeypatch.setattr(_loop, "_EPOLL", request.param == "epoll")
    with LoopbackServer(_Handler()) as started:
        assert isinstance(started._loop.poller._epoll, type(None)) is (request.param == "selectors")  # type: ignore[union-attr]
        yield started
    started.check()


def test_keep_alive_requests_paced_streams_and_concurrent_clients_are_served(server: LoopbackServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(20):
            assert client.get(f"/r{n}").text == f"/r{n}"
        assert client.get("/paced").text == "data: a\n\ndata: b\n\n"
    answers: list[str] = []

    def one(n: int) -> None:
        answers.append(httpx.get(f"{server.url}/c{n}", timeout=10).text)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == sorted(f"/c{n}" for n in range(30))


def test_an_answer_bigger_than_the_send_buffer_waits_for_a_slow_reader(server: LoopbackServer) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.settimeout(10)
    with sock:
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        got = bytearray()
        while not got.endswith(b"\r\n0\r\n\r\n"):
            data = sock.recv(4096)
            assert data, "the server closed before the end of the answer"
            got += data
    assert got.count(b"x") == BIG


def test_a_client_that_leaves_mid_answer_ends_only_its_connection(server: LoopbackServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # a reset
    deadline = time.monotonic() + 10
    while server.connections:
        assert time.monotonic() < deadline, "the server did not close the connection its client reset"
        time.sleep(0.01)
    assert httpx.get(f"{server.url}/after", timeout=10).text == "/after"
    server.errors.clear()  # a reset client may be reported; the point is that the next one is served


def test_pipelined_requests_in_one_write_are_all_answered_in_order(server: LoopbackServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(5)))
        got = b""
        while got.count(b"HTTP/1.1 200") < 5 or not got.endswith(b"/p4"):
            data = sock.recv(65536)
            assert data
            got += data
    assert [got.index(b"/p%d" % n) for n in range(5)] == sorted(got.index(b"/p%d" % n) for n in range(5))
