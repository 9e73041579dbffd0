"""Benchmark: CPU instructions per replay request and per decoded event, counted by valgrind (the same
count in every run).

Wall and CPU times on a shared machine move by a third between runs; instruction counts do not, so they
are what tells one version of the server from another. Three harnesses, each in one process, after a
warm-up that fills the journal to a small cap:

- ``path``: the request's Python path without sockets: ``RequestReader`` -> ``ReplayRequest`` -> the replay
  app -> one ``ReplyWriter`` step taking every piece due (as the loop does for a request alone in its turn).
- ``replay``: a ``ReplayServer`` on loopback and a raw-socket client in the same process, one keep-alive
  connection (the client's instructions are counted too; they are the same for every server version).
- ``loop``: ``LoopbackServer`` alone, its handler returning the fixture's pieces as an iterator, same client.
- ``floor``: bench_server.py's raw asyncio floor (finds the end of the head, writes the replay server's
  captured answer in one write) on a thread of the same process, same client.
- ``replay-httpx``, ``loop-httpx``, ``floor-httpx``, ``replay-genai``, ``floor-genai``: the replay server,
  the server layer alone and the floor driven by a real client instead of the raw socket: httpx (a
  streamed POST, the body read by ``iter_bytes``) and google-genai (``generate_content_stream``, the
  responses iterated). A sequential
  client waits for each answer, so client + server instructions per request are what its requests/s rest
  on: floor / replay is the throughput ratio that client sees, free of the machine's load.

Decoding, per unit of a Gemini stream fed in 4 KiB chunks (N passes over it, the unit count printed):

- ``parse``, ``parse-launchdarkly``, ``parse-httpx-sse``: bench_parser.py's drivers on its gemini corpus
  (20k events), every field of every event read; per event.
- ``typed``, ``typed-httpx-sse``, ``typed-deltas``, ``typed-deltas-httpx-sse``: bench_gemini.py's runners
  on its two corpora, 500 responses of the real captures or of text deltas (``iter_responses`` with the
  text and token count read, against httpx-sse + ``json.loads`` and the same walk over the dicts); per
  response.

Instructions per unit = (count with N requests or passes - count with none) / units, each count a run of
this script under ``valgrind --tool=cachegrind --cache-sim=no`` with ``PYTHONHASHSEED=0``. The fixture is
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

HARNESSES = (
    "path",
    "replay",
    "loop",
    "floor",
    "replay-httpx",
    "loop-httpx",
    "floor-httpx",
    "replay-genai",
    "floor-genai",
)
DEFAULT = ("path", "replay", "loop", "floor")
DECODERS = (
    "parse",
    "parse-launchdarkly",
    "parse-httpx-sse",
    "typed",
    "typed-httpx-sse",
    "typed-deltas",
    "typed-deltas-httpx-sse",
)
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


def _server(fixture: Path, which: str) -> tuple[str, object]:
    """Start the server of harness ``which``: (its base URL, its stop function)."""
    from sse_toolkit.replay import ReplayServer

    replay = ReplayServer(fixture, speed=0)
    replay.app.journal.max_entries = 200
    server: object = replay
    if which.startswith("floor"):
        replay.start()
        with socket.create_connection(("127.0.0.1", replay.port)) as sock:
            sock.sendall(
                REQUEST[:-2].replace(b"Content-Length", b"Connection: close\r\nContent-Length") + b"{}"
            )
            closing = b""
            while got := sock.recv(65536):
                closing += got
        replay.stop()
        return _floor(closing.replace(b"Connection: close\r\n", b""))
    if which.startswith("loop"):
        from sse_toolkit.fixture import load_fixture
        from sse_toolkit.server._lifecycle import LoopbackServer
        from sse_toolkit.server._loop import Reply

        pieces = [(0.0, chunk.data) for chunk in load_fixture(fixture).exchanges[0].chunks]

        class Pieces:
            cpu_only = True

            def __call__(self, request: object) -> Reply:
                return Reply(200, [("Content-Type", "text/event-stream")], iter(pieces))

        server = LoopbackServer(Pieces())
        server.log_max_requests = 200  # type: ignore[attr-defined]
    server.start()  # type: ignore[attr-defined]
    return f"http://127.0.0.1:{server.port}", server.stop  # type: ignore[attr-defined]


def _floor(answer: bytes) -> tuple[str, object]:
    """bench_server.py's floor protocol on an asyncio loop in a thread, answering ``answer`` (kept alive)."""
    import asyncio
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_server import floor_protocol

    Floor = floor_protocol([answer], [answer])
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Floor, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    return f"http://127.0.0.1:{port}", stop


def _socket_harness(fixture: Path, which: str) -> tuple[object, object]:
    url, stop_server = _server(fixture, which)
    port = int(url.rsplit(":", 1)[1])
    if which.endswith("-httpx"):
        import httpx

        http = httpx.Client(base_url=url)

        def one() -> None:
            with http.stream("POST", STREAM, json={}, headers={"x-goog-api-key": "k"}) as response:
                for _ in response.iter_bytes():
                    pass

        def stop() -> None:
            http.close()
            stop_server()  # type: ignore[operator]

        return one, stop
    if which.endswith("-genai"):
        from google import genai

        client = genai.Client(api_key="k", http_options={"base_url": url})

        def one() -> None:
            for _ in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
                pass

        def stop_genai() -> None:
            client.close()
            stop_server()  # type: ignore[operator]

        return one, stop_genai
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one_raw() -> None:
        sock.sendall(REQUEST)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            got = sock.recv(65536)
            assert got, "the server closed the connection"
            data += got

    def stop_raw() -> None:
        sock.close()
        stop_server()  # type: ignore[operator]

    return one_raw, stop_raw


def _decoder(which: str) -> tuple[object, int]:
    """(one pass over the corpus, its units) for decoding harness ``which``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if which.startswith("typed"):
        import bench_gemini

        corpus = "text deltas" if "deltas" in which else "real captures"
        objects = bench_gemini._corpus_objects(500)[corpus]
        chunks = bench_gemini._chunked(b"".join(map(bench_gemini.encode_sse_event, objects)))
        runner = bench_gemini._httpx_sse_json if which.endswith("httpx-sse") else bench_gemini._ours
        return (lambda: runner(chunks)), runner(chunks)
    import _corpora
    import bench_parser

    chunks = _corpora.chunked(_corpora.gemini_stream())
    made = {"parse": bench_parser._ours, "parse-launchdarkly": bench_parser._launchdarkly}
    made["parse-httpx-sse"] = bench_parser._httpx_sse
    timed = made[which]().timed
    return (lambda: timed(chunks)), timed(chunks)[0]


def run(which: str, count: int) -> None:
    """Run ``count`` requests or passes through harness ``which`` (after the warm-up)."""
    if which in DECODERS:
        one, units = _decoder(which)
        for _ in range(count):
            one()  # type: ignore[operator]
        print(f"units {units}")
        return
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


def _instructions(python: str, which: str, count: int) -> tuple[int, int]:
    """(instructions, units per pass) of ``count`` requests or passes under valgrind."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [python, __file__, "--run", which, str(count)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench: {which} under valgrind failed:\n{done.stderr[-2000:]}")
    units = re.search(r"^units (\d+)$", done.stdout, re.MULTILINE)
    return int(found[1].replace(",", "")), int(units[1]) if units else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter whose sse_toolkit is counted"
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests counted per harness (1000)")
    parser.add_argument("--passes", type=int, default=5, help="passes over a decoding corpus (5)")
    parser.add_argument(
        "--only",
        choices=HARNESSES + DECODERS,
        action="append",
        help=f"one harness (repeatable; default {', '.join(DEFAULT)})",
    )
    parser.add_argument("--run", nargs=2, metavar=("HARNESS", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run[0], int(args.run[1]))
        return
    print(f"# instructions per replay request, or per event or response decoded (valgrind; {args.python})")
    for which in args.only or DEFAULT:
        count = args.passes if which in DECODERS else args.requests
        (many, units), (none, _) = (_instructions(args.python, which, n) for n in (count, 0))
        unit = "per response" if which.startswith("typed") else "per event" if which in DECODERS else ""
        print(f"{which:18s} {(many - none) / (count * units) / 1000:8.1f} k {unit}", flush=True)


if __name__ == "__main__":
    main()
