"""The replay server under load, with real clients on real sockets: 200 concurrent streams all get the
recorded bytes exactly; 100 clients that vanish mid-stream leave no thread, socket or file descriptor
behind (counted in /proc/self/fd and threading) and the server keeps serving; events never leave before
their recorded time. Figures (500 clients, timing p50/p99) are printed by bench/bench_server.py, which a
smoke test runs with small numbers; no figure is asserted."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import pathlib
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

import httpx
import pytest

from sse_toolkit import ReplayServer
from sse_toolkit.fixture._model import Chunk, Exchange, Fixture

GEMINI = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "bench_server.py"


def _event(n: int) -> bytes:
    text = f"part {n} " + "lorem ipsum " * (n % 7)
    return (
        b'data: {"candidates": [{"content": {"parts": [{"text": "%s"}], "role": "model"}}]}\r\n\r\n'
        % text.encode()
    )


def paced_fixture(events: int, step: float) -> Fixture:
    return Fixture(
        [
            Exchange(
                headers=[("Content-Type", "text/event-stream")],
                chunks=[Chunk(_event(n), round(n * step, 6)) for n in range(events)],
            )
        ]
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle(baseline_fds: int, baseline_threads: int, timeout: float = 5.0) -> tuple[int, int]:
    """Poll until fd and thread counts are back at their baseline (or the timeout); return the last counts."""
    deadline = time.monotonic() + timeout
    while True:
        fds, threads = open_fds(), threading.active_count()
        if (fds <= baseline_fds and threads <= baseline_threads) or time.monotonic() > deadline:
            return fds, threads
        time.sleep(0.05)


def test_200_concurrent_streams_all_get_the_recorded_bytes_exactly() -> None:
    fixture = paced_fixture(20, 0.01)  # 20 events over 0.2 s: the streams overlap in time
    expected = fixture.exchanges[0].body
    clients = 200
    bodies: list[bytes | None] = [None] * clients
    errors: list[BaseException] = []
    with ReplayServer(fixture) as server:
        gate = threading.Barrier(clients)

        def client(index: int) -> None:
            try:
                gate.wait(timeout=30)
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                conn.request("POST", GEMINI, body=b"{}", headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                assert response.status == 200
                bodies[index] = response.read()  # http.client undoes the chunked framing
                conn.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        server.check()
        assert len(server.requests) == clients
    assert not errors, errors[:3]
    assert all(body == expected for body in bodies), sum(body != expected for body in bodies)


def test_the_listen_backlog_is_set_for_hundreds_of_simultaneous_connects() -> None:
    with ReplayServer(paced_fixture(1, 0)) as server:
        assert server.backlog >= 512
        # 300 connects before the server accepts any: none refused, none left waiting for a SYN retry.
        socks = []
        try:
            for _ in range(300):
                sock = socket.socket()
                sock.settimeout(5)
                sock.connect(("127.0.0.1", server.port))
                socks.append(sock)
            for sock in socks:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            for sock in socks:
                assert sock.recv(12) == b"HTTP/1.1 200"
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_clients_that_vanish_mid_stream_leak_no_thread_or_descriptor(how: str) -> None:
    fixture = paced_fixture(60, 0.03)  # a 1.8 s stream; clients leave after the first event
    with ReplayServer(fixture, speed=0) as warm:
        httpx.get(warm.url + "/", timeout=10).raise_for_status()  # imports and first-use caches, not counted
    with ReplayServer(fixture) as server:
        base_fds, base_threads = open_fds(), threading.active_count()
        socks = []
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % GEMINI.encode())
            socks.append(sock)
        for sock in socks:
            got = b""
            while b"data:" not in got:
                got += sock.recv(65536)
        during_fds, during_threads = open_fds(), threading.active_count()
        for sock in socks:
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        after_fds, after_threads = settle(base_fds, base_threads)
        print(
            f"fds {base_fds} -> {during_fds} (100 streams) -> {after_fds}; "
            f"threads {base_threads} -> {during_threads} -> {after_threads}"
        )
        assert during_fds >= base_fds + 100  # the count sees them
        assert during_threads <= base_threads  # one loop holds them all: no thread per stream
        assert after_fds <= base_fds, (base_fds, after_fds)
        assert after_threads <= base_threads, (base_threads, after_threads)
        # ... and the server goes on serving, whole streams.
        fast = httpx.post(
            server.url + GEMINI, content=b"{}", timeout=30, headers={"x-sse-replay-faults": "rechunk=64"}
        )
        assert fast.status_code == 200 and fast.content == fixture.exchanges[0].body
        server.check()


def test_events_never_leave_before_their_recorded_time() -> None:
    fixture = paced_fixture(15, 0.03)
    chunks = fixture.exchanges[0].chunks
    ends = list(itertools.accumulate(len(c.data) for c in chunks))  # body offset just after each event
    lateness: list[float] = []
    early: list[float] = []
    lock = threading.Lock()
    with ReplayServer(fixture) as server:

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            sent = time.monotonic()
            conn.request("POST", GEMINI, body=b"{}")
            response = conn.getresponse()
            got = 0
            for chunk, end in zip(chunks, ends, strict=True):
                while got < end:
                    got += len(response.read1(65536))
                delta = time.monotonic() - sent - (chunk.t or 0.0)
                with lock:
                    (early if delta < -0.002 else lateness).append(delta)
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not early, sorted(early)[:5]
    assert len(lateness) == 50 * len(chunks)
    assert statistics.median(lateness) < 0.05


@pytest.mark.slow
def test_the_server_benchmark_runs_end_to_end_and_every_stream_succeeds(tmp_path: pathlib.Path) -> None:
    """A smoke run of bench/bench_server.py (small numbers); its figures are printed, not asserted."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--clients",
            "30",
            "--timed",
            "10",
            "--rounds",
            "1",
            "--big-mib",
            "20",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for heading in ("## load:", "## throughput:", "## timing fidelity:", "## big fixture:"):
        assert heading in proc.stdout
    report = json.loads(out.read_text())
    assert report["load"]["ok"] == 30 and report["throughput"]["ok"] == 120
    assert report["timing"]["steady"]["failed"] == 0 and report["timing"]["steady"]["early"] == 0
    assert report["big"]["served"]["bytes"] == report["big"]["bytes"] == 20 * 1024 * 1024
