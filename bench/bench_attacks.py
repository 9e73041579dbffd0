"""Benchmark: what the server layer's defences cost, and whether h11 should read requests instead.

Run from the repository root::

    python bench/bench_attacks.py                # parse cost and service under trickling, a few seconds
    python bench/bench_attacks.py --only parse   # the request reader against h11 only

* **parse**: microseconds to read one request from bytes into method, target, headers and body, for
  ``RequestReader`` (hand-written, strict per RFC 9112) and for h11 (``Connection(SERVER)``, then events
  until ``EndOfMessage``), each on a fresh reader as each connection of a burst gets one. Two requests:
  the one bench/bench_server.py's burst sends (a POST with 4 headers and ``{}``), and one shaped like
  google-genai's (9 headers, a 120-byte JSON body). The figure is the best of 5 runs of 20,000. The one
  loop thread reads every request of a burst one after another, so this cost, times 100, is how much later
  the last request of a burst of 100 is answered.
* **trickle**: a normal client's request latency (p50/max over 50 sequential requests) against a live
  LoopbackServer, first alone, then while 500 connections trickle request bodies one byte at a time.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable

import h11

from sse_toolkit.server._http import RequestReader
from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayRequest, Reply

PATH = b"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
BURST = (
    b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n{}" % PATH
)
GENAI = (
    b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:41234\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Connection: keep-alive\r\nUser-Agent: google-genai-sdk/1.0 gl-python/3.11\r\n"
    b"x-goog-api-client: google-genai-sdk/1.0\r\nx-goog-api-key: AIzaSyEXAMPLEEXAMPLEEXAMPLEEXAMPLE\r\n"
    b"Content-Type: application/json\r\nContent-Length: 120\r\n\r\n" % PATH
) + b"x" * 120


def _ours(wire: bytes) -> None:
    reader = RequestReader(64 * 1024, 64 * 1024 * 1024)
    reader.feed(wire)
    assert reader.next_request() is not None


def _h11(wire: bytes) -> None:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(wire)
    while type(connection.next_event()) is not h11.EndOfMessage:
        pass


def _best(parse: Callable[[bytes], None], wire: bytes, count: int = 20_000, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(count):
            parse(wire)
        best = min(best, (time.perf_counter() - start) / count)
    return best


def bench_parse() -> None:
    print("## parse: one request read from bytes, fresh reader each (best of 5 x 20,000)")
    for name, wire in (("burst request", BURST), ("google-genai-like request", GENAI)):
        ours, theirs = _best(_ours, wire), _best(_h11, wire)
        print(
            f"  {name} ({len(wire)} bytes): RequestReader {ours * 1e6:.1f} us, h11 {theirs * 1e6:.1f} us "
            f"({theirs / ours:.1f}x); a burst of 100: {ours * 100e3:.2f} ms vs {theirs * 100e3:.2f} ms"
        )


def _handler(request: ReplayRequest) -> Reply:
    return Reply(200, [], [(None, b"fine")])


_handler.cpu_only = True  # type: ignore[attr-defined]


def _latencies(port: int, count: int = 50) -> list[float]:
    request = b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    took = []
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass
        took.append(time.perf_counter() - start)
    return took


def bench_trickle(tricklers: int = 500) -> None:
    print(f"## trickle: a normal client's latency, alone and next to {tricklers} trickling connections")
    with LoopbackServer(_handler) as server:
        alone = _latencies(server.port)
        socks: list[socket.socket] = []
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.5):
                for sock in socks:
                    try:
                        sock.send(b"x")
                    except OSError:
                        pass

        try:
            for _ in range(tricklers):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
                socks.append(sock)
            thread = threading.Thread(target=trickle, daemon=True)
            thread.start()
            busy = _latencies(server.port)
        finally:
            stop.set()
            for sock in socks:
                sock.close()
    for name, took in (("alone", alone), (f"next to {tricklers} tricklers", busy)):
        print(f"  {name}: p50 {statistics.median(took) * 1e3:.2f} ms, max {max(took) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["parse", "trickle"], help="run one part only")
    options = parser.parse_args()
    if options.only in (None, "parse"):
        bench_parse()
    if options.only in (None, "trickle"):
        bench_trickle()


if __name__ == "__main__":
    main()
