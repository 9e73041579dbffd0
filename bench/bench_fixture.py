"""Benchmark: big plain fixtures loaded and read, and the recorder's cost per exchange as its file grows.

Run from the repository root::

    python bench/bench_fixture.py                 # everything: 32 and 256 MiB files, 1500 exchanges
    python bench/bench_fixture.py --quick         # 8 and 32 MiB, 300 exchanges: a smoke run
    python bench/bench_fixture.py --only load     # or --only record

``load``: each file is written to a temporary directory, then a fresh interpreter runs ``load_fixture`` on it
and iterates every chunk (what serving it does), and reports the wall time and its peak RSS (VmHWM) above
the same interpreter's after loading a 1 KiB fixture. Shapes: ``one line`` (``data: xxx...``, no line end
until the last byte: the quadratic case of issue 13), ``line ends`` (one event, then nothing but CRLFs),
and ``events`` (4 KiB events, the usual shape). Linear time shows as a constant MiB/s across sizes; bounded
memory as a peak that does not grow with the file.

``record``: a loopback upstream answers every request with the same ~11 KiB SSE body (1500 exchanges make a
16 MB file, the figure of issue 13); a ``RecordingProxy`` records them one after another. Reported: the
median client round trip (which includes the write: the proxy writes an exchange before it sends its final
chunk) for the first and the last 100 exchanges, and the cost of one credential first seen at the end
(one pass over the whole file to remove it from what was written before).
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MiB = 1024 * 1024
_READ_ALL = """
import sys, time
from sse_toolkit import load_fixture
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])
small, big = sys.argv[1], sys.argv[2]
sum(len(c.data) for c in load_fixture(small).exchanges[0].chunks)
base = hwm()
start = time.perf_counter()
total = pieces = 0
for chunk in load_fixture(big).exchanges[0].chunks:
    total += len(chunk.data)
    pieces += 1
print(time.perf_counter() - start, hwm() - base, total, pieces)
"""


def _write(path: Path, size: int, shape: str) -> None:
    with open(path, "wb") as file:
        if shape == "one line":
            file.write(b"data: ")
            left = size - 8
            block = b"x" * MiB
            while left > 0:
                file.write(block[: min(left, MiB)])
                left -= MiB
            file.write(b"\n\n")
        elif shape == "line ends":
            file.write(b"data: x")
            left = size - 7
            block = b"\r\n" * (MiB // 2)
            while left > 0:
                file.write(block[: min(left, MiB)])
                left -= MiB
        else:
            event = b"data: " + b"e" * (4096 - 10) + b"\r\n\r\n"
            file.write(event * (size // len(event)))


def bench_load(sizes: list[int]) -> None:
    print("## load_fixture + every chunk, fresh interpreter per run")
    print("| shape | size | seconds | MiB/s | peak RSS above baseline | pieces |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        small = Path(directory) / "small.sse"
        small.write_bytes(b"data: x\n\n" * 100)
        for shape in ("one line", "line ends", "events"):
            for size in sizes:
                path = Path(directory) / "big.sse"
                _write(path, size, shape)
                result = subprocess.run(
                    [sys.executable, "-c", _READ_ALL, str(small), str(path)],
                    capture_output=True,
                    text=True,
                    timeout=3600,
                    check=True,
                )
                seconds, peak_kib, total, pieces = result.stdout.split()
                assert int(total) == size, (total, size)
                rate = size / MiB / float(seconds)
                print(
                    f"| {shape} | {size // MiB} MiB | {float(seconds):.2f} | {rate:.0f} | "
                    f"{int(peak_kib) / 1024:.1f} MiB | {pieces} |"
                )
                path.unlink()


class _Upstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _upstream(body: bytes) -> _Upstream:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % len(body)
    )

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            data = b""
            while b"\r\n\r\n" not in data:
                piece = sock.recv(65536)
                if not piece:
                    return
                data += piece
            sock.sendall(head + body)
            sock.close()

    server = _Upstream(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def bench_record(count: int) -> None:
    import http.client

    from sse_toolkit.record import RecordingProxy

    event = b'data: {"candidates": [{"content": {"parts": [{"text": "' + b"w" * 500 + b'"}]}}]}\r\n\r\n'
    body = event * 20  # ~11 KiB: 1500 of them make the 16 MB file of issue 13
    upstream = _upstream(body)
    times: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "rec.jsonl"
        with RecordingProxy(f"http://127.0.0.1:{upstream.server_address[1]}", out) as proxy:
            port = int(proxy.url.rsplit(":", 1)[1])
            for n in range(count):
                start = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("POST", f"/v1beta/models/m:streamGenerateContent?alt=sse&n={n}", body=b"{}")
                response = conn.getresponse()
                assert response.read() == body
                conn.close()
                times.append(time.perf_counter() - start)
            size = out.stat().st_size
            # A credential never seen before, in the last request: the file is searched (and would be
            # rewritten) to remove it from the exchanges written before.
            start = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request(
                "POST", "/v1beta/models/m:streamGenerateContent?alt=sse&key=AIzaSyNEWKEY-0123456789abc"
            )
            conn.getresponse().read()
            conn.close()
            new_key = time.perf_counter() - start
            proxy.check()
    upstream.shutdown()
    window = min(100, count // 3)
    first = statistics.median(times[:window]) * 1000
    last = statistics.median(times[-window:]) * 1000
    print(f"## recording proxy: {count} exchanges of {len(body)} bytes, file {size / 1e6:.1f} MB")
    print("| exchanges | median round trip (ms) |\n|---|---|")
    print(f"| first {window} | {first:.2f} |")
    print(f"| last {window} | {last:.2f} |")
    print(f"| one with a credential never seen before, at the end | {new_key * 1000:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", choices=["load", "record"])
    args = parser.parse_args()
    if os.name != "posix" or not Path("/proc/self/status").exists():
        sys.exit("this benchmark reads /proc (Linux)")
    if args.only in (None, "load"):
        bench_load([8 * MiB, 32 * MiB] if args.quick else [32 * MiB, 256 * MiB])
    if args.only in (None, "record"):
        bench_record(300 if args.quick else 1500)


if __name__ == "__main__":
    main()
