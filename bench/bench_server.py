"""Benchmark: the replay server under load, its timing fidelity, and memory with a 1 GiB fixture.

Run from the repository root::

    python bench/bench_server.py                 # 500 clients, 100 timed clients, a 1 GiB fixture
    python bench/bench_server.py --quick         # 100 clients, 20 timed clients, 64 MiB: a smoke run
    python bench/bench_server.py --clients 500 --timed 100 --big-mib 1024 --json out.json

What is measured, each against ``sse-replay --serve`` running in its own process (as users run it), with
raw-socket clients (no client library in the way):

* **load**: ``--clients`` connections opened at once, each streaming a paced fixture (30 events over
  ~1.5 s at ``--speed 1``); successes (status 200, final chunk, body byte-identical to the fixture) and
  wall time; then the same number of clients at ``--speed 0`` against a second server, 4 requests each,
  for throughput (requests/s, MB/s).
* **timing fidelity**: ``--timed`` concurrent clients at ``--speed 1``; for every event, the time its last
  byte arrived, measured from just before the client sent its request, minus the event's recorded offset.
  Printed as p50/p99/max in ms, and how many came earlier than recorded. Target: p99 <= 5 ms; never > 20 ms.
  Shapes: *steady*, client k starting at k/N s (every stream still overlaps the others); *burst*, all N
  requests sent in the same instant, first event recorded at 0; *burst with a time to first byte*, the same
  with the first event recorded 200 ms after the request, as in every real recording; and once, a burst on
  a fresh server (``burst, fresh server``), whose caches are still cold.
  Each shape is measured three ways, ``--rounds`` rounds of each client taking turns on the same server:
  (a) ONE asyncio loop in this process reading all N sockets (the historic figure: the client's own work,
  on the same 2 cores, is in it); (b) ``--procs`` processes (4) with bare ``selectors`` loops whose only
  work per read is ``recvmsg_into`` and a clock read (the HTTP is taken apart after the run, the results
  sent only once every process is done; they sleep until the common start, never spin), giving both the
  clock read right after the recv and the kernel's receive stamp of the data (``SO_TIMESTAMPNS``: when
  the server's bytes reached the client's socket, the client's own delay removed; for TCP it is the
  stamp of the last segment a read took, so it can only overstate); and (c) the server's own lateness
  for the same chunks, written minus due, recorded inside the server process (the opt-in
  ``SSE_REPLAY_LATENESS_FILE`` hook of the server loop: off, it costs a None check) and split by round.

  What it showed (6 runs of the single-loop server; the figures before it, a thread per connection, in
  brackets): the lateness is the server's own, the asyncio client adds ~0.1-1.5 ms at p50 and up to ~4 ms
  at p99. Steady: server p99 0.6-0.9 ms, max 1.5-4.3 ms; kernel stamps p99 0.6-0.8 ms. Burst with a time
  to first byte: server p99 1.4-3.4 ms, max 2.3-6.4 ms; kernel stamps p99 1.5-2.2 ms [server p99 0.7-1.7
  ms]. Burst with the first event at 0: server p99 3.8-8.6 ms, max 6.4-15.9 ms; kernel stamps the same
  [p99 21-34 ms, max 30-65 ms]: the 100 requests of the burst are read, parsed, routed and answered one
  after another at ~50-60 us each (the client processes, sending on the same 2 cores, take the first
  1-3 ms: a server that only accepts and writes a canned answer sees its last first event 1.4-3.7 ms
  late), so the last ones answered send their first event late. Fresh server: p99 4.3-8.4 ms.
* **tail and throughput against a floor** (``--only tail``; not part of the default run, it takes minutes):
  see :func:`run_tail`. Three servers answer the same bytes for the same request, each in its own
  process: ``sse-replay --serve --speed 0`` with the 12-event Gemini capture (shared/gemini-captures/
  text-long-utf8.sse, else an equivalent built here); the server layer alone (``LoopbackServer`` with a
  handler that returns those 12 chunks, its request log on); and a raw asyncio server (the floor: a
  ``Protocol`` that finds the head's end and its Content-Length and writes the captured answer with the same
  writes, one per chunk). Before measuring, the replay journal and the server's request log are filled so
  that they reach their caps (and drop their older half) in the middle of the sequential run; the
  50-client run goes through the caps again and again. Measured, the servers taking turns in each round:
  200 concurrent streams (``Connection: close``, seconds until all closed), then at once ``--sequential``
  requests on one keep-alive connection (per request: wall latency; the server loop thread's CPU time;
  and the wall latency minus the time the server loop thread and this client thread spent waiting for a
  CPU, from ``/proc/<pid>/task/<tid>/schedstat``: the machine is shared, and a runnable thread that waits
  for a core is not a pause of the server); then ``--tail-clients`` clients, each sending its next request
  when the last answer ended, for ``--duration`` seconds per server in slices that take turns. Printed:
  p50/p99.9/max latency, requests/s and the server's CPU time per request, ours against the floor, and the
  targets (max < 10 ms sequential; throughput >= 0.9x the floor). Sequential throughput is judged on
  ``--tail-blocks`` blocks of ``--tail-block`` requests, the three servers taking turns every block (each
  on a kept-alive connection opened before its block): this shared machine moves wall figures by a third
  from one second to the next, the floor's included, so a round of 2,000 requests per server (seconds
  apart) compares them under different loads, while blocks of 50 (tens of milliseconds apart) compare them
  under the same one; the verdict is the floor's total time over ours across all blocks (the median and
  quartiles of the per-block ratios are shown beside it). The 200 concurrent streams are judged on the
  median of the per-round ratios.
* **big fixture**: a ``--big-mib`` plain SSE file (4 KiB events) is generated in a temporary directory
  (deleted after); the peak RSS (``/usr/bin/time -v`` when present, else VmHWM) of
  ``sse-replay --speed 0 big.sse > /dev/null``, ``sse-toolkit parse big.sse > /dev/null``, and of a
  ``sse-replay --serve`` process while curl downloads the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sse_toolkit import save_fixture
from sse_toolkit.fixture._model import Chunk, Exchange, Fixture

BIN = Path(sys.executable).parent
PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
_EVENT = b'data: {"candidates": [{"content": {"parts": [{"text": "%s"}], "role": "model"}}]}\r\n\r\n'
EVENT_4K = _EVENT % (b"x" * (4096 - len(_EVENT) + 2))  # exactly 4096 bytes: 256 make 1 MiB
assert len(EVENT_4K) == 4096


def _tool(name: str) -> list[str]:
    script = BIN / name
    if script.exists():
        return [str(script)]
    entry = "replay_main" if name == "sse-replay" else "main"
    return [sys.executable, "-c", f"from sse_toolkit.cli import {entry}; {entry}(prog_name={name!r})"]


def paced_fixture(events: int = 30, seed: int = 7, first_byte: float = 0.0) -> Fixture:
    """A Gemini-like stream: irregular gaps (10-90 ms), events of 100-2000 bytes, ~1.5 s in all, the first
    event ``first_byte`` seconds after the request (0: at once, the hardest case for the server)."""
    rng = random.Random(seed)
    chunks, t = [], first_byte
    for n in range(events):
        text = "".join(rng.choice("abcdefghij ") for _ in range(rng.randint(60, 1900)))
        data = (
            'data: {"candidates": [{"content": {"parts": [{"text": "'
            + text
            + '"}], "role": "model"}, "index": '
            + str(n)
            + "}]}\r\n\r\n"
        ).encode()
        chunks.append(Chunk(data, round(t, 6)))
        t += rng.uniform(0.01, 0.09)
    return Fixture([Exchange(headers=[("Content-Type", "text/event-stream")], chunks=chunks)])


class Server:
    """``sse-replay --serve`` in its own process."""

    def __init__(self, fixture: Path, speed: float, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*_tool("sse-replay"), "--serve", "--speed", str(speed), str(fixture)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        url = self.proc.stdout.readline().decode().strip()
        if not url:
            raise SystemExit(f"sse-replay --serve did not start: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])

    def hwm_kib(self) -> int:
        return _status_kib(self.proc.pid, "VmHWM")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


async def stream_once(port: int, offsets: list[float] | None = None) -> tuple[bool, bytes, list[float]]:
    """One request on a raw socket: (final chunk seen, the de-chunked body, per-chunk arrival - offset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}" % PATH.encode()
    )
    sent = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    ok = head.startswith(b"HTTP/1.1 200")
    body, deltas, complete = bytearray(), [], False
    index = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            complete = True
            break
        data = await reader.readexactly(size + 2)
        arrived = time.perf_counter() - sent
        body += data[:-2]
        if offsets is not None and index < len(offsets):
            deltas.append(arrived - offsets[index])
        index += 1
    writer.close()
    return ok and complete, bytes(body), deltas


async def many(
    port: int, clients: int, offsets: list[float] | None, repeat: int = 1, spread: float = 0.0
) -> tuple[list[Any], float]:
    """``clients`` concurrent clients; with ``spread``, client k starts at k/clients * spread seconds."""

    async def client(k: int) -> list[Any]:
        await asyncio.sleep(k / clients * spread)
        results: list[Any] = []
        for _ in range(repeat):
            try:
                results.append(await stream_once(port, offsets))
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                results.append(exc)
        return results

    start = time.perf_counter()
    outcome = await asyncio.gather(*(client(k) for k in range(clients)))
    return [r for rs in outcome for r in rs], time.perf_counter() - start


# -- the lean multi-process client ---------------------------------------------------------------------
# The asyncio client above reads 100 sockets in one loop on the same 2 cores as the server: when 100 events
# land in the same millisecond it needs milliseconds of its own to read them all, and that shows up as
# lateness. This client splits the sockets over several processes, each with a bare selectors loop whose
# only work per read is recvmsg_into + a clock read + an append (the HTTP is taken apart after the run),
# and it keeps, for every read, both the clock read right after the recv and the kernel's receive stamp of
# the data (SO_TIMESTAMPNS: when the server's bytes reached the client's socket, whatever the client was
# doing then). For TCP the stamp is that of the LAST segment the read took, so a read that took two
# events stamps the first one late, never early: the kernel figure can only overstate lateness.

_SO_TIMESTAMPNS = 35  # Linux
_STAMP_SPACE = socket.CMSG_SPACE(16)


def _lean_worker(port: int, starts: list[float], done: Any, conn: Any) -> None:
    """Send one request per entry of ``starts`` (instants on the monotonic clock), read every answer to the
    end; send back, per request, (send ns, [(bytes, user ns, kernel ns or 0), ...]), all monotonic."""
    request = (
        b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}" % PATH.encode()
    )
    # Kernel stamps are on the wall clock: one offset to the monotonic clock, taken now (a run lasts seconds).
    shift = time.time_ns() - time.monotonic_ns()
    sel = selectors.DefaultSelector()
    buf = bytearray(1 << 16)
    recvmsg_into, monotonic_ns = socket.socket.recvmsg_into, time.monotonic_ns
    records: list[tuple[int, list[tuple[bytes, int, int]]]] = []
    todo = sorted(int(t * 1e9) for t in starts)
    nxt, open_count = 0, 0
    while nxt < len(todo) or open_count:
        if nxt < len(todo):
            wait = todo[nxt] - monotonic_ns()
            if wait <= 0 or not open_count:
                # The common start: sleep until it (the processes wake within ~0.1 ms of each other). No spin:
                # 4 processes spinning on 2 cores take the CPU from the server under test for whole
                # scheduler slices, and a slow client would then be counted as a slow server.
                if wait > 0:
                    time.sleep(wait / 1e9)
                while nxt < len(todo) and todo[nxt] <= monotonic_ns():
                    sock = socket.socket()
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                    sock.connect(("127.0.0.1", port))
                    reads: list[tuple[bytes, int, int]] = []
                    sent = monotonic_ns()
                    sock.sendall(request)
                    records.append((sent, reads))
                    sel.register(sock, selectors.EVENT_READ, reads)
                    nxt += 1
                    open_count += 1
                continue
            timeout: float | None = wait / 1e9
        else:
            timeout = None
        for key, _ in sel.select(timeout):
            sock = key.fileobj  # type: ignore[assignment]
            got, ancillary, _, _ = recvmsg_into(sock, [buf], _STAMP_SPACE)
            now = monotonic_ns()
            if not got:
                sel.unregister(sock)
                sock.close()
                open_count -= 1
                continue
            stamp = 0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    stamp = seconds * 1_000_000_000 + nanoseconds - shift
            key.data.append((bytes(buf[:got]), now, stamp))
    # Results leave only once every process has read all its streams: pickling them, and the parent taking
    # them apart, would otherwise take CPU from the server while it still writes the other streams' last
    # events.
    done.wait()
    conn.send(records)
    conn.close()


def _lean_deltas(
    sent: int, reads: list[tuple[bytes, int, int]], offsets: list[float]
) -> tuple[bool, list[float], list[float]]:
    """(complete, user-clock deltas, kernel-stamp deltas) in ms, per event: its last byte's read minus the
    send, minus the recorded offset. As in :func:`stream_once`, an event ends with its chunk's CRLF."""
    data = b"".join(r[0] for r in reads)
    ends, total = [], 0
    for r in reads:
        total += len(r[0])
        ends.append(total)  # reads[i] holds bytes up to ends[i]
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0 or not data.startswith(b"HTTP/1.1 200"):
        return False, [], []
    user: list[float] = []
    kernel: list[float] = []
    pos, index, read = head_end + 4, 0, 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return False, user, kernel
        size = int(data[pos:line_end].split(b";")[0], 16)
        if size == 0:
            return True, user, kernel
        last = line_end + 2 + size + 2  # one past the event's last byte
        if last > len(data):
            return False, user, kernel
        while ends[read] < last:
            read += 1
        if index < len(offsets):
            user.append((reads[read][1] - sent) / 1e6 - offsets[index] * 1000)
            if reads[read][2]:
                kernel.append((reads[read][2] - sent) / 1e6 - offsets[index] * 1000)
        index += 1
        pos = last


def many_lean(
    port: int, clients: int, offsets: list[float], procs: int, spread: float = 0.0
) -> tuple[list[tuple[bool, list[float], list[float]]], float, float]:
    """``clients`` requests from ``procs`` processes (client k in process k % procs, sent at k/clients *
    ``spread`` s after a common start); per request (complete, user deltas, kernel deltas), and the run's
    start and end on the monotonic clock."""
    ctx = multiprocessing.get_context("fork")
    start = time.monotonic() + 0.3  # every process is forked and waiting by then
    pipes, workers = [], []
    done = ctx.Barrier(procs)
    for p in range(procs):
        starts = [start + k / clients * spread for k in range(p, clients, procs)]
        here, there = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_lean_worker, args=(port, starts, done, there), daemon=True)
        worker.start()
        there.close()
        pipes.append(here)
        workers.append(worker)
    results = []
    for here in pipes:
        results += [_lean_deltas(sent, reads, offsets) for sent, reads in here.recv()]
    for worker in workers:
        worker.join()
    return results, start, time.monotonic()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run_load(tmp: Path, clients: int, report: dict[str, Any]) -> None:
    fixture = paced_fixture()
    path = tmp / "paced.jsonl"
    save_fixture(path, fixture)
    expected = fixture.exchanges[0].body
    offsets = [c.t or 0.0 for c in fixture.exchanges[0].chunks]
    server = Server(path, 1.0)
    try:
        results, wall = asyncio.run(many(server.port, clients, offsets))
    finally:
        server.stop()
    good = [r for r in results if not isinstance(r, BaseException) and r[0] and r[1] == expected]
    deltas = [d * 1000 for r in good for d in r[2]]
    errors = sorted({type(r).__name__ for r in results if isinstance(r, BaseException)})
    print(
        f"## load: {clients} concurrent streams at --speed 1 ({len(offsets)} events, "
        f"{offsets[-1]:.2f} s recorded)"
    )
    print(
        f"  byte-identical and complete: {len(good)}/{clients}  wall {wall:.2f} s  errors: {errors or 'none'}"
    )
    print(
        f"  timing under this load: p50 {percentile(deltas, 50):.2f} ms  "
        f"p99 {percentile(deltas, 99):.2f} ms  max {max(deltas):.2f} ms"
    )
    report["load"] = {
        "clients": clients,
        "ok": len(good),
        "wall_s": round(wall, 3),
        "errors": errors,
        "p50_ms": percentile(deltas, 50),
        "p99_ms": percentile(deltas, 99),
        "max_ms": max(deltas),
    }

    fast = Server(path, 0.0)
    try:
        results, wall = asyncio.run(many(fast.port, clients, None, repeat=4))
    finally:
        fast.stop()
    good = [r for r in results if not isinstance(r, BaseException) and r[0] and r[1] == expected]
    total = len(good) * len(expected)
    print(f"## throughput: {clients} concurrent clients x 4 requests at --speed 0")
    print(
        f"  byte-identical and complete: {len(good)}/{len(results)}  {len(good) / wall:.0f} requests/s  "
        f"{total / wall / 1e6:.1f} MB/s  wall {wall:.2f} s"
    )
    report["throughput"] = {
        "requests": len(results),
        "ok": len(good),
        "requests_per_s": round(len(good) / wall, 1),
        "mb_per_s": round(total / wall / 1e6, 2),
    }


def _spread(deltas: list[float]) -> dict[str, Any]:
    """Count, p50, p90, p99 and max of ``deltas`` (ms), as both kinds of line report them."""
    return {
        "events": len(deltas),
        "p50_ms": percentile(deltas, 50),
        "p90_ms": percentile(deltas, 90),
        "p99_ms": percentile(deltas, 99),
        "max_ms": max(deltas),
    }


def _spread_text(label: str, spread: dict[str, Any]) -> str:
    return (
        f"{label}: {spread['events']} events  p50 {spread['p50_ms']:.2f} ms  p90 {spread['p90_ms']:.2f} ms  "
        f"p99 {spread['p99_ms']:.2f} ms  max {spread['max_ms']:.2f} ms"
    )


def _timing_line(label: str, deltas: list[float], firsts: list[float], failures: int) -> dict[str, Any]:
    early = sum(d < 0 for d in deltas)  # the client's clock read before its send: never early in truth
    spread = _spread(deltas)
    verdict = "meets the 5 ms p99 target" if spread["p99_ms"] <= 5 else "misses the 5 ms p99 target"
    verdict += ", within the 20 ms floor" if spread["max_ms"] <= 20 else ", over the 20 ms floor"
    print(
        f"  {_spread_text(label, spread)}  first event p50 {percentile(firsts, 50):.2f} / "
        f"max {max(firsts):.2f} ms  early: {early}{f' (earliest {min(deltas):.3f} ms)' if early else ''}  "
        f"failed: {failures}  -> {verdict}"
    )
    return {
        **spread,
        "first_event_p50_ms": percentile(firsts, 50),
        "first_event_max_ms": max(firsts),
        "early": early,
        "min_ms": min(deltas),
        "failed": failures,
    }


def _plain_line(label: str, deltas: list[float]) -> dict[str, Any]:
    spread = _spread(deltas)
    print(f"    {_spread_text(label, spread)}  early: {sum(d < 0 for d in deltas)}")
    return spread


class _Lateness:
    """The server's own lateness (``SSE_REPLAY_LATENESS_FILE``: every timed chunk's due and written instants,
    dumped when the server stops), split by run: a run owns the chunks due between its start and end."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.path = tmp / f"{name}-lateness.json"
        self.windows: list[tuple[str, float, float]] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, "SSE_REPLAY_LATENESS_FILE": str(self.path)}

    def mark(self, key: str, start: float, end: float) -> None:
        self.windows.append((key, start - 0.001, end))

    def per_key(self) -> dict[str, list[float]]:
        records = json.loads(self.path.read_text()) if self.path.exists() else []
        out: dict[str, list[float]] = {}
        for key, start, end in self.windows:
            out.setdefault(key, []).extend(
                (written - due) * 1000 for due, written in records if start <= due <= end
            )
        return out


def run_timing(tmp: Path, clients: int, rounds: int, procs: int, report: dict[str, Any]) -> None:
    fixture = paced_fixture(seed=11)
    path = tmp / "timed.jsonl"
    save_fixture(path, fixture)
    offsets = [c.t or 0.0 for c in fixture.exchanges[0].chunks]
    print(
        f"## timing fidelity: {clients} concurrent streams at --speed 1 ({len(offsets)} events over "
        f"{offsets[-1]:.2f} s); arrival of each event's last byte minus its recorded offset, from the "
        "request send"
    )
    print(
        f"  each shape is measured by two clients, {rounds} round(s) each, taking turns on the same server:\n"
        f"  (a) ONE asyncio loop in this process reading all {clients} sockets (the historic figure; "
        f"its own work is in it);\n  (b) {procs} processes x {-(-clients // procs)} sockets, bare selectors "
        "loops: the clock read right after recv, and the kernel's receive stamp of the data (SO_TIMESTAMPNS, "
        "the client's delay removed);\n  and the server's own lateness for the same chunks (written minus "
        "due, in the server process)"
    )
    out: dict[str, Any] = {"clients": clients, "rounds": rounds, "procs": procs}
    late = _Lateness(tmp, "timed")
    server = Server(path, 1.0, late.env())
    try:
        start = time.monotonic()
        results, _ = asyncio.run(many(server.port, clients, offsets))
        late.mark("burst_fresh", start, time.monotonic())
        good = [r for r in results if not isinstance(r, BaseException) and r[0]]
        out["burst_fresh"] = _timing_line(
            "burst, fresh server (one round, asyncio client; the first requests it serves)",
            [d * 1000 for r in good for d in r[2]],
            [r[2][0] * 1000 for r in good],
            len(results) - len(good),
        )
        for key, label, spread in (
            ("steady", "steady (starts spread over 1 s, all streams overlap)", 1.0),
            ("burst", "burst (all requests sent in the same instant)", 0.0),
        ):
            _timing_shape(key, label, server.port, clients, offsets, rounds, procs, spread, late, out)
    finally:
        server.stop()
    # A recording's first event comes after the model's time to first byte, never at 0 (real Gemini streams
    # take longer than this 200 ms): the server then reads and routes the burst while the clients wait anyway.
    fixture = paced_fixture(seed=11, first_byte=0.2)
    path = tmp / "timed-ttfb.jsonl"
    save_fixture(path, fixture)
    offsets = [c.t or 0.0 for c in fixture.exchanges[0].chunks]
    late_ttfb = _Lateness(tmp, "timed-ttfb")
    server = Server(path, 1.0, late_ttfb.env())
    try:
        _timing_shape(
            "burst_ttfb",
            "burst, first event recorded 200 ms after the request (as in a real recording)",
            server.port,
            clients,
            offsets,
            rounds,
            procs,
            0.0,
            late_ttfb,
            out,
        )
    finally:
        server.stop()
    print("  server side (written minus due, measured in the server process, same rounds as above):")
    for lateness in (late, late_ttfb):
        for key, deltas in lateness.per_key().items():
            if deltas:
                shape, _, client = key.partition("_procs")
                who = (
                    "(b) multi-process client's rounds"
                    if client or key.endswith("_procs")
                    else "(a) asyncio client's rounds"
                )
                out[key + "_server"] = _plain_line(f"{shape.replace('_', ' ')}, {who}", deltas)
    report["timing"] = out


def _timing_shape(
    key: str,
    label: str,
    port: int,
    clients: int,
    offsets: list[float],
    rounds: int,
    procs: int,
    spread: float,
    late: _Lateness,
    out: dict[str, Any],
) -> None:
    """``rounds`` rounds of the asyncio client and of the multi-process client, taking turns."""
    deltas: list[float] = []
    firsts: list[float] = []
    failures = 0
    user: list[float] = []
    kernel: list[float] = []
    user_firsts: list[float] = []
    kernel_firsts: list[float] = []
    lean_failures = 0
    for _ in range(rounds):
        start = time.monotonic()
        results, _ = asyncio.run(many(port, clients, offsets, spread=spread))
        late.mark(key, start, time.monotonic())
        for r in results:
            if isinstance(r, BaseException) or not r[0]:
                failures += 1
            else:
                deltas.extend(d * 1000 for d in r[2])
                firsts.append(r[2][0] * 1000)
        lean, start, end = many_lean(port, clients, offsets, procs, spread)
        late.mark(key + "_procs", start, end)
        for complete, u, k in lean:
            if not complete or len(u) != len(offsets) or len(k) != len(offsets):
                lean_failures += 1
            else:
                user += u
                kernel += k
                user_firsts.append(u[0])
                kernel_firsts.append(k[0])
    out[key] = _timing_line(label + ", (a) one asyncio loop", deltas, firsts, failures)
    out[key + "_procs"] = _timing_line(
        f"  (b) {procs} processes, clock read after recv", user, user_firsts, lean_failures
    )
    out[key + "_procs_kernel"] = _timing_line(
        f"  (b) {procs} processes, kernel receive stamp", kernel, kernel_firsts, lean_failures
    )


def _peak_rss_kib(command: list[str]) -> tuple[int, float]:
    """Peak RSS of ``command`` (stdout to /dev/null) and its wall time."""
    start = time.perf_counter()
    if shutil.which("time") and Path("/usr/bin/time").exists():
        result = subprocess.run(
            ["/usr/bin/time", "-v", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True
        )
        line = [x for x in result.stderr.decode().splitlines() if "Maximum resident set size" in x][-1]
        return int(line.rsplit(":", 1)[1]), time.perf_counter() - start
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _status_kib(proc.pid, "VmHWM"))
        time.sleep(0.05)
    return peak, time.perf_counter() - start


def run_big(tmp: Path, mib: int, report: dict[str, Any]) -> None:
    path = tmp / "big.sse"
    with open(path, "wb") as file:
        block = EVENT_4K * 256  # 1 MiB
        file.writelines(block for _ in range(mib))
    size = path.stat().st_size
    print(f"## big fixture: {size / 2**20:.0f} MiB plain SSE, {size // len(EVENT_4K)} events of 4 KiB")
    out: dict[str, Any] = {"bytes": size}
    for label, command in (
        ("sse-replay --speed 0 big.sse", [*_tool("sse-replay"), "--speed", "0", str(path)]),
        ("sse-toolkit parse big.sse", [*_tool("sse-toolkit"), "parse", str(path)]),
    ):
        peak, wall = _peak_rss_kib(command)
        print(
            f"  {label} > /dev/null: peak RSS {peak / 1024:.1f} MiB, {wall:.1f} s "
            f"({size / wall / 2**20:.0f} MiB/s)"
        )
        out[label] = {"peak_rss_kib": peak, "wall_s": round(wall, 2)}
    server = Server(path, 0.0)
    try:
        before = server.hwm_kib()
        start = time.perf_counter()
        curl = subprocess.run(
            ["curl", "-sS", "-o", os.devnull, "-w", "%{size_download}", server.url + "/big"],
            capture_output=True,
            check=True,
        )
        wall = time.perf_counter() - start
        peak = server.hwm_kib()
    finally:
        server.stop()
    got = int(curl.stdout)
    print(
        f"  sse-replay --serve, read by curl: {got} bytes ({'all' if got == size else 'SHORT'}), server peak "
        f"RSS {peak / 1024:.1f} MiB (at start {before / 1024:.1f} MiB), {wall:.1f} s "
        f"({size / wall / 2**20:.0f} MiB/s)"
    )
    out["served"] = {"peak_rss_kib": peak, "start_rss_kib": before, "bytes": got, "wall_s": round(wall, 2)}
    report["big"] = out
    path.unlink()


# -- tail latency and throughput against a raw asyncio floor (--only tail) ---------------------------------

CAPTURE = Path(__file__).resolve().parents[2] / "shared" / "gemini-captures" / "text-long-utf8.sse"
_FINAL = b"\r\n0\r\n\r\n"
TAIL_REQUEST = (
    b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    % PATH.encode()
)
TAIL_CLOSE = TAIL_REQUEST.replace(b"Content-Length", b"Connection: close\r\nContent-Length")


def gemini_12() -> bytes:
    """The 12-event Gemini fixture: the real capture when the shared folder is there, else 12 events of the
    same shape and size (text deltas of ~500 bytes of UTF-8, usage metadata, model version)."""
    if CAPTURE.exists():
        return CAPTURE.read_bytes()
    events = []
    for n in range(12):
        text = "Zażółć gęślą jaźń — «déjà vu» 猫 " * 14 + str(n)
        doc = {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 40 * (n + 1)},
            "modelVersion": "gemini-2.0-flash",
        }
        if n == 11:
            doc["candidates"][0]["finishReason"] = "STOP"  # type: ignore[index]
        events.append(b"data: " + json.dumps(doc, ensure_ascii=False).encode() + b"\r\n\r\n")
    return b"".join(events)


def _split_response(raw: bytes) -> tuple[bytes, list[bytes]]:
    """A chunked response as (head, [chunk data, ...])."""
    end = raw.index(b"\r\n\r\n") + 4
    head, body = raw[:end], raw[end:]
    chunks: list[bytes] = []
    pos = 0
    while True:
        line_end = body.index(b"\r\n", pos)
        size = int(body[pos:line_end], 16)
        if size == 0:
            return head, chunks
        chunks.append(body[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(_FINAL):
        got = sock.recv(65536)
        if not got:
            raise SystemExit(f"the server closed before the end of its answer: {data[-200:]!r}")
        data += got
    return data


def capture_answer(port: int) -> tuple[bytes, bytes, list[bytes]]:
    """What the replay server answers the benchmark's request: (head, head with Connection: close, chunks)."""
    heads = []
    for request in (TAIL_REQUEST, TAIL_CLOSE):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            head, chunks = _split_response(_read_response(sock))
            heads.append(head)
    return heads[0], heads[1], chunks


def _answer_writes(head: bytes, chunks: list[bytes]) -> list[bytes]:
    """The writes our server makes for one answer at ``--speed 0`` to a request on a kept-alive connection
    alone in its loop turn (the sequential part): one, the head and every chunk and the end together (one
    writev of the pieces due)."""
    framed = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks]
    return [head + b"".join(framed) + b"0\r\n\r\n"]


def floor_protocol(keep: list[bytes], close: list[bytes]) -> type[asyncio.Protocol]:
    """The raw asyncio floor's protocol: finds each request's head and Content-Length and answers with the
    writes ``keep`` (``close`` for a request that says ``Connection: close``, then closes)."""

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                length, closing = 0, False
                for line in self.buffer[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and b"close" in value.lower():
                        closing = True
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                for write in close if closing else keep:
                    self.transport.write(write)
                if closing:
                    self.transport.close()
                    return

    return Floor


def floor_main(spec: str) -> None:
    """The raw asyncio floor: answers every request with the captured bytes, in the same writes as ours."""
    import gc

    loaded = json.loads(Path(spec).read_text())
    Floor = floor_protocol(
        [bytes.fromhex(w) for w in loaded["keep"]], [bytes.fromhex(w) for w in loaded["close"]]
    )

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", 0, backlog=1024)
        print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Event().wait()

    gc.collect()
    gc.freeze()  # as sse-replay --serve does after loading
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def loop_main(spec: str) -> None:
    """The server layer alone: a LoopbackServer (request log on) whose handler returns the captured chunks."""
    import gc

    from sse_toolkit.server._lifecycle import LoopbackServer
    from sse_toolkit.server._loop import Reply

    loaded = json.loads(Path(spec).read_text())
    headers = [tuple(h) for h in loaded["headers"]]
    chunks = [(0.0, bytes.fromhex(c)) for c in loaded["chunks"]]

    class Chunks:
        cpu_only = True

        def __call__(self, request: Any) -> Reply:
            return Reply(200, list(headers), iter(chunks))

    server = LoopbackServer(Chunks())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    gc.collect()
    gc.freeze()
    print(server.url, flush=True)
    while not stop.wait(0.5):
        server.check()
    server.stop()


class TailServer(Server):
    """One server of the tail run in its own process, with its threads' scheduler counters."""

    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        url = self.proc.stdout.readline().decode().strip()
        if not url:
            raise SystemExit(f"{name} did not start: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.loop_task: int | None = None

    def tasks(self) -> list[str]:
        return [str(p) for p in Path(f"/proc/{self.proc.pid}/task").glob("*/schedstat")]

    def cpu_ns(self) -> int:
        """CPU time of all the process's threads so far (0 where /proc has no schedstat)."""
        total = 0
        for path in self.tasks():
            with contextlib.suppress(OSError, ValueError):
                total += int(Path(path).read_text().split()[0])
        return total

    def task_times(self) -> dict[int, int]:
        """CPU time so far of each of the process's threads, by thread id."""
        times = {}
        for path in self.tasks():
            with contextlib.suppress(OSError, ValueError):
                times[int(Path(path).parent.name)] = int(Path(path).read_text().split()[0])
        return times

    def find_loop_task(self, before: dict[int, int]) -> None:
        """The thread that serves: the one that ran most since ``before`` (taken before a warm-up)."""
        after = self.task_times()
        if after:
            self.loop_task = max(after, key=lambda tid: after[tid] - before.get(tid, 0))


class _Sched:
    """Run time and run-queue wait (ns) of a few threads, from their schedstat files (Linux)."""

    def __init__(self, paths: list[str]) -> None:
        self.fds = []
        for path in paths:
            with contextlib.suppress(OSError):
                self.fds.append(os.open(path, os.O_RDONLY))

    def __bool__(self) -> bool:
        return bool(self.fds)

    def read(self) -> tuple[int, int]:
        run = wait = 0
        for fd in self.fds:
            fields = os.pread(fd, 64, 0).split()
            run += int(fields[0])
            wait += int(fields[1])
        return run, wait

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def prefill(port: int, count: int) -> None:
    """``count`` requests on one connection (fills a journal or a request log)."""
    with _connect(port) as sock:
        for _ in range(count):
            sock.sendall(TAIL_REQUEST)
            _read_response(sock)


def concurrent_streams(port: int, clients: int, size: int) -> float:
    """``clients`` connections each send one request (Connection: close) at once: seconds until every
    answer was read to its end and the server closed."""
    sel = selectors.DefaultSelector()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
    got = {s.fileno(): 0 for s in socks}
    start = time.perf_counter()
    for sock in socks:
        sock.setblocking(False)
        sock.send(TAIL_CLOSE)
        sel.register(sock, selectors.EVENT_READ)
    left = clients
    while left:
        for key, _ in sel.select():
            sock = key.fileobj  # type: ignore[assignment]
            data = sock.recv(65536)
            if data:
                got[sock.fileno()] += len(data)
                continue
            if got[sock.fileno()] != size:
                raise SystemExit(f"a concurrent stream got {got[sock.fileno()]} bytes of {size}")
            sel.unregister(sock)
            sock.close()
            left -= 1
    return time.perf_counter() - start


def concurrent_streams_httpx(port: int, clients: int, body: int) -> float:
    """The same with ``httpx.AsyncClient`` (one client, ``clients`` connections, each stream read with
    ``aiter_bytes`` as an application reads it): seconds until every stream was read to its end."""
    import httpx

    async def run() -> float:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:

            async def one() -> None:
                got = 0
                headers = {"Content-Type": "application/json", "Connection": "close"}
                async with http.stream("POST", PATH, content=b"{}", headers=headers) as answer:
                    async for data in answer.aiter_bytes():
                        got += len(data)
                if answer.status_code != 200 or got != body:
                    raise SystemExit(f"a concurrent stream got {answer.status_code}, {got} bytes of {body}")

            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(clients)))
            return time.perf_counter() - start

    return asyncio.run(run())


def sequential_requests(
    server: TailServer, count: int, size: int, body: int, client: str = "raw"
) -> dict[str, list[float]]:
    """``count`` requests one after another on one keep-alive connection; per request (ms): wall latency,
    the server loop thread's CPU time, and the wall latency minus the run-queue wait of that thread and of
    this one (both: a request's path goes through each). ``client``: ``raw`` (a socket: the answer's
    ``size`` bytes read as they come), ``httpx`` (an ``httpx.Client``, as an application reads: its
    ``body`` bytes) or ``genai`` (google-genai's ``generate_content_stream``, every response decoded)."""
    import gc

    task = f"/proc/{server.proc.pid}/task/{server.loop_task}/schedstat"
    loop = _Sched([task] if server.loop_task else [])
    both = _Sched([task, "/proc/thread-self/schedstat"] if server.loop_task else [])
    wall: list[float] = []
    cpu: list[float] = []
    busy: list[float] = []
    buffer = bytearray(65536)
    view = memoryview(buffer)
    sock = _connect(server.port)

    def raw() -> None:
        got, tail = 0, b""
        sock.sendall(TAIL_REQUEST)
        while got < size:
            n = sock.recv_into(buffer)
            if not n:
                raise SystemExit("the server closed the keep-alive connection")
            got += n
            tail = (tail + bytes(view[max(0, n - len(_FINAL)) : n]))[-len(_FINAL) :]
        if got != size or tail != _FINAL:
            raise SystemExit(f"unexpected answer of {got} bytes (expected {size})")

    def with_httpx() -> None:
        answer = http.post(PATH, content=b"{}", headers={"Content-Type": "application/json"})
        if answer.status_code != 200 or len(answer.content) != body:
            raise SystemExit(f"unexpected answer: {answer.status_code}, {len(answer.content)} bytes")

    def with_genai() -> None:
        if not sum(1 for _ in models.generate_content_stream(model="gemini-2.0-flash", contents="hi")):
            raise SystemExit("google-genai got no response")

    import httpx

    http = httpx.Client(base_url=f"http://127.0.0.1:{server.port}")
    sdk: Any = None
    if client == "genai":
        from google import genai

        sdk = genai.Client(api_key="k", http_options={"base_url": f"http://127.0.0.1:{server.port}"})
        models = sdk.models
    one = {"httpx": with_httpx, "genai": with_genai}.get(client, raw)
    one()  # the httpx connection is open before the first timed request
    gc.disable()  # this client's own collections must not count as the server's pauses
    try:
        for _ in range(count):
            run0, wait0 = (loop.read()[0], both.read()[1]) if loop else (0, 0)
            start = time.perf_counter_ns()
            one()
            took = time.perf_counter_ns() - start
            wall.append(took / 1e6)
            if loop:
                cpu.append((loop.read()[0] - run0) / 1e6)
                busy.append((took - (both.read()[1] - wait0)) / 1e6)
    finally:
        gc.enable()
        sock.close()
        http.close()
        if sdk is not None:
            sdk.close()
        loop.close()
        both.close()
    return {"wall": wall, "cpu": cpu, "busy": busy}


def interleaved_blocks(
    servers: list[TailServer], blocks: int, block: int, size: int, body: int, client: str
) -> dict[str, list[float]]:
    """Seconds each server took for each of ``blocks`` blocks of ``block`` sequential requests, the servers
    taking turns every block (the first to go rotates)."""
    took: dict[str, list[float]] = {server.name: [] for server in servers}
    for i in range(blocks):
        for server in servers[i % len(servers) :] + servers[: i % len(servers)]:
            out = sequential_requests(server, block, size, body, client)
            took[server.name].append(sum(out["wall"]) / 1e3)
    return took


def _clients_worker(port: int, clients: int, seconds: float, size: int, conn: Any) -> None:
    """``clients`` keep-alive connections, each sending its next request once its answer ended, for
    ``seconds``; sends back the latencies (ms) of the requests completed."""
    import gc

    gc.disable()
    sel = selectors.DefaultSelector()
    got: dict[int, int] = {}
    sent: dict[int, int] = {}
    lat: list[float] = []
    socks = [_connect(port) for _ in range(clients)]
    start = time.perf_counter()
    end = start + seconds
    for sock in socks:
        sock.setblocking(False)
        got[sock.fileno()], sent[sock.fileno()] = 0, time.perf_counter_ns()
        sock.send(TAIL_REQUEST)
        sel.register(sock, selectors.EVENT_READ)
    open_ = clients
    while open_:
        for key, _ in sel.select():
            sock = key.fileobj  # type: ignore[assignment]
            fd = sock.fileno()
            data = sock.recv(65536)
            if not data:
                raise SystemExit("the server closed a keep-alive connection")
            got[fd] += len(data)
            if got[fd] < size:
                continue
            now = time.perf_counter_ns()
            lat.append((now - sent[fd]) / 1e6)
            if now / 1e9 >= end:
                sel.unregister(sock)
                sock.close()
                open_ -= 1
                continue
            got[fd], sent[fd] = 0, now
            sock.send(TAIL_REQUEST)
    conn.send((lat, time.perf_counter() - start))
    conn.close()


def clients_run(port: int, clients: int, seconds: float, size: int) -> tuple[list[float], float]:
    """The latencies of a ``clients``-client run of ``seconds`` (a forked process: its own GIL), and its
    wall time from the first request sent to the last answer read."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_clients_worker, args=(port, clients, seconds, size, there), daemon=True)
    worker.start()
    there.close()
    lat, wall = here.recv()
    worker.join()
    return lat, wall


def _q(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))] if ordered else 0.0


def _ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


def _span(values: list[float], digits: int = 2) -> str:
    lo, hi = min(values), max(values)
    return (
        f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else f"{lo:.{digits}f}-{hi:.{digits}f}"
    )


def run_tail(
    tmp: Path,
    sequential: int,
    rounds: int,
    clients: int,
    duration: float,
    report: dict[str, Any],
    fill: bool = True,
    client: str = "raw",
    blocks: int = 60,
    block: int = 50,
) -> None:
    """Tail latency and throughput of ``sse-replay --serve`` against the raw asyncio floor and the server
    layer alone (see the module doc)."""
    from sse_toolkit.replay._journal import MAX_ENTRIES
    from sse_toolkit.server._lifecycle import LoopbackServer

    fixture = tmp / "gemini-12.sse"
    fixture.write_bytes(gemini_12())
    ours = TailServer("sse-replay", [*_tool("sse-replay"), "--serve", "--speed", "0", str(fixture)])
    servers = [ours]
    try:
        head, close_head, chunks = capture_answer(ours.port)
        size = len(head) + sum(len(b"%x\r\n\r\n" % len(c)) + len(c) for c in chunks) + 5
        spec = tmp / "floor.json"
        spec.write_text(
            json.dumps(
                {
                    "keep": [w.hex() for w in _answer_writes(head, chunks)],
                    "close": [w.hex() for w in _answer_writes(close_head, chunks)],
                    "headers": [
                        line.decode("latin-1").split(": ", 1)
                        for line in head.split(b"\r\n")[1:-2]
                        if not line.lower().startswith((b"date:", b"transfer-encoding:"))
                    ],
                    "chunks": [c.hex() for c in chunks],
                }
            )
        )
        me = [sys.executable, str(Path(__file__).resolve())]
        servers.append(TailServer("asyncio floor", [*me, "--serve-floor", str(spec)]))
        servers.append(TailServer("LoopbackServer", [*me, "--serve-loop", str(spec)]))
        floor = servers[1]
        print(
            f"## tail and throughput: {len(chunks)}-event Gemini answer ({size} bytes), --speed 0, "
            f"{rounds} round(s), servers taking turns"
        )
        # Filled so that the cap is reached (and the older half dropped) in the middle of the sequential run.
        caps = {"sse-replay": MAX_ENTRIES, "LoopbackServer": LoopbackServer.log_max_requests}
        for server in servers:
            cap = caps.get(server.name) if fill else None
            before = server.task_times()
            prefill(server.port, max(100, cap - 200 - sequential // 2) if cap else 100)
            server.find_loop_task(before)
        seq: dict[str, list[dict[str, list[float]]]] = {s.name: [] for s in servers}
        conc: dict[str, list[tuple[float, float]]] = {s.name: [] for s in servers}
        for r in range(rounds):
            for server in servers[r % len(servers) :] + servers[: r % len(servers)]:
                cpu0 = server.cpu_ns()
                if client != "raw":  # google-genai's streams too are read with httpx's async client
                    wall = concurrent_streams_httpx(server.port, 200, sum(map(len, chunks)))
                else:
                    wall = concurrent_streams(server.port, 200, size + len(close_head) - len(head))
                conc[server.name].append((wall, (server.cpu_ns() - cpu0) / 1e9))
                cpu0 = server.cpu_ns()
                out = sequential_requests(server, sequential, size, sum(map(len, chunks)), client)
                # Over the timed requests only: a client's set-up (google-genai's import) is not the server's.
                out["rps"] = [sequential / (sum(out["wall"]) / 1e3)]
                out["cpu_per_request_us"] = [(server.cpu_ns() - cpu0) / 1e3 / sequential]
                seq[server.name].append(out)
        print(
            f"  {sequential} sequential requests on one keep-alive connection ({client} client), right after "
            "200 concurrent streams closed (ms; ranges over rounds)"
        )
        print(
            "  | server | p50 | p99.9 | max | max minus waits for a CPU | max server CPU | requests/s "
            "| server CPU per request | 200 concurrent streams | their server CPU |"
        )
        print("  |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        out_seq: dict[str, Any] = {}
        for server in servers:
            runs = seq[server.name]
            row = {
                "p50_ms": [_q(r["wall"], 0.5) for r in runs],
                "p999_ms": [_q(r["wall"], 0.999) for r in runs],
                "max_ms": [max(r["wall"]) for r in runs],
                "max_busy_ms": [max(r["busy"]) for r in runs if r["busy"]],
                "max_cpu_ms": [max(r["cpu"]) for r in runs if r["cpu"]],
                "rps": [r["rps"][0] for r in runs],
                "cpu_us": [r["cpu_per_request_us"][0] for r in runs],
                "concurrent_s": [c[0] for c in conc[server.name]],
                "concurrent_cpu_s": [c[1] for c in conc[server.name]],
            }
            out_seq[server.name] = row
            busy = _span(row["max_busy_ms"]) if row["max_busy_ms"] else "n/a"
            cpu = _span(row["max_cpu_ms"]) if row["max_cpu_ms"] else "n/a"
            cells = [_span(row["p50_ms"]), _span(row["p999_ms"]), _span(row["max_ms"]), busy, cpu]
            cells += [_span(row["rps"], 0), f"{_span(row['cpu_us'], 0)} us"]
            cells += [f"{_span(row['concurrent_s'], 3)} s", f"{_span(row['concurrent_cpu_s'], 3)} s"]
            print(f"  | {server.name} | " + " | ".join(cells) + " |")
        ours_row, floor_row = out_seq["sse-replay"], out_seq["asyncio floor"]
        ratio_rps = _ratios(ours_row["rps"], floor_row["rps"])
        took = interleaved_blocks(servers, blocks, block, size, sum(map(len, chunks)), client)
        print(
            f"  {blocks} blocks of {block} sequential requests ({client} client), the servers taking turns "
            "every block: requests/s over all blocks; the floor's time over theirs (all blocks; per block: "
            "median, quartiles)"
        )
        blocks_out: dict[str, Any] = {}
        for server in servers:
            mine = took[server.name]
            row_b = {"rps": blocks * block / sum(mine), "seconds": mine}
            line = f"  | {server.name} | {row_b['rps']:.0f} requests/s"
            if server is not floor:
                per = _ratios(took[floor.name], mine)
                quartiles = statistics.quantiles(per, n=4) if len(per) > 1 else [per[0], per[0], per[0]]
                row_b["share"] = sum(took[floor.name]) / sum(mine)
                row_b["share_blocks"] = per
                line += (
                    f" | {row_b['share']:.3f}x | {statistics.median(per):.3f}x "
                    f"({quartiles[0]:.2f}-{quartiles[2]:.2f})"
                )
            print(line + " |")
            blocks_out[server.name] = row_b
        share = blocks_out["sse-replay"]["share"]
        ratio_cpu = _ratios(floor_row["cpu_us"], ours_row["cpu_us"])
        ratio_conc = _ratios(floor_row["concurrent_s"], ours_row["concurrent_s"])
        ratio_conc_cpu = _ratios(floor_row["concurrent_cpu_s"], ours_row["concurrent_cpu_s"])
        worst_max = max(ours_row["max_ms"])
        worst_busy = max(ours_row["max_busy_ms"]) if ours_row["max_busy_ms"] else None
        print(
            f"  target max < 10 ms sequential: wall max {worst_max:.2f} ms -> "
            f"{'PASS' if worst_max < 10 else 'MISS'}"
            + (
                f"; without waits for a CPU {worst_busy:.2f} ms -> {'PASS' if worst_busy < 10 else 'MISS'}"
                if worst_busy is not None
                else ""
            )
        )
        # The verdict: sequential, over the interleaved blocks; concurrent, the median over the rounds
        # (servers take turns within each); the ranges show how much this machine moves.
        by_wall = min(share, statistics.median(ratio_conc)) >= 0.9
        print(
            f"  target throughput >= 0.9x the floor: sequential requests/s {share:.3f}x over the interleaved "
            f"blocks (rounds: median {statistics.median(ratio_rps):.2f}x, {_span(ratio_rps)}), 200 "
            f"concurrent streams by wall, median of the rounds "
            f"{statistics.median(ratio_conc):.2f}x ({_span(ratio_conc)}) -> {client} client's wall: "
            f"{'PASS' if by_wall else 'MISS'}; server CPU per request (not a target) "
            f"{statistics.median(ratio_cpu):.2f}x ({_span(ratio_cpu)}), concurrent "
            f"{statistics.median(ratio_conc_cpu):.2f}x"
        )
        out_tail: dict[str, Any] = {
            "sequential": sequential,
            "client": client,
            "rounds": rounds,
            "answer_bytes": size,
            "servers": out_seq,
            "ratio_sequential_rps": ratio_rps,
            "blocks": {"count": blocks, "size": block, "servers": blocks_out},
            "ratio_sequential_cpu": ratio_cpu,
            "ratio_concurrent_wall": ratio_conc,
            "ratio_concurrent_cpu": ratio_conc_cpu,
        }
        if duration > 0:
            out_tail["clients"] = _tail_clients(ours, floor, clients, duration, size)
        report["tail"] = out_tail
    finally:
        for server in servers:
            server.stop()


def _tail_clients(ours: TailServer, floor: TailServer, clients: int, duration: float, size: int) -> Any:
    """The ``clients``-client run, ``duration`` seconds per server in slices that take turns."""
    piece = min(duration, 10.0)
    slices = max(1, round(duration / piece))
    lat: dict[str, list[float]] = {ours.name: [], floor.name: []}
    rps: dict[str, list[float]] = {ours.name: [], floor.name: []}
    cpu: dict[str, list[float]] = {ours.name: [], floor.name: []}
    for k in range(slices):
        for server in (ours, floor) if k % 2 == 0 else (floor, ours):
            cpu0 = server.cpu_ns()
            got, wall = clients_run(server.port, clients, duration / slices, size)  # wall: its own clock
            lat[server.name] += got
            rps[server.name].append(len(got) / wall)
            cpu[server.name].append((server.cpu_ns() - cpu0) / 1e3 / len(got))
    print(
        f"  {clients} clients for {duration:.0f} s per server ({slices} slice(s) each, taking turns), each "
        "client sending its next request when its answer ended (ms)"
    )
    print("  | server | requests | p50 | p99.9 | max | requests/s | server CPU per request |")
    print("  |---|---:|---:|---:|---:|---:|---:|")
    out: dict[str, Any] = {"clients": clients, "duration_s": duration}
    for name in (ours.name, floor.name):
        values = lat[name]
        out[name] = {
            "requests": len(values),
            "p50_ms": _q(values, 0.5),
            "p999_ms": _q(values, 0.999),
            "max_ms": max(values),
            "rps": rps[name],
            "cpu_us": cpu[name],
        }
        cells = [str(len(values)), f"{_q(values, 0.5):.2f}", f"{_q(values, 0.999):.2f}", f"{max(values):.2f}"]
        cells += [_span(rps[name], 0), f"{_span(cpu[name], 0)} us"]
        print(f"  | {name} | " + " | ".join(cells) + " |")
    ratio = _ratios(rps[ours.name], rps[floor.name])
    ratio_cpu = _ratios(cpu[floor.name], cpu[ours.name])
    print(
        f"  target throughput >= 0.9x the floor (median of the slices): {clients} clients, requests/s "
        f"{statistics.median(ratio):.2f}x ({_span(ratio)}) -> raw clients' wall: "
        f"{'PASS' if statistics.median(ratio) >= 0.9 else 'MISS'}; server CPU per request (not a target) "
        f"{statistics.median(ratio_cpu):.2f}x ({_span(ratio_cpu)})"
    )
    out["ratio_rps"], out["ratio_cpu"] = ratio, ratio_cpu
    return out


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers: a smoke run")
    parser.add_argument("--clients", type=int, help="concurrent clients for the load run (500)")
    parser.add_argument("--timed", type=int, help="concurrent clients for timing fidelity (100)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per client (3)")
    parser.add_argument(
        "--procs", type=int, default=4, help="processes of the multi-process timing client (4)"
    )
    parser.add_argument("--big-mib", type=int, help="size of the big fixture in MiB (1024; 0 skips it)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    parser.add_argument(
        "--only", choices=["load", "timing", "big", "tail"], help="run one part only (tail: only this way)"
    )
    parser.add_argument("--sequential", type=int, default=5000, help="tail: sequential requests (5000)")
    parser.add_argument("--tail-rounds", type=int, default=5, help="tail: rounds of each server (5)")
    parser.add_argument(
        "--tail-blocks",
        type=_positive,
        default=60,
        help="tail: interleaved blocks of sequential requests (60)",
    )
    parser.add_argument("--tail-block", type=_positive, default=50, help="tail: requests per block (50)")
    parser.add_argument("--tail-clients", type=int, default=50, help="tail: clients of the timed run (50)")
    parser.add_argument(
        "--duration",
        type=float,
        help="tail: seconds of the clients run per server (120; --quick 10; 0 skips)",
    )
    parser.add_argument(
        "--no-fill", action="store_true", help="tail: skip filling the journal and the log (smoke runs)"
    )
    parser.add_argument(
        "--tail-client",
        choices=["raw", "httpx", "genai"],
        default="raw",
        help="tail: the client of the sequential part (raw; genai: google-genai's generate_content_stream) "
        "and the concurrent one (raw, else httpx)",
    )
    parser.add_argument("--serve-floor", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--serve-loop", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        floor_main(args.serve_floor)
        return
    if args.serve_loop:
        loop_main(args.serve_loop)
        return
    clients = args.clients or (100 if args.quick else 500)
    timed = args.timed or (20 if args.quick else 100)
    big = args.big_mib if args.big_mib is not None else (64 if args.quick else 1024)
    report: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    print(f"# sse-replay server benchmark (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        if args.only in (None, "load"):
            run_load(Path(tmp), clients, report)
        if args.only in (None, "timing"):
            run_timing(Path(tmp), timed, args.rounds, args.procs, report)
        if big and args.only in (None, "big"):
            run_big(Path(tmp), big, report)
        if args.only == "tail":
            duration = args.duration if args.duration is not None else (10.0 if args.quick else 120.0)
            run_tail(
                Path(tmp),
                args.sequential,
                args.tail_rounds,
                args.tail_clients,
                duration,
                report,
                fill=not args.no_fill,
                client=args.tail_client,
                blocks=args.tail_blocks,
                block=args.tail_block,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
