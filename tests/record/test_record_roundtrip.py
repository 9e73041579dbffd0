"""Round trips: record -> replay -> record gives back the same bytes and timing (+-50 ms); a broken
upstream replays as the same break; google-genai and curl work through the proxy. All on loopback."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from _record_upstream import Script, Upstream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_toolkit import Chunk, End, Exchange, Fixture, GeminiScript, load_fixture
from sse_toolkit.record._proxy import RecordingProxy
from sse_toolkit.record._tee import record_tee
from sse_toolkit.replay import ReplayServer

CAPTURES = Path(__file__).resolve().parents[1] / "data"  # copies of shared/gemini-captures
TOLERANCE = 0.05
SSE = [("Content-Type", "text/event-stream")]


def _done_at(chunks: list[tuple[float, bytes]]) -> dict[int, float]:
    """Body offset -> time its byte arrived, at the end of every chunk."""
    out, offset = {}, 0
    for t, data in chunks:
        offset += len(data)
        out[offset] = t
    return out


def _arrival(chunks: list[tuple[float, bytes]], offset: int) -> float:
    """When the byte just before ``offset`` had arrived (the chunk that holds it)."""
    position = 0
    for t, data in chunks:
        position += len(data)
        if position >= offset:
            return t
    raise AssertionError(f"offset {offset} beyond the body")


def _assert_same_timing(original: list[tuple[float, bytes]], recorded: list[tuple[float, bytes]]) -> None:
    """Same bytes, and the gaps kept: measured from the first chunk on both sides, every original chunk
    boundary was reached in the recording within the tolerance of its time.

    Timing is compared per original chunk end, so it does not matter whether the network merged two chunks
    that were sent at the same instant; it is compared from the first chunk, so the time to the first byte
    (connection set-up, a loaded machine) does not count."""
    assert b"".join(d for _, d in recorded) == b"".join(d for _, d in original)
    base_original, base_recorded = original[0][0], recorded[0][0]
    for offset, t in _done_at(original).items():
        gap = _arrival(recorded, offset) - base_recorded
        assert abs(gap - (t - base_original)) <= TOLERANCE, (offset, t, original, recorded)


def _recorded(exchange: Exchange) -> list[tuple[float, bytes]]:
    assert exchange.timed
    return [(chunk.t, chunk.data) for chunk in exchange.chunks]  # type: ignore[misc]


events = st.text(alphabet="abcxyz é", min_size=1, max_size=12).map(lambda s: f"data: {s}\r\n\r\n".encode())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=st.lists(st.tuples(st.sampled_from([0.0, 0.02, 0.06, 0.1]), events), min_size=1, max_size=4),
    end=st.sampled_from([End.COMPLETE, End.RESET]),
)
def test_recording_a_replayed_fixture_gives_back_its_bytes_timing_and_end(tmp_path, stream, end) -> None:
    t = 0.0
    chunks = []
    for gap, data in stream:
        t += gap
        chunks.append(Chunk(data, round(t, 3)))
    original = Exchange(headers=list(SSE), chunks=chunks, end=end, head_t=0.0)
    out = tmp_path / f"again-{time.monotonic_ns()}.sse"
    with ReplayServer(Fixture([original])) as replay, RecordingProxy(replay.url, out) as proxy:
        try:
            with httpx.stream("GET", proxy.url + "/stream") as response:
                received = b"".join(response.iter_raw())
        except (httpx.RemoteProtocolError, httpx.ReadError):
            received = None
        proxy.check()
    again = load_fixture(out).exchanges[0]
    assert again.end == end
    assert (received is None) == (end != End.COMPLETE)
    if received is not None:
        assert received == original.body
    _assert_same_timing([(c.t, c.data) for c in chunks], _recorded(again))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.sampled_from(["Once", "upon", "a", "time", "é", "🐈"]), min_size=1, max_size=5),
    pace=st.sampled_from([0.0, 0.03, 0.07]),
    cut=st.booleans(),
)
def test_recording_a_replayed_gemini_script_gives_back_its_bytes_and_pace(tmp_path, words, pace, cut) -> None:
    script = GeminiScript("gemini-2.5-flash").text(" ".join(words)).finish(None if cut else "STOP")
    original = script.to_exchange(pace=pace)
    out = tmp_path / f"script-{time.monotonic_ns()}.jsonl"
    with ReplayServer(original) as replay, RecordingProxy(replay.url, out) as proxy:
        response = httpx.post(
            proxy.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json={"contents": [{"parts": [{"text": "Tell"}]}]},
            headers={"x-goog-api-key": "k"},
        )
        proxy.check()
    again = load_fixture(out).exchanges[0]
    assert response.content == again.body == b"".join(script.events())
    assert again.header("Content-Type") == "text/event-stream"
    _assert_same_timing([(c.t, c.data) for c in original.chunks], _recorded(again))  # type: ignore[misc]


def test_a_recorded_break_replays_as_the_same_break(tmp_path) -> None:
    script = Script([(0, b"data: 1\r\n\r\n"), (0.05, b"data: 2\r\n\r\n")], end="reset")
    out = tmp_path / "broken.sse"
    with (
        Upstream(script) as up,
        RecordingProxy(up.url, out) as proxy,
        pytest.raises(httpx.ReadError),
        httpx.stream("GET", proxy.url + "/events") as response,
    ):
        for _ in response.iter_raw():
            pass
    received = b""
    with (
        ReplayServer(out) as replay,
        pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)),
        httpx.stream("GET", replay.url + "/events") as response,
    ):
        for piece in response.iter_raw():
            received += piece
    assert received == script.body


def _client_arrivals(url: str) -> list[tuple[float, bytes]]:
    start = time.monotonic()
    out = []
    with httpx.stream("GET", url) as response:
        for piece in response.iter_raw():
            out.append((time.monotonic() - start, piece))
    return out


def test_a_tee_recording_replays_byte_identical_with_its_gaps(tmp_path) -> None:
    pieces = [(0.0, b"data: a\r\n\r\n"), (0.12, b"data: b\r\n\r\n"), (0.05, b"data: c\r\n\r\n")]
    read_end, write_end = os.pipe()

    def writer() -> None:
        with open(write_end, "wb", buffering=0) as pipe:
            for delay, data in pieces:
                time.sleep(delay)
                pipe.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    out = tmp_path / "tee.sse"
    with open(read_end, "rb") as src:
        fixture = record_tee(src, None, out)
    thread.join()
    recorded = _recorded(fixture.exchanges[0])
    with ReplayServer(out) as replay:
        replayed = _client_arrivals(replay.url + "/tee")
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(recorded)]
    assert [abs(g - d) <= TOLERANCE for g, (d, _) in zip(gaps, pieces[1:], strict=False)] == [True, True]
    _assert_same_timing(recorded, replayed)


def test_a_proxy_recording_replays_byte_identical_with_its_gaps(tmp_path) -> None:
    script = Script([(0.0, b"data: 1\r\n\r\n"), (0.1, b"data: 2\r\n\r\n"), (0.15, b"data: 3\r\n\r\n")])
    out = tmp_path / "proxy.sse"
    with Upstream(script) as up, RecordingProxy(up.url, out) as proxy:
        live = _client_arrivals(proxy.url + "/feed")
    with ReplayServer(out) as replay:
        replayed = _client_arrivals(replay.url + "/feed")
    _assert_same_timing(live, replayed)


def test_google_genai_streams_through_the_proxy_and_its_recording_replays(tmp_path) -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    capture = (CAPTURES / "text-stop.sse").read_bytes()
    events = [piece + b"\r\n\r\n" for piece in capture.split(b"\r\n\r\n") if piece]
    script = Script([(0.0 if n == 0 else 0.05, event) for n, event in enumerate(events)])
    assert script.body == capture
    out = tmp_path / "genai.sse"
    key = "AIzaSyFAKE-genai-key-0123456789abcdefg"
    with Upstream(script) as up, RecordingProxy(up.url, out) as proxy:
        client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=proxy.url))
        live = [
            chunk.text
            for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="Hi")
        ]
        proxy.check()
    _method, target, headers, _ = up.requests[0]
    assert target.startswith("/v1beta/models/gemini-2.0-flash:streamGenerateContent") or target.startswith(
        "/v1/models/gemini-2.0-flash:streamGenerateContent"
    )
    assert ("x-goog-api-key", key) in headers
    assert "".join(live).startswith("The capital of Wyoming")
    data = out.read_bytes()
    assert key.encode() not in data
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == capture
    with ReplayServer(out) as replay:
        client = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=replay.url))
        again = [
            chunk.text
            for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="Hi")
        ]
    assert again == live


def test_google_genai_async_streams_through_the_proxy(tmp_path) -> None:
    genai = pytest.importorskip("google.genai")
    pytest.importorskip("aiohttp")
    import asyncio

    from google.genai import types

    capture = (CAPTURES / "thinking-thoughts.sse").read_bytes()
    events = [piece + b"\r\n\r\n" for piece in capture.split(b"\r\n\r\n") if piece]
    script = Script([(0.0 if n == 0 else 0.03, event) for n, event in enumerate(events)])
    out = tmp_path / "genai-async.jsonl"

    async def stream(url: str) -> list[str | None]:
        client = genai.Client(
            api_key="AIzaSyFAKE-async-key-0123456789abcdef", http_options=types.HttpOptions(base_url=url)
        )
        return [
            chunk.text
            async for chunk in await client.aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Hi"
            )
        ]

    with Upstream(script) as up, RecordingProxy(up.url, out) as proxy:
        live = asyncio.run(stream(proxy.url))
        proxy.check()
    assert load_fixture(out).exchanges[0].body == capture
    assert b"AIzaSyFAKE-async-key" not in out.read_bytes()
    with ReplayServer(out) as replay:
        assert asyncio.run(stream(replay.url)) == live


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_through_the_proxy_gets_the_exact_body(tmp_path) -> None:
    capture = (CAPTURES / "text-stop.sse").read_bytes()
    script = Script([(0, capture[:100]), (0.05, capture[100:])])
    out = tmp_path / "curl.sse"
    with Upstream(script) as up, RecordingProxy(up.url, out) as proxy:
        result = subprocess.run(
            [
                "curl",
                "-sN",
                f"{proxy.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=curl-secret-key-123",
                "-H",
                "Content-Type: application/json",
                "-d",
                '{"contents": [{"parts": [{"text": "Hi"}]}]}',
            ],
            capture_output=True,
            timeout=20,
        )
        proxy.check()
    assert result.returncode == 0, result.stderr
    assert result.stdout == capture
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == capture
    assert (
        exchange.request is not None
        and exchange.request.body == b'{"contents": [{"parts": [{"text": "Hi"}]}]}'
    )
    assert b"curl-secret-key-123" not in out.read_bytes()
    assert up.requests[0][1].endswith("key=curl-secret-key-123")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sse_record_cli_prints_its_url_records_and_exits_cleanly_on_a_signal(tmp_path, sig: int) -> None:
    script = Script([(0, b"data: cli\r\n\r\n")])
    out = tmp_path / "cli.sse"
    with Upstream(script) as up:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "sse-record"), "--upstream", up.url, "--out", str(out)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            url = process.stdout.readline().decode().strip()
            assert url.startswith("http://127.0.0.1:")
            assert httpx.get(url + "/x").content == b"data: cli\r\n\r\n"
        finally:
            process.send_signal(sig)
            _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert load_fixture(out).exchanges[0].body == b"data: cli\r\n\r\n"
    assert b"1 chunks, 13 bytes, complete" in err
