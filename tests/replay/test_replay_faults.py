"""Every fault, seen by a real client: google-genai for error statuses and mid-stream errors, httpx/aiohttp
and a raw socket for breaks, re-chunking and latency."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time

import aiohttp
import httpx
import pytest
from _rawhttp import post_request, raw_exchange, split_chunked
from google import genai
from google.genai import errors, types
from hypothesis import given, settings
from hypothesis import strategies as st

from sse_toolkit.fixture._builder import GeminiScript
from sse_toolkit.parser._exceptions import SSEUsageError
from sse_toolkit.parser._parser import parse
from sse_toolkit.replay import ReplayServer
from sse_toolkit.replay._faults import FAULTS_HEADER, Faults, parse_faults

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
WYOMING = FIXTURES / "wyoming.sse"  # 3 events: "The", " capital of Wyoming", " is **Cheyenne**.\n"
STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"


def _client(server: ReplayServer, **options: object) -> genai.Client:
    return genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url, **options))


def _raw_chunks(server: ReplayServer, target: str = STREAM) -> tuple[list[bytes], bool]:
    """The HTTP chunks of one response read on a raw socket, and whether the final 0-chunk came."""
    _, chunks, complete = split_chunked(raw_exchange("127.0.0.1", server.port, post_request(target)))
    return chunks, complete


@pytest.mark.parametrize(
    ("status", "kind", "name"),
    [
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_status_fault_gives_the_sdk_the_apis_error(status: int, kind: type, name: str) -> None:
    with ReplayServer(WYOMING, speed=0, status=status, retry_after=2) as server:
        client = _client(server)  # kept in a variable: a dropped client closes its connection pool
        with pytest.raises(kind) as caught:
            for _ in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
                pass
        raw = httpx.post(server.url + STREAM, json={})
    assert caught.value.code == status and caught.value.status == name
    assert raw.status_code == status
    assert raw.headers["content-type"] == "application/json; charset=UTF-8"
    assert raw.content.startswith(b'{\n  "error": {\n    "code": %d,' % status)
    if status == 429:
        assert raw.headers["retry-after"] == "2"
        retry = [d for d in caught.value.details["error"]["details"] if d["@type"].endswith("RetryInfo")]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]


def test_a_one_off_503_is_retried_by_the_sdk_and_then_succeeds() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.add_faults(status=503, count=1)
        client = _client(
            server, retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0.01, jitter=0)
        )
        answer = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
        assert answer.text == "The capital of Wyoming is **Cheyenne**.\n"
        assert len(server.requests) == 2


def test_error_after_n_events_raises_server_error_after_the_first_chunks_sync_and_async() -> None:
    with ReplayServer(WYOMING, speed=0, error_after=1) as server:
        got = []
        client = _client(server)
        with pytest.raises(errors.ServerError) as caught:
            for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
                got.append(chunk.text)
        assert got == ["The"] and caught.value.code == 503

        async def read_async() -> list[str]:
            texts: list[str] = []
            aclient = _client(server)
            stream = await aclient.aio.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
            async for chunk in stream:
                texts.append(chunk.text)
            return texts

        with pytest.raises(errors.ServerError):
            asyncio.run(read_async())
        body = httpx.post(server.url + STREAM, json={}).content
    first_event = WYOMING.read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert body.startswith(first_event)
    assert json.loads(body[len(first_event) :]) == {
        "error": {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
    }


def test_error_code_chooses_the_mid_stream_error() -> None:
    with ReplayServer(WYOMING, speed=0, error_after=2, error_code=500) as server:
        client = _client(server)
        with pytest.raises(errors.ServerError) as caught:
            list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert caught.value.code == 500


def test_disconnect_after_n_events_resets_the_connection_after_them() -> None:
    events = WYOMING.read_bytes().split(b"\r\n\r\n")
    received = b""
    with ReplayServer(WYOMING, speed=0, disconnect_after=2) as server:
        with (
            pytest.raises(httpx.TransportError),
            httpx.stream("POST", server.url + STREAM, json={}) as response,
        ):
            for piece in response.iter_raw():
                received += piece
        chunks, final = _raw_chunks(server)
        server.check()
    assert received == events[0] + b"\r\n\r\n" + events[1] + b"\r\n\r\n"
    assert not final and b"".join(chunks) == received


def test_disconnect_after_bytes_cuts_exactly_there() -> None:
    with ReplayServer(WYOMING, speed=0, disconnect_after_bytes=100) as server:
        chunks, final = _raw_chunks(server)

        async def read_aiohttp() -> bytes:
            got = b""
            async with (
                aiohttp.ClientSession() as session,
                session.post(server.url + STREAM, json={}) as response,
            ):
                with pytest.raises(aiohttp.ClientPayloadError):
                    async for piece in response.content.iter_any():
                        got += piece
            return got

        assert asyncio.run(read_aiohttp()) == WYOMING.read_bytes()[:100]
    assert b"".join(chunks) == WYOMING.read_bytes()[:100] and not final


def test_disconnect_fault_with_the_sdk_raises_and_the_next_request_still_works() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.add_faults(disconnect_after=1)
        client = _client(server)
        got = []
        with pytest.raises(Exception) as caught:  # the SDK lets the transport's error through
            for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
                got.append(chunk.text)
        assert got == ["The"]
        assert not isinstance(caught.value, errors.APIError)
        again = [
            c.text for c in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        ]
        assert "".join(again) == "The capital of Wyoming is **Cheyenne**.\n"


def test_rechunk_1_sends_every_byte_as_its_own_chunk_and_the_sdk_still_reads_it() -> None:
    with ReplayServer(WYOMING, speed=0, rechunk=1) as server:
        chunks, final = _raw_chunks(server)
        client = _client(server)
        texts = [
            c.text for c in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        ]
    assert final and all(len(c) == 1 for c in chunks)
    assert b"".join(chunks) == WYOMING.read_bytes()
    assert texts == ["The", " capital of Wyoming", " is **Cheyenne**.\n"]


def test_random_rechunk_is_repeatable_with_a_seed() -> None:
    sizes = []
    for _ in range(2):
        with ReplayServer(WYOMING, speed=0, rechunk="random", seed=7) as server:
            chunks, final = _raw_chunks(server)
            with httpx.stream("POST", server.url + STREAM, json={}) as response:
                events = parse(response.read())
        assert final and b"".join(chunks) == WYOMING.read_bytes()
        assert len(events) == 3
        sizes.append([len(c) for c in chunks])
    assert sizes[0] == sizes[1]
    assert len(set(sizes[0])) > 3 and max(sizes[0]) <= 32


def test_latency_delays_the_first_byte_and_event_latency_each_later_event() -> None:
    with ReplayServer(WYOMING, speed=0, latency=0.3, event_latency=0.1, jitter=0.05, seed=1) as server:
        start = time.monotonic()
        arrivals = []
        with httpx.stream("POST", server.url + STREAM, json={}) as response:
            for _ in response.iter_raw():
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 3
    assert arrivals[0] >= 0.3
    assert arrivals[2] >= 0.3 + 2 * 0.1  # lower bounds only: the machine may be slower, never faster


def test_faults_per_request_by_header() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        failing = httpx.post(server.url + STREAM, json={}, headers={FAULTS_HEADER: "status=503"})
        normal = httpx.post(server.url + STREAM, json={})
        sdk = _client(server, headers={FAULTS_HEADER: "error-after=1"})
        with pytest.raises(errors.ServerError):
            list(sdk.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert failing.status_code == 503 and normal.status_code == 200


def test_a_malformed_faults_header_is_answered_400_naming_the_problem() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        response = httpx.post(server.url + STREAM, json={}, headers={FAULTS_HEADER: "rechunk=huge"})
        server.check()  # the caller's mistake, not a server error
    assert response.status_code == 400
    assert "rechunk" in response.json()["error"]["message"]


def test_faults_reject_bad_values_with_a_clear_message() -> None:
    with pytest.raises(SSEUsageError, match="status"):
        Faults(status=200)
    with pytest.raises(SSEUsageError, match="rechunk"):
        Faults(rechunk=0)
    with pytest.raises(SSEUsageError, match="unknown fault 'colour'"):
        parse_faults("colour=red")
    with pytest.raises(SSEUsageError, match="not a number"):
        parse_faults("latency=soon")
    for name in ("latency", "event-latency", "jitter"):  # NaN is no number of seconds either
        with pytest.raises(SSEUsageError, match=">= 0 seconds"):
            parse_faults(f"{name}=nan")
    assert parse_faults("status=429; retry-after=3, rechunk=random") == Faults(
        status=429, retry_after=3, rechunk="random"
    )


@settings(max_examples=10, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abc é✓", min_size=1, max_size=6), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    cut=st.integers(0, 8),
)
def test_any_rechunking_keeps_the_bytes_and_any_cut_keeps_a_prefix(
    words: list[str], seed: int, cut: int
) -> None:
    script = GeminiScript("gemini-2.5-flash").text(" ".join(words))
    body = b"".join(script.events())
    url = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    with ReplayServer(script, speed=0) as server:
        whole = httpx.post(server.url + url, json={}, headers={FAULTS_HEADER: f"rechunk=random, seed={seed}"})
        received = b""
        try:
            with httpx.stream(
                "POST",
                server.url + url,
                json={},
                headers={FAULTS_HEADER: f"disconnect-after={cut}, rechunk=random, seed={seed}"},
            ) as response:
                for piece in response.iter_raw():
                    received += piece
        except httpx.TransportError:
            pass
        server.check()
    assert whole.content == body
    events = body.split(b"\r\n\r\n")[:-1]
    assert received == b"".join(e + b"\r\n\r\n" for e in events[:cut])
