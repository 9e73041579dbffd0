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
  sent only once every process is done; they sleep until the common start, never spin), giving both the clock read right after the recv and the kernel's
  receive stamp of the data (``SO_TIMESTAMPNS``: when the server's bytes reached the client's socket, the
  client's own delay removed; for TCP it is the stamp of the last segment a read took, so it can only
  overstate); and (c) the server's own lateness for the same chunks, written minus due, recorded inside
  the server process (the opt-in ``SSE_REPLAY_LATENESS_FILE`` hook of ``_replay_server``: off, it costs
  a None check) and split by round.

  What it showed (6 runs of the single-loop server; the figures before it, a thread per connection, in
  brackets): the lateness is the server's own, the asyncio client adds ~0.1-1.5 ms at p50 and up to ~4 ms
  at p99. Steady: server p99 0.6-0.9 ms, max 1.5-4.3 ms; kernel stamps p99 0.6-0.8 ms. Burst with a time
  to first byte: server p99 1.4-3.4 ms, max 2.3-6.4 ms; kernel stamps p99 1.5-2.2 ms [server p99 0.7-1.7
  ms]. Burst with the first event at 0: server p99 3.8-8.6 ms, max 6.4-15.9 ms; kernel stamps the same
  [p99 21-34 ms, max 30-65 ms]: the 100 requests of the burst are read, parsed, routed and answered one
  after another at ~50-60 us each (the client processes, sending on the same 2 cores, take the first
  1-3 ms: a server that only accepts and writes a canned answer sees its last first event 1.4-3.7 ms
  late), so the last ones answered send their first event late. Fresh server: p99 4.3-8.4 ms.
* **big fixture**: a ``--big-mib`` plain SSE file (4 KiB events) is generated in a temporary directory
  (deleted after); the peak RSS (``/usr/bin/time -v`` when present, else VmHWM) of
  ``sse-replay --speed 0 big.sse > /dev/null``, ``sse-toolkit parse big.sse > /dev/null``, and of a
  ``sse-replay --serve`` process while curl downloads the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
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
        data = ('data: {"candidates": [{"content": {"parts": [{"text": "' + text
                + '"}], "role": "model"}, "index": ' + str(n) + "}]}\r\n\r\n").encode()
        chunks.append(Chunk(data, round(t, 6)))
        t += rng.uniform(0.01, 0.09)
    return Fixture([Exchange(headers=[("Content-Type", "text/event-stream")], chunks=chunks)])


class Server:
    """``sse-replay --serve`` in its own process."""

    def __init__(self, fixture: Path, speed: float, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([*_tool("sse-replay"), "--serve", "--speed", str(speed), str(fixture)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
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
    request = (b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
               b"Connection: close\r\n\r\n{}" % PATH.encode())
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


async def many(port: int, clients: int, offsets: list[float] | None, repeat: int = 1,
               spread: float = 0.0) -> tuple[list[Any], float]:
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
    request = (b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
               b"Connection: close\r\n\r\n{}" % PATH.encode())
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
    # them apart, would otherwise take CPU from the server while it still writes the other streams' last events.
    done.wait()
    conn.send(records)
    conn.close()


def _lean_deltas(sent: int, reads: list[tuple[bytes, int, int]], offsets: list[float]
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


def many_lean(port: int, clients: int, offsets: list[float], procs: int, spread: float = 0.0
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
    print(f"## load: {clients} concurrent streams at --speed 1 ({len(offsets)} events, {offsets[-1]:.2f} s recorded)")
    print(f"  byte-identical and complete: {len(good)}/{clients}  wall {wall:.2f} s  errors: {errors or 'none'}")
    print(f"  timing under this load: p50 {percentile(deltas, 50):.2f} ms  p99 {percentile(deltas, 99):.2f} ms  "
          f"max {max(deltas):.2f} ms")
    report["load"] = {"clients": clients, "ok": len(good), "wall_s": round(wall, 3), "errors": errors,
                      "p50_ms": percentile(deltas, 50), "p99_ms": percentile(deltas, 99), "max_ms": max(deltas)}

    fast = Server(path, 0.0)
    try:
        results, wall = asyncio.run(many(fast.port, clients, None, repeat=4))
    finally:
        fast.stop()
    good = [r for r in results if not isinstance(r, BaseException) and r[0] and r[1] == expected]
    total = len(good) * len(expected)
    print(f"## throughput: {clients} concurrent clients x 4 requests at --speed 0")
    print(f"  byte-identical and complete: {len(good)}/{len(results)}  {len(good) / wall:.0f} requests/s  "
          f"{total / wall / 1e6:.1f} MB/s  wall {wall:.2f} s")
    report["throughput"] = {"requests": len(results), "ok": len(good), "requests_per_s": round(len(good) / wall, 1),
                            "mb_per_s": round(total / wall / 1e6, 2)}


def _timing_line(label: str, deltas: list[float], firsts: list[float], failures: int) -> dict[str, Any]:
    early = sum(d < 0 for d in deltas)  # the client's clock read before its send: never early in truth
    p50, p99, worst = percentile(deltas, 50), percentile(deltas, 99), max(deltas)
    verdict = "meets the 5 ms p99 target" if p99 <= 5 else "misses the 5 ms p99 target"
    verdict += ", within the 20 ms floor" if worst <= 20 else ", over the 20 ms floor"
    print(f"  {label}: {len(deltas)} events  p50 {p50:.2f} ms  p90 {percentile(deltas, 90):.2f} ms  p99 {p99:.2f} ms  "
          f"max {worst:.2f} ms  first event p50 {percentile(firsts, 50):.2f} / max {max(firsts):.2f} ms  "
          f"early: {early}{f' (earliest {min(deltas):.3f} ms)' if early else ''}  failed: {failures}  -> {verdict}")
    return {"events": len(deltas), "p50_ms": p50, "p90_ms": percentile(deltas, 90), "p99_ms": p99, "max_ms": worst,
            "first_event_p50_ms": percentile(firsts, 50), "first_event_max_ms": max(firsts), "early": early,
            "min_ms": min(deltas),
            "failed": failures}


def _plain_line(label: str, deltas: list[float]) -> dict[str, Any]:
    p50, p99, worst = percentile(deltas, 50), percentile(deltas, 99), max(deltas)
    print(f"    {label}: {len(deltas)} events  p50 {p50:.2f} ms  p90 {percentile(deltas, 90):.2f} ms  "
          f"p99 {p99:.2f} ms  max {worst:.2f} ms  early: {sum(d < 0 for d in deltas)}")
    return {"events": len(deltas), "p50_ms": p50, "p90_ms": percentile(deltas, 90), "p99_ms": p99,
            "max_ms": worst}


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
            out.setdefault(key, []).extend((written - due) * 1000 for due, written in records if start <= due <= end)
        return out


def run_timing(tmp: Path, clients: int, rounds: int, procs: int, report: dict[str, Any]) -> None:
    fixture = paced_fixture(seed=11)
    path = tmp / "timed.jsonl"
    save_fixture(path, fixture)
    offsets = [c.t or 0.0 for c in fixture.exchanges[0].chunks]
    print(f"## timing fidelity: {clients} concurrent streams at --speed 1 ({len(offsets)} events over "
          f"{offsets[-1]:.2f} s); arrival of each event's last byte minus its recorded offset, from the request send")
    print(f"  each shape is measured by two clients, {rounds} round(s) each, taking turns on the same server:\n"
          f"  (a) ONE asyncio loop in this process reading all {clients} sockets (the historic figure; its own work "
          f"is in it);\n  (b) {procs} processes x {-(-clients // procs)} sockets, bare selectors loops: the clock read "
          f"right after recv, and the kernel's receive stamp of the data (SO_TIMESTAMPNS, the client's delay "
          f"removed);\n  and the server's own lateness for the same chunks (written minus due, in the server process)")
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
            [d * 1000 for r in good for d in r[2]], [r[2][0] * 1000 for r in good], len(results) - len(good))
        for key, label, spread in (("steady", "steady (starts spread over 1 s, all streams overlap)", 1.0),
                                   ("burst", "burst (all requests sent in the same instant)", 0.0)):
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
        _timing_shape("burst_ttfb", "burst, first event recorded 200 ms after the request (as in a real recording)",
                      server.port, clients, offsets, rounds, procs, 0.0, late_ttfb, out)
    finally:
        server.stop()
    print("  server side (written minus due, measured in the server process, same rounds as above):")
    for lateness in (late, late_ttfb):
        for key, deltas in lateness.per_key().items():
            if deltas:
                shape, _, client = key.partition("_procs")
                who = "(b) multi-process client's rounds" if client or key.endswith("_procs") else \
                    "(a) asyncio client's rounds"
                out[key + "_server"] = _plain_line(f"{shape.replace('_', ' ')}, {who}", deltas)
    report["timing"] = out


def _timing_shape(key: str, label: str, port: int, clients: int, offsets: list[float], rounds: int, procs: int,
                  spread: float, late: _Lateness, out: dict[str, Any]) -> None:
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
    out[key + "_procs"] = _timing_line(f"  (b) {procs} processes, clock read after recv", user, user_firsts,
                                       lean_failures)
    out[key + "_procs_kernel"] = _timing_line(f"  (b) {procs} processes, kernel receive stamp", kernel,
                                              kernel_firsts, lean_failures)


def _peak_rss_kib(command: list[str]) -> tuple[int, float]:
    """Peak RSS of ``command`` (stdout to /dev/null) and its wall time."""
    start = time.perf_counter()
    if shutil.which("time") and Path("/usr/bin/time").exists():
        result = subprocess.run(["/usr/bin/time", "-v", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                check=True)
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
    for label, command in (("sse-replay --speed 0 big.sse", [*_tool("sse-replay"), "--speed", "0", str(path)]),
                           ("sse-toolkit parse big.sse", [*_tool("sse-toolkit"), "parse", str(path)])):
        peak, wall = _peak_rss_kib(command)
        print(f"  {label} > /dev/null: peak RSS {peak / 1024:.1f} MiB, {wall:.1f} s ({size / wall / 2**20:.0f} MiB/s)")
        out[label] = {"peak_rss_kib": peak, "wall_s": round(wall, 2)}
    server = Server(path, 0.0)
    try:
        before = server.hwm_kib()
        start = time.perf_counter()
        curl = subprocess.run(["curl", "-sS", "-o", os.devnull, "-w", "%{size_download}", server.url + "/big"],
                              capture_output=True, check=True)
        wall = time.perf_counter() - start
        peak = server.hwm_kib()
    finally:
        server.stop()
    got = int(curl.stdout)
    print(f"  sse-replay --serve, read by curl: {got} bytes ({'all' if got == size else 'SHORT'}), server peak RSS "
          f"{peak / 1024:.1f} MiB (at start {before / 1024:.1f} MiB), {wall:.1f} s ({size / wall / 2**20:.0f} MiB/s)")
    out["served"] = {"peak_rss_kib": peak, "start_rss_kib": before, "bytes": got, "wall_s": round(wall, 2)}
    report["big"] = out
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers: a smoke run")
    parser.add_argument("--clients", type=int, help="concurrent clients for the load run (500)")
    parser.add_argument("--timed", type=int, help="concurrent clients for timing fidelity (100)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per client (3)")
    parser.add_argument("--procs", type=int, default=4, help="processes of the multi-process timing client (4)")
    parser.add_argument("--big-mib", type=int, help="size of the big fixture in MiB (1024; 0 skips it)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    parser.add_argument("--only", choices=["load", "timing", "big"], help="run one part only")
    args = parser.parse_args()
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
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
