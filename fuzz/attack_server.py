"""Attack: replay issue 13's attacks on the server layer against a live server, and say which held.

The server runs in a child process (as users run it), on 127.0.0.1 only; every client has a timeout and
every attack a bounded count, so a run ends even against a server that hangs. Attacks (issue 13 items):

framing   (1, 14) lenient or hostile framing, each on its own connection, then a probe: a Content-Length
          of Latin-1 superscripts (B9/B2/B3, which killed the loop), of thousands of digits, signed, hex,
          differing duplicates; Transfer-Encoding ``xchunked``, ``chunked, gzip``, with Content-Length, in
          HTTP/1.0; chunk sizes ``0x10``, ``1_0``, ``+3``, an empty size line; NBSP, NEL and tab between
          request-line words; control characters in header values. Each must get its status (400, 413,
          501), the lenient-but-legal ones (identical duplicate lengths) a 200, and the probe must be served.
garbage   (1) random mutations of valid requests (byte flips toward the bytes above, inserted hostile
          header lines, cuts), each sent then half-closed: the answer is an HTTP status line or a close,
          never a hang, and a probe every so often is served.
delays    (2) responses whose next piece (or head) is due at 1e9 s, 3e6 s, 1e300 s, infinity or NaN, from a
          handler on the loop and one on a worker thread (against the replay app: the fault header's
          ``latency``, ``event_latency`` and ``jitter``), kept open while the loop's stale timers pass; then
          probes must be served.
trickle   (3) many connections send a head and then their body one byte at a time, past the connection
          cap; a normal client asking all along must be served every time, and every trickler must be
          answered (408 at the whole-request deadline, or 503 when it yields its place) and closed.
overcap   (3) with every place taken by a response in progress, clients sending a body bigger than the
          socket buffers must each read a whole 503 (no reset, no broken pipe).
Last, the server's collected errors must be none (a refusal is an answer, not an error).

Run it from the repository root::

    python fuzz/attack_server.py --quick                  # seconds: small counts (what the test runs)
    python fuzz/attack_server.py                          # the issue's scale: 1100 tricklers for 45 s
    python fuzz/attack_server.py --target replay          # the same against the Gemini replay app
    python fuzz/attack_server.py --only framing,delays --json out.json

Exit status 0 when every attack held, 1 otherwise; each case is printed as PASS or FAIL with what it got.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import pathlib
import random
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
ATTACKS = ("framing", "garbage", "delays", "trickle", "overcap")


class Result(NamedTuple):
    attack: str
    case: str
    passed: bool
    detail: str


class Scale(NamedTuple):
    garbage: int  # random requests
    probe_every: int  # a probe after this many of them
    tricklers: int
    cap: int  # the server's max_connections
    trickle_every: float  # seconds between two bytes of one trickler
    trickle_for: float  # how long the trickling goes on
    request_timeout: float  # the server's whole-request deadline
    overcap: int  # clients over the cap


QUICK = Scale(300, 50, 60, 40, 0.2, 3.0, 1.0, 10)
FULL = Scale(2000, 100, 1100, 1024, 5.0, 45.0, 30.0, 100)

# -- the server, in a child process -------------------------------------------------------------------


def _test_handler(request: Any) -> Any:
    """``/delay?t=T&where=piece|head``: a first piece now and the next at T s (or the head at T s);
    ``/echo``: the body's length; ``/held``: a piece now and the next in 10 minutes; else ``fine``."""
    from sse_toolkit.server._loop import Reply

    if request.path == "/delay":
        when = float(request.params["t"])
        if request.params.get("where") == "head":
            return Reply(200, [], [(None, b"data: a\n\n")], head_t=when)
        return Reply(200, [], [(None, b"data: a\n\n"), (when, b"data: late\n\n")])
    if request.path == "/echo":
        return Reply(200, [], [(None, b"%d" % len(request.body))])
    if request.path == "/held":
        return Reply(200, [], [(None, b"data: a\n\n"), (600.0, b"data: b\n\n")])
    return Reply(200, [], [(None, b"fine")])


def serve_child(target: str, cap: int, request_timeout: float) -> None:
    """The child: start the servers, print their ports as one JSON line, wait for a line on stdin, then
    print what they collected (errors) as one JSON line and stop."""
    servers: dict[str, Any] = {}
    if target == "replay":
        from sse_toolkit import ReplayServer

        directory = pathlib.Path(tempfile.mkdtemp(prefix="attack-"))
        (directory / "fine.sse").write_bytes(b"data: fine\n\n")
        slow = b"".join(b"data: %d\n\n" % i for i in range(2000))  # 100 s at the default pace
        (directory / "held.sse").write_bytes(slow)
        servers["loop"] = ReplayServer(directory, speed=1)
        servers["held"] = ReplayServer(directory / "held.sse", speed=1)
    else:
        from sse_toolkit.server._lifecycle import LoopbackServer

        def on_loop(request: Any) -> Any:
            return _test_handler(request)

        def on_thread(request: Any) -> Any:
            return _test_handler(request)

        on_loop.cpu_only = True  # type: ignore[attr-defined]
        servers["loop"] = LoopbackServer(on_loop)
        servers["thread"] = LoopbackServer(on_thread)
        servers["held"] = LoopbackServer(on_loop)
    for name, server in servers.items():
        server.header_timeout = 0.2  # stale head-deadline timers leave the heap at once (see delays)
        server.request_timeout = request_timeout
        server.max_connections = 3 if name == "held" else cap
        server.start()
    print(json.dumps({name: server.port for name, server in servers.items()}), flush=True)
    sys.stdin.readline()
    report = {}
    for name, server in servers.items():
        errors = [f"{type(e).__name__}: {e}" for e in server.errors]
        loop = getattr(server, "http", server)._loop  # a ReplayServer composes a LoopbackServer
        alive = loop is not None and loop.thread.is_alive()
        report[name] = {"errors": errors, "alive": alive}
        server.stop()
    print(json.dumps(report), flush=True)


class Child:
    """The server process: ``ports`` by server name; :meth:`finish` stops it and returns its report;
    :meth:`restart` replaces a server that an attack stopped (so that the next case is judged alone)."""

    def __init__(self, target: str, scale: Scale) -> None:
        self.target, self.scale = target, scale
        self._start()

    def restart(self) -> None:
        self.finish()
        self._start()

    def _start(self) -> None:
        target, scale = self.target, self.scale
        command = [
            sys.executable,
            __file__,
            "--serve-child",
            target,
            str(scale.cap),
            str(scale.request_timeout),
        ]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the server process did not start")
        self.ports: dict[str, int] = json.loads(line)

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            report: dict[str, Any] = json.loads(self.proc.stdout.readline() or "{}")
            self.proc.wait(timeout=30)
            return report
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


# -- clients ----------------------------------------------------------------------------------------


def exchange(port: int, data: bytes, timeout: float = 5.0, half_close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes. Raises OSError (a reset, a
    broken pipe, a timeout: the server hung)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        while piece := sock.recv(65536):
            got += piece
        return got


def status_of(answer: bytes) -> int | None:
    if answer[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 ") and answer[9:12].isdigit():
        return int(answer[9:12])
    return None


def probe(port: int, path: str) -> tuple[bool, str]:
    """A normal client: one GET, which must get a 200."""
    try:
        answer = exchange(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    except OSError as exc:
        return False, f"probe failed: {type(exc).__name__}: {exc}"
    return status_of(answer) == 200, f"probe got {answer[:40]!r}"


def _post(*headers: bytes, body: bytes = b"", line: bytes = b"POST /fine HTTP/1.1") -> bytes:
    fields = b"".join(h + b"\r\n" for h in (b"Host: x", b"Connection: close", *headers))
    return line + b"\r\n" + fields + b"\r\n" + body


def _chunked(body: bytes) -> bytes:
    return _post(b"Transfer-Encoding: chunked", body=body)


FRAMING: list[tuple[str, bytes, set[int]]] = [
    ("content-length superscript one (B9)", _post(b"Content-Length: \xb9", body=b"a"), {400}),
    ("content-length superscript two (B2)", _post(b"Content-Length: \xb2", body=b"ab"), {400}),
    ("content-length superscript three (B3)", _post(b"Content-Length: \xb3", body=b"abc"), {400}),
    ("content-length of 5000 digits", _post(b"Content-Length: " + b"9" * 5000), {413}),
    ("content-length signed", _post(b"Content-Length: +3", body=b"abc"), {400}),
    ("content-length hex", _post(b"Content-Length: 0x3", body=b"abc"), {400}),
    ("content-length NBSP", _post(b"Content-Length: 3\xa0", body=b"abc"), {400}),
    (
        "content-length differing duplicates",
        _post(b"Content-Length: 3", b"Content-Length: 4", body=b"abcd"),
        {400},
    ),
    (
        "content-length identical duplicates",
        _post(b"Content-Length: 3", b"Content-Length: 3", body=b"abc"),
        {200},
    ),
    ("transfer-encoding xchunked", _post(b"Transfer-Encoding: xchunked", body=b"0\r\n\r\n"), {400}),
    ("transfer-encoding chunked, gzip", _post(b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"), {400}),
    ("transfer-encoding gzip, chunked", _post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), {501}),
    (
        "transfer-encoding with content-length",
        _post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        {400},
    ),
    (
        "transfer-encoding in HTTP/1.0",
        _post(b"Transfer-Encoding: chunked", body=b"0\r\n\r\n", line=b"POST /fine HTTP/1.0"),
        {400},
    ),
    ("chunk size 0x10", _chunked(b"0x10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"), {400}),
    ("chunk size 1_0", _chunked(b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"), {400}),
    ("chunk size +3", _chunked(b"+3\r\nabc\r\n0\r\n\r\n"), {400}),
    ("chunk size empty line", _chunked(b"\r\nabc\r\n0\r\n\r\n"), {400}),
    ("chunk size superscript", _chunked(b"\xb3\r\nabc\r\n0\r\n\r\n"), {400}),
    ("chunked, well formed", _chunked(b"3\r\nabc\r\n0\r\n\r\n"), {200}),
    ("request line NBSP", b"GET\xa0/fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {400}),
    ("request line NEL", b"GET\x85/fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {400}),
    ("request line tab", b"GET\t/fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {400}),
    ("header value NUL", _post(b"X-A: a\x00b", b"Content-Length: 0"), {400}),
    ("header value bare CR", _post(b"X-A: a\rb", b"Content-Length: 0"), {400}),
    ("header name space before colon", _post(b"Content-Length : 0"), {400}),
]


def attack_framing(child: Child, probe_path: str, scale: Scale) -> Iterator[Result]:
    for name, wire, expected in FRAMING:
        port = child.ports["loop"]
        try:
            answer = exchange(port, wire)
            got: object = status_of(answer)
        except OSError as exc:
            got = f"{type(exc).__name__}"
        served, said = probe(port, probe_path)
        passed = got in expected and served
        yield Result("framing", name, passed, f"status {got} (want {sorted(expected)}); {said}")
        if not served:
            child.restart()  # the next case against a server that runs


_HOSTILE = [
    b"\xb9",
    b"\xb2",
    b"\xb3",
    b"\xa0",
    b"\x85",
    b"\x00",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b"0",
    b"9",
    b"f",
    b"-",
    b"+",
    b"x",
    b"_",
]
_HOSTILE_LINES = [
    b"Content-Length: \xb2\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: xchunked\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Expect: 100-continue\r\n",
    b"X-Fold: a\r\n b\r\n",
    b"\r\n",
    b"0x10\r\n",
]
_BASES = [
    b"GET /fine HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    _post(b"Content-Type: application/json", b"Content-Length: 2", body=b"{}"),
    _chunked(b"3\r\nabc\r\n0\r\n\r\n"),
]


def mutate(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(_BASES))
    for _ in range(rng.randint(1, 4)):
        where = rng.randrange(len(data) + 1)
        kind = rng.random()
        if kind < 0.4 and data:
            data[min(where, len(data) - 1)] = (
                rng.choice(_HOSTILE)[0] if rng.random() < 0.7 else rng.randrange(256)
            )
        elif kind < 0.7:
            data[where:where] = rng.choice(_HOSTILE_LINES)
        elif kind < 0.85:
            del data[where : where + rng.randint(1, 8)]
        else:
            data[where:where] = rng.choice(_HOSTILE) * rng.randint(1, 3)
    return bytes(data)


def attack_garbage(ports: dict[str, int], probe_path: str, scale: Scale, seed: int) -> Iterator[Result]:
    port, rng = ports["loop"], random.Random(seed)
    hung: list[str] = []
    odd: list[str] = []
    probes_failed = 0
    for n in range(scale.garbage):
        wire = mutate(rng)
        try:
            answer = exchange(port, wire, half_close=True)
            if answer and status_of(answer) is None:
                odd.append(f"{wire[:60]!r} -> {answer[:40]!r}")
        except TimeoutError:
            hung.append(repr(wire[:60]))
        except OSError:
            pass  # a reset is an answer too (the server gave up on bytes it could not read)
        if (n + 1) % scale.probe_every == 0 and not probe(port, probe_path)[0]:
            probes_failed += 1
    yield Result(
        "garbage",
        f"{scale.garbage} mutated requests (seed {seed}): no hang",
        not hung,
        "; ".join(hung[:3]) or "none hung",
    )
    yield Result(
        "garbage",
        "every answer is an HTTP status line or a close",
        not odd,
        "; ".join(odd[:3]) or "all well formed",
    )
    probes = scale.garbage // scale.probe_every
    yield Result(
        "garbage",
        "probes between them served",
        probes_failed == 0,
        f"{probes - probes_failed} of {probes} served",
    )


DELAYS = [
    (1e9, "piece"),
    (3e6, "piece"),
    (1e300, "piece"),
    (math.inf, "piece"),
    (math.nan, "piece"),
    (1e9, "head"),
    (math.inf, "head"),
]
FAULT_DELAYS = ["latency=1e9", "latency=inf", "event_latency=3e6", "jitter=1e300", "latency=nan"]


def attack_delays(ports: dict[str, int], probe_path: str, target: str) -> Iterator[Result]:
    held: list[tuple[str, socket.socket]] = []
    try:
        if target == "replay":
            for fault in FAULT_DELAYS:
                sock = socket.create_connection(("127.0.0.1", ports["loop"]), timeout=5)
                sock.sendall(
                    b"GET /fine HTTP/1.1\r\nHost: x\r\nx-sse-replay-faults: %s\r\n\r\n" % fault.encode()
                )
                held.append((fault, sock))
        else:
            for server in ("loop", "thread"):
                for when, where in DELAYS:
                    sock = socket.create_connection(("127.0.0.1", ports[server]), timeout=5)
                    t = repr(when).replace("+", "%2B")
                    sock.sendall(
                        b"GET /delay?t=%s&where=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (t.encode(), where.encode())
                    )
                    held.append((f"{server} handler, {where} at t={when!r}", sock))
        time.sleep(1.0)  # the servers' head deadlines (0.2 s) pass: their stale timers leave the heap
        for name, sock in held:
            sock.settimeout(0.5)
            try:
                first = sock.recv(200)
                got = f"got {first[:30]!r}" if first else "closed"
            except TimeoutError:
                got = "nothing yet (waiting)"
            except OSError as exc:
                got = type(exc).__name__
            served = [probe(ports[s], probe_path)[0] for s in ports if s != "held" for _ in range(2)]
            yield Result(
                "delays", name, all(served), f"{got}; probes after it: {sum(served)} of {len(served)} served"
            )
    finally:
        for _, sock in held:
            sock.close()


def attack_trickle(ports: dict[str, int], probe_path: str, scale: Scale) -> Iterator[Result]:
    port = ports["loop"]
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    selector = selectors.DefaultSelector()
    answers: dict[int, bytes] = {}
    socks: list[socket.socket] = []
    asked = served = 0
    stop = threading.Event()

    def normal_client() -> None:
        nonlocal asked, served
        while not stop.is_set():
            asked += 1
            served += probe(port, probe_path)[0]
            stop.wait(0.2)

    try:
        for _ in range(scale.tricklers):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(head + b"x")
            sock.setblocking(False)
            socks.append(sock)
            selector.register(sock, selectors.EVENT_READ, len(socks) - 1)
        client = threading.Thread(target=normal_client, daemon=True)
        client.start()
        start = time.monotonic()
        next_byte = start + scale.trickle_every
        while time.monotonic() < start + scale.trickle_for:
            for key, _ in selector.select(
                max(0.0, min(next_byte, start + scale.trickle_for) - time.monotonic())
            ):
                trickler = socks[key.data]
                try:
                    piece = trickler.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    piece = b""
                answers[key.data] = answers.get(key.data, b"") + piece
                if not piece:
                    selector.unregister(trickler)
            if time.monotonic() >= next_byte:
                next_byte += scale.trickle_every
                for sock in socks:
                    with contextlib.suppress(OSError):
                        sock.send(b"x")
        stop.set()
        client.join(10)
    finally:
        stop.set()
        selector.close()
        for sock in socks:
            sock.close()
    yield Result(
        "trickle",
        f"normal client while {scale.tricklers} connections trickle (cap {scale.cap})",
        asked > 0 and served == asked,
        f"served {served} of {asked} in {scale.trickle_for:g} s",
    )
    statuses = [status_of(answers[i]) if i in answers else None for i in range(len(socks))]
    late, yielded = statuses.count(408), statuses.count(503)
    enough = scale.trickle_for > scale.request_timeout + 1
    yield Result(
        "trickle",
        f"tricklers answered and closed (deadline {scale.request_timeout:g} s)",
        not enough or late + yielded == len(socks),
        f"408: {late}, 503 (yielded): {yielded}, still open or unanswered: {len(socks) - late - yielded}",
    )


def attack_overcap(ports: dict[str, int], scale: Scale) -> Iterator[Result]:
    port = ports["held"]
    held_path = b"/held"
    held = []
    bad: list[str] = []
    try:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % held_path)
            if not sock.recv(16).startswith(b"HTTP/1.1 200"):
                bad.append("a held stream did not start")
            held.append(sock)
        body = b"x" * (4 << 20)  # more than the socket buffers take: unread, a close resets it
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        for _ in range(scale.overcap):
            try:
                answer = exchange(port, request)
                if status_of(answer) != 503:
                    bad.append(f"got {answer[:40]!r}")
            except OSError as exc:
                bad.append(f"{type(exc).__name__}: {exc}")
    finally:
        for sock in held:
            sock.close()
    yield Result(
        "overcap",
        f"{scale.overcap} clients over the cap, each sending 4 MiB, read a 503",
        not bad,
        f"{scale.overcap - len(bad)} of {scale.overcap} read it" + (f"; {bad[0]}" if bad else ""),
    )


def _show(result: Result) -> None:
    print(
        f"{'PASS' if result.passed else 'FAIL'}  {result.attack}: {result.case}: {result.detail}", flush=True
    )


def run(target: str, scale: Scale, only: set[str], seed: int) -> list[Result]:
    """Each attack against fresh servers; after it, the servers must be alive with no error collected."""
    probe_path = "/fine"
    results: list[Result] = []
    for attack in ATTACKS:
        if attack not in only:
            continue
        child = Child(target, scale)
        found: list[Result] = []
        try:
            found.extend(_shown(_attack(attack, child, probe_path, scale, seed)))
        except OSError as exc:  # the server stopped answering in the middle of the attack
            found.append(
                _shown1(Result(attack, "the server kept answering", False, f"{type(exc).__name__}: {exc}"))
            )
        finally:
            report = child.finish()
        for name, state in report.items():
            errors = state["errors"]
            alive = state["alive"] and not errors
            detail = "; ".join(errors[:3]) or "none"
            found.append(
                _shown1(Result(attack, f"then: {name} server alive, no error collected", alive, detail))
            )
        results += found
    return results


def _attack(attack: str, child: Child, probe_path: str, scale: Scale, seed: int) -> Iterator[Result]:
    ports = child.ports
    if attack == "framing":
        return attack_framing(child, probe_path, scale)
    if attack == "garbage":
        return attack_garbage(ports, probe_path, scale, seed)
    if attack == "delays":
        return attack_delays(ports, probe_path, child.target)
    if attack == "trickle":
        return attack_trickle(ports, probe_path, scale)
    return attack_overcap(ports, scale)


def _shown(results: Iterator[Result]) -> Iterator[Result]:
    for result in results:
        yield _shown1(result)


def _shown1(result: Result) -> Result:
    _show(result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--serve-child"]:
        serve_child(args[1], int(args[2]), float(args[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, a few seconds")
    parser.add_argument(
        "--target", choices=["loop", "replay"], default="loop", help="a test handler (loop) or the replay app"
    )
    parser.add_argument("--only", help=f"comma-separated attacks among {','.join(ATTACKS)}")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    options = parser.parse_args(args)
    only = set(options.only.split(",")) if options.only else set(ATTACKS)
    if only - set(ATTACKS):
        parser.error(f"unknown attack(s): {', '.join(sorted(only - set(ATTACKS)))}")
    scale = QUICK if options.quick else FULL
    started = time.monotonic()
    results = run(options.target, scale, only, options.seed)
    failed = [r for r in results if not r.passed]
    took = time.monotonic() - started
    print(f"{len(results) - len(failed)} of {len(results)} held ({took:.1f} s, target {options.target})")
    if options.json:
        pathlib.Path(options.json).write_text(json.dumps([r._asdict() for r in results], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
