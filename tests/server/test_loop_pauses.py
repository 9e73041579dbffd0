"""What keeps the one loop from pausing in a process that has served for hours: while a server runs, the
garbage collector's automatic full collections are deferred (no allocation anywhere in the process starts
one), the thresholds come back when the last server stops, and garbage cycles left meanwhile are still
collected, by the loop, once it is quiet; the request log drops its oldest request one at a time at either
cap (never a batch of thousands at once). And a connection that stays watched while it is answered still
gets a request it pipelines, or a half-close it sends, in the middle of a paced answer right."""

from __future__ import annotations

import gc
import socket
import threading
import weakref
from collections.abc import Iterator

import httpx
import pytest

from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayRequest, Reply


def _answer(request: ReplayRequest) -> Reply:
    return Reply(200, [("Content-Type", "text/plain")], [(None, request.path.encode())])


_answer.cpu_only = True  # type: ignore[attr-defined]

needs_the_collector = pytest.mark.skipif(
    not gc.isenabled() or gc.get_threshold()[0] == 0, reason="the garbage collector is off in this process"
)


class _FullCollectionsHere:
    """Counts the full collections that start in the thread that made this (automatic ones run in the
    thread whose allocation tipped the count)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.count = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2 and threading.get_ident() == self.thread:
            self.count += 1

    def __enter__(self) -> _FullCollectionsHere:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _allocate_as_a_busy_process(objects: int) -> list[list[int]]:
    """Containers that stay alive (the oldest generation grows), made in batches: what makes full
    collections come due under the usual thresholds."""
    return [[n] for n in range(objects)]


@needs_the_collector
def test_full_collections_are_deferred_while_a_server_runs_and_the_thresholds_come_back_after() -> None:
    before = gc.get_threshold()
    first, second = LoopbackServer(_answer), LoopbackServer(_answer)
    with first:
        assert gc.get_threshold()[:2] == before[:2]  # young collections go on as before
        assert gc.get_threshold()[2] >= 1 << 20
        with second:
            assert gc.get_threshold()[2] >= 1 << 20
        assert gc.get_threshold()[2] >= 1 << 20  # the first still runs
    assert gc.get_threshold() == before


@needs_the_collector
def test_no_allocation_starts_a_full_collection_while_a_server_runs() -> None:
    with LoopbackServer(_answer) as server, _FullCollectionsHere() as here:
        assert httpx.get(server.url + "/x").content == b"/x"
        kept = _allocate_as_a_busy_process(600_000)
        assert here.count == 0
        del kept
    with _FullCollectionsHere() as here:  # the same allocations, no server: they do start one
        kept = _allocate_as_a_busy_process(600_000)
        assert here.count > 0
        del kept


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@needs_the_collector
def test_a_garbage_cycle_left_while_a_server_runs_is_collected_by_its_loop_once_it_is_quiet() -> None:
    collected_on: list[str] = []
    done = threading.Event()

    def note() -> None:
        collected_on.append(threading.current_thread().name)
        done.set()

    with LoopbackServer(_answer) as server:
        cycle = _Cycle()
        weakref.finalize(cycle, note)
        gc.collect(
            1
        )  # it survives a young collection: now in the oldest generation, where only a full one looks
        del cycle
        for _ in range(100):  # young collections: as many as make a full one due
            gc.collect(1)
        assert not done.is_set()
        assert httpx.get(server.url + "/x").content == b"/x"  # a turn of the loop, then nothing to do
        assert done.wait(10)
    assert collected_on == ["sse-replay"]


# -- the request log ---------------------------------------------------------------------------------------


def test_at_its_count_cap_the_request_log_drops_its_oldest_request_as_each_new_one_comes() -> None:
    server = LoopbackServer(_answer)
    server.log_max_requests = 5
    with server, httpx.Client() as client:
        for n in range(12):
            assert client.get(f"{server.url}/r{n}").content == f"/r{n}".encode()
            assert [r.path for r in server.requests] == [f"/r{k}" for k in range(max(0, n - 4), n + 1)]


def test_at_its_byte_cap_the_request_log_drops_only_as_many_old_requests_as_it_must() -> None:
    server = LoopbackServer(_answer)
    server.log_total_limit = 1000
    with server, httpx.Client() as client:
        for n in range(8):
            client.post(f"{server.url}/r{n}", content=b"x" * 300)
            assert [r.path for r in server.requests] == [f"/r{k}" for k in range(max(0, n - 2), n + 1)]
        client.post(f"{server.url}/huge", content=b"y" * 1500)  # over the total alone: kept, alone
        assert [r.path for r in server.requests] == ["/huge"]


def test_the_request_log_is_read_as_a_copy() -> None:
    with LoopbackServer(_answer) as server:
        httpx.get(server.url + "/a")
        seen = server.requests
        seen.clear()
        httpx.get(server.url + "/b")
        assert [r.path for r in server.requests] == ["/a", "/b"]


# -- input while answering -----------------------------------------------------------------------------------


def _paced(request: ReplayRequest) -> Reply:
    """Two pieces, the second 0.2 s after the request: the connection waits for its timer in between."""
    return Reply(200, [("Content-Type", "text/plain")], [(0.0, b"first "), (0.2, request.path.encode())])


_paced.cpu_only = True  # type: ignore[attr-defined]


def _body_after_the_status_line(lines: Iterator[bytes]) -> bytes:
    """The rest of one chunked answer off a raw socket's lines, once its status line was read: its body."""
    while next(lines) != b"\r\n":
        pass
    body = b""
    while size := int(next(lines), 16):
        body += next(lines)[:size]
    assert next(lines) == b"\r\n"
    return body


def test_a_request_pipelined_in_the_middle_of_a_paced_answer_is_answered_after_it() -> None:
    with LoopbackServer(_paced) as server, socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        lines = iter(sock.makefile("rb"))
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        assert next(lines).startswith(b"HTTP/1.1 200 ")  # the answer has begun; its second piece waits
        sock.sendall(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _body_after_the_status_line(lines) == b"first /one"
        assert next(lines).startswith(b"HTTP/1.1 200 ")
        assert _body_after_the_status_line(lines) == b"first /two"
        server.check()


def test_a_half_close_in_the_middle_of_a_paced_answer_gets_the_whole_answer_then_the_close() -> None:
    with LoopbackServer(_paced) as server, socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        reader = sock.makefile("rb")
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.readline().startswith(b"HTTP/1.1 200 ")
        sock.shutdown(socket.SHUT_WR)
        rest = reader.read()  # to the server's close
        assert rest.endswith(b"6\r\nfirst \r\n4\r\n/one\r\n0\r\n\r\n")
        server.check()
