"""Benchmark: CPU instructions per replay request, counted by valgrind (the same count in every run).

Wall and CPU times on a shared machine move by a third between runs; instruction counts do not, so they
are what tells one version of the server from another. Three harnesses, each in one process, after a
warm-up that fills the journal to a small cap:

- ``path``: the request's Python path without sockets: ``RequestReader`` -> ``ReplayRequest`` -> the replay
  app -> one ``ReplyWriter`` step taking every piece due (as the loop does for a request alone in its turn).
- ``replay``: a ``ReplayServer`` on loopback and a raw-socket client in the same process, one keep-alive
  connection (the client's instructions are counted too; they are the same for every server version).
- ``loop``: ``LoopbackServer`` alone, its handler returning the fixture's pieces as an iterator, same client.

Instructions per request = (count with N requests - count with none) / N, each count a run of this script
under ``valgrind --tool=cachegrind --cache-sim=no`` with ``PYTHONHASHSEED=0``. The fixture is
bench_server.py's 12-event Gemini answer at ``--speed 0``.

    python bench/bench_instructions.py                       # the three, N=1000 (a few minutes; valgrind)
    python bench/bench_instructions.py --python OTHER/bin/python   # the same for another installed version
    python bench/bench_instructions.py --run path 100        # one harness without valgrind (what it runs)
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HARNESSES = ("path", "replay", "loop")
STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
REQUEST = (
    b"POST " + STREAM.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"x-goog-api-key: k\r\nContent-Length: 2\r\n\r\n{}"
)
WARM_UP = 300


def _fixture(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_server import gemini_12

    path = folder / "gemini-12.sse"
    path.write_bytes(gemini_12())
    return path


def _path_harness(fixture: Path) -> object:
    from sse_toolkit.replay import ReplayServer
    from sse_toolkit.server._http import ReplyWriter, RequestReader
    from sse_toolkit.server._loop import ReplayRequest

    app = ReplayServer(fixture, speed=0).app
    app.journal.max_entries = 200
    reader = RequestReader(65536, 1 << 26)

    def one() -> None:
        reader.feed(REQUEST)
        parsed = reader.next_request()
        assert parsed is not None
        path, _, query = parsed.target.partition("?")
        reply = app(ReplayRequest(parsed.method, path, query, parsed.headers, parsed.body))
        writer = ReplyWriter(reply, time.monotonic(), "POST", False, merge_head=True)
        assert writer.step(time.monotonic(), 64).end is not None
        writer.close()

    return one


def _socket_harness(fixture: Path, which: str) -> tuple[object, object]:
    if which == "replay":
        from sse_toolkit.replay import ReplayServer

        server: object = ReplayServer(fixture, speed=0)
        server.app.journal.max_entries = 200  # type: ignore[attr-defined]
    else:
        from sse_toolkit.fixture import load_fixture
        from sse_toolkit.server._loop import LoopbackServer, Reply

        pieces = [(0.0, chunk.data) for chunk in load_fixture(fixture).exchanges[0].chunks]

        class Pieces:
            cpu_only = True

            def __call__(self, request: object) -> Reply:
                return Reply(200, [("Content-Type", "text/event-stream")], iter(pieces))

        server = LoopbackServer(Pieces())
        server.log_max_requests = 200  # type: ignore[attr-defined]
    server.start()  # type: ignore[attr-defined]
    client = socket.create_connection(("127.0.0.1", server.port))  # type: ignore[attr-defined]
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one() -> None:
        client.sendall(REQUEST)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            got = client.recv(65536)
            assert got, "the server closed the connection"
            data += got

    def stop() -> None:
        client.close()
        server.stop()  # type: ignore[attr-defined]

    return one, stop


def run(which: str, count: int) -> None:
    """Run ``count`` requests through harness ``which`` (after the warm-up)."""
    with tempfile.TemporaryDirectory() as folder:
        fixture = _fixture(Path(folder))
        stop = None
        if which == "path":
            one = _path_harness(fixture)
        else:
            one, stop = _socket_harness(fixture, which)
        for _ in range(WARM_UP + count):
            one()  # type: ignore[operator]
        if stop is not None:
            stop()  # type: ignore[operator]


def _instructions(python: str, which: str, count: int) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [python, __file__, "--run", which, str(count)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench: {which} under valgrind failed:\n{done.stderr[-2000:]}")
    return int(found[1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter whose sse_toolkit is counted"
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests counted per harness (1000)")
    parser.add_argument("--only", choices=HARNESSES, action="append", help="one harness (repeatable)")
    parser.add_argument("--run", nargs=2, metavar=("HARNESS", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run[0], int(args.run[1]))
        return
    print(f"# instructions per replay request (valgrind; {args.python})")
    for which in args.only or HARNESSES:
        per = _instructions(args.python, which, args.requests) - _instructions(args.python, which, 0)
        print(f"{which:8s} {per / args.requests / 1000:8.1f} k", flush=True)


if __name__ == "__main__":
    main()
