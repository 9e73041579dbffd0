"""The recording proxy: streams each upstream chunk on at once, records bytes, timing, status, headers and
the request, appends exchanges in order, mirrors breaks, and keeps complete exchanges on a stop.

Every upstream is a loopback server of the test (``_record_upstream``); nothing leaves the machine.
"""

from __future__ import annotations

import gzip
import http.client
import itertools
import os
import threading
import time
import zlib

import httpx
import pytest
from _in_flight import streaming_request
from _rawhttp import raw_exchange
from _record_upstream import Script, Upstream

from sse_toolkit import End, load_fixture
from sse_toolkit.record._proxy import RecordingProxy
from sse_toolkit.server._loop import ReplayError

EVENTS = [
    b'data: {"n": 1}\r\n\r\n',
    b'data: {"n": 2}\r\n\r\n',
    b'data: {"n": 3}\r\n\r\n',
    b'data: {"n": 4}\r\n\r\n',
]
TOLERANCE = 0.05  # seconds, the issue's +-50 ms


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_each_chunk_reaches_the_client_before_the_upstream_sends_the_next(tmp_path) -> None:
    # The upstream sends piece 2 only once the client has piece 1: a buffering proxy would deadlock here
    # (the upstream would wait 5 s, then "waited" records False).
    client_has_first = threading.Event()
    script = Script([(0, EVENTS[0]), (0, EVENTS[1])], wait_for={1: client_has_first})
    out = tmp_path / "live.sse"
    with (
        Upstream(script) as up,
        RecordingProxy(up.url, out) as proxy,
        httpx.stream(
            "POST", proxy.url + "/v1beta/models/m:streamGenerateContent?alt=sse", json={}
        ) as response,
    ):
        pieces = response.iter_raw()
        assert next(pieces) == EVENTS[0]
        client_has_first.set()
        assert b"".join(pieces) == EVENTS[1]
    assert script.waited == {1: True}


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_recorded_body_is_byte_identical_and_gaps_are_kept(tmp_path, framing: str) -> None:
    delays = [0.0, 0.12, 0.05, 0.2]
    script = Script(list(zip(delays, EVENTS, strict=False)), framing=framing)
    out = tmp_path / "timed.sse"
    with Upstream(script) as up, RecordingProxy(up.url, out) as proxy:
        with httpx.Client() as client:
            response = client.post(
                proxy.url + "/v1beta/models/m:streamGenerateContent?alt=sse", json={"q": 1}
            )
        proxy.check()
    assert response.content == script.body
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == script.body
    assert exchange.end == End.COMPLETE
    assert [chunk.data for chunk in exchange.chunks] == EVENTS
    times = [chunk.t for chunk in exchange.chunks]
    assert all(t is not None for t in times)
    for recorded, expected in zip(_gaps(times), delays[1:], strict=False):
        assert abs(recorded - expected) <= TOLERANCE
    assert exchange.head_t is not None and exchange.head_t <= times[0]


def test_request_status_and_headers_are_forwarded_and_recorded(tmp_path) -> None:
    error = b'{\n  "error": {\n    "code": 429,\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n'
    script = Script(
        [(0, error)],
        status=429,
        reason="Too Many Requests",
        headers=[
            ("Content-Type", "application/json; charset=UTF-8"),
            ("X-Upstream", "yes"),
            ("Keep-Alive", "5"),
        ],
        framing="length",
    )
    out = tmp_path / "error.sse"
    with Upstream(script) as up, RecordingProxy(up.url + "/base", out) as proxy:
        response = httpx.post(
            proxy.url + "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse&x=1",
            content=b'{"contents": []}',
            headers={
                "Content-Type": "application/json",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "1",
                "X-Custom": "kept",
            },
        )
    assert (response.status_code, response.content) == (429, error)
    assert response.headers["x-upstream"] == "yes"
    method, target, headers, body = up.requests[0]
    names = {name.lower(): value for name, value in headers}
    assert (method, target, body) == (
        "POST",
        "/base/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse&x=1",
        b'{"contents": []}',
    )
    assert names["host"] == up.url.removeprefix("http://")
    assert names["accept-encoding"] == "identity"
    assert names["x-custom"] == "kept"
    assert "x-hop" not in names and "connection" not in names  # hop-by-hop, and named by Connection

    exchange = load_fixture(out).exchanges[0]
    assert (exchange.status, exchange.reason, exchange.body) == (429, "Too Many Requests", error)
    assert ("X-Upstream", "yes") in exchange.headers
    assert not {"keep-alive", "content-length", "connection"} & {k.lower() for k, _ in exchange.headers}
    request = exchange.request
    assert request is not None
    assert (request.method, request.path, request.query, request.body) == (
        "POST",
        "/v1/models/gemini-2.5-flash:streamGenerateContent",
        "alt=sse&x=1",
        b'{"contents": []}',
    )
    assert ("X-Custom", "kept") in request.headers


def test_successive_exchanges_are_appended_in_order_and_written_after_each(tmp_path) -> None:
    out = tmp_path / "three.sse"
    scripts = [Script([(0, EVENTS[n])]) for n in range(3)]
    with Upstream(*scripts) as up, RecordingProxy(up.url, out) as proxy, httpx.Client() as client:
        for n in range(3):
            client.post(proxy.url + f"/v1beta/models/m{n}:streamGenerateContent?alt=sse", json={"n": n})
            written = load_fixture(out)  # the file is complete after every exchange
            assert [ex.body for ex in written.exchanges] == EVENTS[: n + 1]
    assert [ex.request.path for ex in written.exchanges if ex.request] == [
        f"/v1beta/models/m{n}:streamGenerateContent" for n in range(3)
    ]


def _short_length_script() -> Script:
    """Content-Length announces two events; the upstream sends one and closes."""
    script = Script([(0, EVENTS[0])], framing="close", end="eof")
    script.headers = [*script.headers, ("Content-Length", str(len(EVENTS[0] + EVENTS[1])))]
    return script


@pytest.mark.parametrize(
    ("script", "recorded_end"),
    [
        (Script([(0, EVENTS[0]), (0.05, EVENTS[1])], end="eof"), End.RESET),  # FIN before the final chunk
        (Script([(0, EVENTS[0]), (0.05, EVENTS[1])], end="reset"), End.RESET),  # TCP RST
        (_short_length_script(), End.RESET),  # FIN before Content-Length is reached
        (Script([(0, EVENTS[0]), (0.05, EVENTS[1])], end="hang"), End.TIMEOUT),  # silence beyond the timeout
    ],
    ids=["eof-before-final-chunk", "reset", "short-content-length", "timeout"],
)
def test_a_broken_upstream_breaks_the_client_the_same_way_and_every_byte_is_kept(
    tmp_path, script: Script, recorded_end: str
) -> None:
    out = tmp_path / "broken.sse"
    received = b""
    with Upstream(script) as up, RecordingProxy(up.url, out, timeout=0.3) as proxy:
        with (
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
            httpx.stream("POST", proxy.url + "/v1beta/models/m:streamGenerateContent?alt=sse") as response,
        ):
            for piece in response.iter_raw():
                received += piece
        proxy.check()
    assert received == script.body
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == script.body
    assert exchange.end == recorded_end


def test_a_compressed_upstream_is_decoded_for_client_and_fixture(tmp_path) -> None:
    # An upstream that ignores "Accept-Encoding: identity" and gzips anyway, flushing after each event.
    compressor = zlib.compressobj(wbits=31)
    pieces = [
        (0.0 if n == 0 else 0.05, compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH))
        for n, event in enumerate(EVENTS)
    ]
    pieces.append((0, compressor.flush()))
    script = Script(pieces, headers=[("Content-Type", "text/event-stream"), ("Content-Encoding", "gzip")])
    assert gzip.decompress(script.body) == b"".join(EVENTS)
    out = tmp_path / "gzip.sse"
    with Upstream(script) as up, RecordingProxy(up.url, out) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
        conn.request("GET", "/stream", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        assert response.getheader("Content-Encoding") is None
        assert response.read() == b"".join(EVENTS)
        conn.close()
    exchange = load_fixture(out).exchanges[0]
    assert [chunk.data for chunk in exchange.chunks] == EVENTS
    assert exchange.header("Content-Encoding") is None


def test_an_unreachable_upstream_gets_a_502_and_nothing_is_recorded(tmp_path) -> None:
    with Upstream() as up:
        dead = up.url  # the port is free again once the block ends
    out = tmp_path / "none.sse"
    with RecordingProxy(dead, out) as proxy:
        response = httpx.post(proxy.url + "/v1beta/models/m:streamGenerateContent?alt=sse")
        proxy.check()
    assert response.status_code == 502
    assert "sse-record: upstream" in response.json()["error"]["message"]
    assert not out.exists()


def test_stop_mid_stream_keeps_the_complete_exchanges_only(tmp_path) -> None:
    out = tmp_path / "partial.sse"
    first = Script([(0, EVENTS[0])])
    hanging = Script([(0, EVENTS[1])], end="hang")
    with Upstream(first, hanging) as up:
        proxy = RecordingProxy(up.url, out)
        proxy.start()
        httpx.post(proxy.url + "/one")
        with streaming_request("POST", proxy.url + "/two"):
            proxy.stop()
    fixture = load_fixture(out)
    assert [ex.body for ex in fixture.exchanges] == [EVENTS[0]]
    assert [ex.end for ex in fixture.exchanges] == [End.COMPLETE]


def test_a_bad_upstream_url_is_refused() -> None:
    with pytest.raises(ReplayError, match="not an http"):
        RecordingProxy("ftp://example.com", "x.sse")


def test_concurrent_exchanges_are_kept_in_request_order(tmp_path) -> None:
    # A starts first and finishes last: the file holds B alone, then A before B.
    release_a = threading.Event()
    slow = Script([(0, EVENTS[0]), (0, EVENTS[1])], wait_for={1: release_a})
    fast = Script([(0, EVENTS[2])])
    out = tmp_path / "concurrent.sse"
    with Upstream(slow, fast) as up, RecordingProxy(up.url, out) as proxy:
        with httpx.stream("GET", proxy.url + "/a") as response_a:
            pieces = response_a.iter_raw()
            assert next(pieces) == EVENTS[0]
            assert httpx.get(proxy.url + "/b").content == EVENTS[2]
            assert [ex.request.path for ex in load_fixture(out).exchanges if ex.request] == ["/b"]
            release_a.set()
            assert b"".join(pieces) == EVENTS[1]
        proxy.check()
    fixture = load_fixture(out)
    assert [(ex.request.path if ex.request else None, ex.body) for ex in fixture.exchanges] == [
        ("/a", EVENTS[0] + EVENTS[1]),
        ("/b", EVENTS[2]),
    ]


def test_head_and_no_content_responses_pass_without_a_body(tmp_path) -> None:
    out = tmp_path / "empty.sse"
    scripts = [Script([], status=204, reason="No Content", framing="close"), Script([], framing="length")]
    with Upstream(*scripts) as up, RecordingProxy(up.url, out) as proxy:
        assert httpx.delete(proxy.url + "/thing").status_code == 204
        response = httpx.head(proxy.url + "/thing")
        assert (response.status_code, response.content) == (200, b"")
        proxy.check()
    assert [
        (ex.request.method if ex.request else None, ex.status, ex.body) for ex in load_fixture(out).exchanges
    ] == [("DELETE", 204, b""), ("HEAD", 200, b"")]


def test_a_missing_output_directory_is_refused_up_front(tmp_path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        RecordingProxy("http://127.0.0.1:9", tmp_path / "no" / "such" / "dir.sse")


def test_a_failed_write_is_reported_by_check_and_the_proxy_keeps_serving(tmp_path) -> None:
    out = tmp_path / "blocked"
    with Upstream(Script([(0, EVENTS[0])])) as up, RecordingProxy(up.url, out) as proxy:
        out.mkdir()  # the fixture path is now a directory: the write fails
        assert httpx.get(proxy.url + "/a").content == EVENTS[0]
        with pytest.raises(ReplayError, match="cannot write"):
            proxy.check()
        out.rmdir()
        assert httpx.get(proxy.url + "/b").content == EVENTS[0]
        proxy.check()
    assert [ex.request.path for ex in load_fixture(out).exchanges if ex.request] == ["/a", "/b"]


def test_parallel_streams_and_a_large_binary_body_are_recorded_whole(tmp_path) -> None:
    import random
    from concurrent.futures import ThreadPoolExecutor

    blob = random.Random(7).randbytes(300_000)  # not UTF-8: stored as base64 chunks, still byte-exact
    scripts = [
        Script([(0, blob[:100_000]), (0.01, blob[100_000:])], framing=framing)
        for framing in ["chunked", "length", "close"] * 3
    ]
    out = tmp_path / "parallel.jsonl"
    with Upstream(*scripts) as up, RecordingProxy(up.url, out) as proxy:
        with ThreadPoolExecutor(9) as pool:
            bodies = list(pool.map(lambda n: httpx.get(proxy.url + f"/blob/{n}").content, range(9)))
        proxy.check()
    assert bodies == [blob] * 9
    fixture = load_fixture(out)
    assert [ex.body for ex in fixture.exchanges] == [blob] * 9
    assert sorted(ex.request.path for ex in fixture.exchanges if ex.request) == sorted(
        f"/blob/{n}" for n in range(9)
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # a non-ASCII path
        b"GET /?q=\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # a non-ASCII query
        b"G\x01T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # a control character in the method
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\nConnection: close\r\n\r\n",  # a CR in a header value
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\nConnection: close\r\n\r\n",  # another control character
    ],
    ids=["non-ascii-path", "non-ascii-query", "control-in-method", "cr-in-header", "control-in-header"],
)
def test_a_request_that_cannot_be_forwarded_gets_a_400_and_leaks_no_socket(
    tmp_path, request_bytes: bytes
) -> None:
    out = tmp_path / "refused.jsonl"
    with Upstream(Script([(0, EVENTS[0])])) as up, RecordingProxy(up.url, out) as proxy:
        port = int(proxy.url.rsplit(":", 1)[1])
        raw_exchange("127.0.0.1", port, b"GET /warm-up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(200):
            answer = raw_exchange("127.0.0.1", port, request_bytes)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        deadline = time.monotonic() + 5
        while len(os.listdir("/proc/self/fd")) > before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(os.listdir("/proc/self/fd")) <= before
        assert len(up.requests) == 1  # the warm-up only: nothing refused reached the upstream
        proxy.check()
    assert [ex.request.path for ex in load_fixture(out).exchanges if ex.request] == ["/warm-up"]
