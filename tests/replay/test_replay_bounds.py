"""Costs and waits that cannot grow without bound (issue 13): every delay is bounded where it enters (fault
values, recorded times, speed) with a clear error naming it, and the server goes on answering other
clients; the journal is bounded in bytes and count, and its redaction remembers nothing from one request to
the next."""

from __future__ import annotations

import gc
import json
import pathlib
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from sse_toolkit import ReplayError, SSEUsageError
from sse_toolkit.fixture import Chunk, Exchange, Fixture
from sse_toolkit.replay import Faults, ReplayServer
from sse_toolkit.replay._faults import FAULTS_HEADER

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
WYOMING = FIXTURES / "wyoming.sse"  # 3 events
STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
COMMAND = [sys.executable, "-c", "from sse_toolkit.cli import replay_main; replay_main()"]


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer(WYOMING, speed=0) as srv:
        yield srv


def _served_whole(server: ReplayServer) -> None:
    response = httpx.post(server.url + STREAM, json={}, timeout=10)
    assert response.status_code == 200 and response.content == WYOMING.read_bytes()


# -- delays ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("latency=1e9", "latency"),
        ("latency=inf", "latency"),
        ("latency=nan", "latency"),
        ("event-latency=3e6", "event_latency"),
        ("jitter=1e300", "jitter"),
        ("status=429, retry-after=1e9", "retry_after"),
        ("event_latency=80000", "event_latency"),  # each within a day, three events add up beyond it
    ],
)
def test_a_delay_fault_header_beyond_a_day_is_a_400_naming_it_and_the_server_goes_on(
    server: ReplayServer, spec: str, field: str
) -> None:
    response = httpx.post(server.url + STREAM, json={}, headers={FAULTS_HEADER: spec}, timeout=10)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert field in message and "86400" in message, message
    if field != "event_latency" or "3e6" in spec:
        assert FAULTS_HEADER in message  # a value refused as it is read names the header it came in
    _served_whole(server)
    server.check()  # the client's mistake, not a server error


@pytest.mark.parametrize(
    "options",
    [
        {"latency": 1e9},
        {"latency": float("inf")},
        {"event_latency": float("nan")},
        {"jitter": 1e300},
        {"retry_after": 1e9},
        {"latency": -1},
    ],
)
def test_delay_faults_beyond_a_day_are_refused_where_they_are_given(options: dict[str, float]) -> None:
    name = next(iter(options))
    with pytest.raises(SSEUsageError, match=f"fault {name} must be >= 0 seconds and at most 86400"):
        Faults(**options)  # type: ignore[arg-type]
    with pytest.raises(SSEUsageError, match=name):
        ReplayServer(WYOMING, **options)
    step: dict[str, object] = {"delay": options["latency"]} if name == "latency" else dict(options)
    if name == "retry_after":
        step["status"] = 429
    with pytest.raises(ReplayError, match=f"script step 1: fault {name}"):
        ReplayServer(WYOMING, script=[step])


def test_a_scenario_step_with_a_huge_delay_over_http_is_a_400(server: ReplayServer) -> None:
    response = httpx.post(server.url + "/_sse/script", json=[{"delay": 1e9}], timeout=10)
    assert response.status_code == 400
    assert "script step 1: fault latency" in response.json()["error"]["message"]
    _served_whole(server)


def test_the_longest_allowed_wait_holds_one_client_while_others_are_served(server: ReplayServer) -> None:
    # A whole day before the status line: the loop waits on that timer (far, but within what a selector
    # takes) and wakes for everyone else; stopping does not wait for it.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as held:
        head = f"POST {STREAM} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n{FAULTS_HEADER}: latency=86400\r\n"
        held.sendall(head.encode() + b"\r\n{}")
        for _ in range(3):
            _served_whole(server)
        held.settimeout(0.2)
        with pytest.raises(TimeoutError):
            held.recv(100)  # still waiting for its day
    server.check()


def test_a_recorded_time_beyond_a_day_refuses_the_fixture_naming_it(tmp_path: pathlib.Path) -> None:
    far = Exchange(chunks=[Chunk(b"data: 1\n\n", 0.1), Chunk(b"data: 2\n\n", 1e9)])
    with pytest.raises(ReplayError, match=r"<exchange 1>: chunk 2 is due 1e\+09 s .*beyond the 86400 s"):
        ReplayServer(far)
    two = Fixture(
        [Exchange(chunks=[Chunk(b"data: 1\n\n", 0.1)]), Exchange(chunks=[Chunk(b"data: x\n\n", 9e4)])]
    )
    with pytest.raises(ReplayError, match=r"exchange 2: chunk 1 is due"):
        ReplayServer(two)
    with pytest.raises(ReplayError, match="the status line is due"):
        ReplayServer(Exchange(head_t=1e9, chunks=[Chunk(b"data: 1\n\n", 0.1)]))
    # Within the day at speed 1, beyond it slowed down.
    day = Exchange(chunks=[Chunk(b"data: 1\n\n", 86_000.0)])
    ReplayServer(day)
    with pytest.raises(ReplayError, match=r"at speed 0\.5"):
        ReplayServer(day, speed=0.5)
    # No delays at all: any recorded time is fine.
    with ReplayServer(far, speed=0) as server:
        assert httpx.get(server.url + "/x", timeout=10).content == b"data: 1\n\ndata: 2\n\n"


def test_the_cli_refuses_a_far_recorded_time_and_a_tiny_speed_in_one_line(tmp_path: pathlib.Path) -> None:
    far = tmp_path / "far.jsonl"
    far.write_text(
        '{"sse_toolkit_fixture": 1}\n{"response": {"status": 200}}\n'
        '{"t": 1e9, "chunk": "data: x\\n\\n"}\n{"end": "complete"}\n'
    )
    for args, words in (
        (["--serve", str(far)], f"{far}: chunk 1 is due 1e+09 s"),
        (["--serve", str(WYOMING), "--speed", "1e-300"], "speed must be 0 (no delays) or a finite number"),
    ):
        result = subprocess.run([*COMMAND, *args], capture_output=True, timeout=30, check=False)
        err = result.stderr.decode()
        assert result.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err, err
        assert words in err, err


@pytest.mark.parametrize("speed", [1e-300, 5e-324, -1.0, float("inf"), float("nan")])
def test_a_speed_that_scales_delays_beyond_reason_is_refused(speed: float) -> None:
    with pytest.raises(SSEUsageError, match="speed must be 0"):
        ReplayServer(WYOMING, speed=speed)


# -- the journal ----------------------------------------------------------------------------------------


def test_big_request_bodies_are_cut_in_the_journal_with_a_visible_marker(server: ReplayServer) -> None:
    big = b'{"contents": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    with httpx.Client(timeout=30) as client:
        for _ in range(30):
            assert client.post(server.url + STREAM, content=big).status_code == 200
        small = client.post(server.url + STREAM, content=b'{"contents": "hi"}')
    assert small.status_code == 200
    journal = server.requests
    assert len(journal) == 31
    limit = server.app.journal.max_body
    marker = b"[sse-toolkit: request body cut in the journal, %d of %d bytes dropped]" % (
        len(big) - limit,
        len(big),
    )
    for entry in journal[:30]:
        assert entry.body == big[:limit] + marker
        assert entry.to_dict()["body"].endswith(marker.decode())
        assert entry.request is not None and entry.request.body == entry.body  # no second, whole copy
    assert journal[30].body == b'{"contents": "hi"}'
    # The whole journal holds a small fraction of the 120 MiB posted.
    assert server.app.journal.kept_bytes < 31 * (limit + 4096)
    # Attempts of one call are still told apart and grouped: same cut body, same call.
    assert server.verdict() == []


def test_the_journal_is_bounded_in_bytes_and_count_keeping_the_newest(server: ReplayServer) -> None:
    journal = server.app.journal
    journal.max_bytes = 1024 * 1024
    journal.max_entries = 25
    body = b'{"contents": "' + b"y" * 60_000 + b'"}'
    with httpx.Client(timeout=30) as client:
        for _ in range(40):
            assert client.post(server.url + STREAM, content=body).status_code == 200
    entries = server.requests
    assert journal.kept_bytes <= journal.max_bytes
    assert 1 <= len(entries) <= 25
    assert entries[-1].index == 39 and [e.index for e in entries] == list(range(40 - len(entries), 40))
    with httpx.Client(timeout=30) as client:  # a count bound alone, small bodies
        for _ in range(30):
            client.post(server.url + STREAM, content=b"{}")
    assert len(server.requests) <= 25 and server.requests[-1].index == 69


def test_at_its_count_bound_the_journal_drops_the_oldest_entry_one_at_a_time(server: ReplayServer) -> None:
    journal = server.app.journal
    journal.max_entries = 10
    with httpx.Client(timeout=30) as client:
        for sent in range(1, 16):
            client.post(server.url + STREAM, content=b"{}")
            # Never a bulk drop: once full it stays full, the newest request last.
            assert [e.index for e in server.requests] == list(range(max(0, sent - 10), sent))


# -- keys -----------------------------------------------------------------------------------------------


def _reachable_strings(root: object) -> Iterator[str]:
    """Every str reachable from ``root`` through containers and instances (not through classes, modules
    or functions, which lead to everything)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            yield obj
            continue
        if isinstance(obj, (bytes, int, float)):
            continue
        stack.extend(gc.get_referents(obj))


def _until_closed(server: ReplayServer, timeout: float = 10.0) -> None:
    """Wait until the server has closed every connection its clients closed."""
    deadline = time.monotonic() + timeout
    while server.http.connections:
        assert time.monotonic() < deadline, f"{server.http.connections} connections still open"
        time.sleep(0.01)


def test_redaction_is_per_request_the_journal_redacts_each_key_and_remembers_none(
    server: ReplayServer,
) -> None:
    keys = [f"AIzaSyMANY-DISTINCT-KEYS-{n:06d}-0123456789" for n in range(400)]
    with httpx.Client(timeout=30) as client:
        for n, key in enumerate(keys):
            if n % 2:
                headers = {"x-goog-api-key": key, "referer": f"x{key}"}
                client.post(server.url + STREAM, json={}, headers=headers)
            else:
                client.post(server.url + STREAM + "&key=" + key, json={})
    journal = server.requests
    assert len(journal) == len(keys)
    for entry, key in zip(journal, keys, strict=True):
        shown = json.dumps(entry.to_dict())
        assert key not in shown and "REDACTED" in shown
        assert key == (entry.header("x-goog-api-key") or entry.params["key"])  # as received, for tests
    # Nothing about the keys outlives the journal and the connection they came on: no set of every key
    # seen, no cache of redactions (a connection keeps its last head until it closes).
    _until_closed(server)
    server.reset()
    assert not [s for s in _reachable_strings(server) if "MANY-DISTINCT-KEYS" in s]


def test_the_journal_redacts_a_requests_own_secrets_wherever_they_show_up(server: ReplayServer) -> None:
    key = "AIzaSy/slash+plus-0123456789"
    token = "ya29.a-bearer-token-abcdefgh"
    headers = {
        "Authorization": f"Bearer {token}",
        "Cookie": "sid=cookie-secret-123; theme=dark",
        "Referer": f"http://app.example/?key={quote(key, safe='')}",
        "X-Echo": token,
    }
    httpx.post(server.url + STREAM + "&KEY=" + quote(key, safe=""), json={}, headers=headers, timeout=10)
    entry = server.requests[-1]
    shown = json.dumps(entry.to_dict())
    for secret in (key, quote(key, safe=""), token, "cookie-secret-123"):
        assert secret not in shown
    assert entry.query == "alt=sse&KEY=REDACTED"
    seen = {name.lower(): value for name, value in entry.headers}
    assert seen["authorization"] == "Bearer REDACTED"  # the scheme stays
    assert seen["cookie"] == "sid=REDACTED; theme=REDACTED"  # the names stay
    assert seen["referer"] == "http://app.example/?key=REDACTED" and seen["x-echo"] == "REDACTED"
    assert entry.params["KEY"] == key and entry.header("authorization") == f"Bearer {token}"  # as received


def test_the_key_check_on_a_required_key_does_not_remember_keys_either() -> None:
    with ReplayServer(WYOMING, speed=0, require_key="AIzaSyTHE-ONE-KEY-0123456789") as server:
        with httpx.Client(timeout=30) as client:
            for n in range(50):
                wrong = client.post(server.url + STREAM + f"&key=AIzaSyWRONG-{n:04d}-0123456789", json={})
                assert wrong.status_code == 400
        assert all("WRONG" not in json.dumps(e.to_dict()) for e in server.requests)
        _until_closed(server)
        server.reset()
        assert not [s for s in _reachable_strings(server) if "WRONG-" in s]


# -- composition ------------------------------------------------------------------------------------------


def test_the_replay_server_composes_a_loopback_server_and_is_a_started_server() -> None:
    from sse_toolkit.server._lifecycle import LoopbackServer
    from sse_toolkit.server._protocol import StartedServer

    server = ReplayServer(WYOMING, speed=0)
    assert isinstance(server, StartedServer) and not isinstance(server, LoopbackServer)
    assert isinstance(server.http, LoopbackServer) and server.http.log_requests is False
    server.max_body = 10  # a setting of the composed server, set through the replay server
    assert server.http.max_body == 10
    with server:
        assert server.http.requests == []
        response = httpx.post(server.url + STREAM, content=b"x" * 100, timeout=10)
        assert response.status_code == 413
    assert not server.is_running()


def test_a_journal_redacts_when_read_and_one_never_read_keeps_no_more_than_its_cap() -> None:
    from sse_toolkit.replay._journal import Journal
    from sse_toolkit.replay._verdict import RequestKind
    from sse_toolkit.server._loop import ReplayRequest

    journal = Journal(max_entries=50)

    def arrive(n: int) -> None:
        key = f"AIzaSyUNREAD-{n:06d}-0123456789"
        request = ReplayRequest(
            "POST",
            "/v1beta/models/m:streamGenerateContent",
            f"alt=sse&key={key}",
            [("x-goog-api-key", key)],
            b"{}",
        )
        journal.record(request, RequestKind.STREAM, "m")

    for n in range(5000):  # a server whose journal nobody reads
        arrive(n)
    assert len(journal) == 50 and len(journal._unredacted) <= 50  # the unread backlog went with its entries
    first = journal.entries()
    assert [e.index for e in first] == list(range(4950, 5000))
    assert all(
        e.query == "alt=sse&key=REDACTED" and e.headers == [("x-goog-api-key", "REDACTED")] for e in first
    )
    arrive(5000)
    again = journal.entries()
    assert again[-1].query == "alt=sse&key=REDACTED" and again[0] is first[1]  # read once, redacted once
    assert again[-1].header("x-goog-api-key") == "AIzaSyUNREAD-005000-0123456789"  # as received, for tests
