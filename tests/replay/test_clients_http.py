"""Plain HTTP clients (httpx sync and async, aiohttp, requests) read replayed streams as they were
recorded, chunk by chunk, and the server survives clients that leave mid-stream."""

from __future__ import annotations

import asyncio
import pathlib
import time

import aiohttp
import httpx
import requests

from sse_toolkit.fixture._model import Chunk, Exchange
from sse_toolkit.parser._parser import EventParser, parse
from sse_toolkit.replay import ReplayServer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"


def test_httpx_reads_each_event_as_its_own_chunk() -> None:
    body = (FIXTURES / "wyoming.sse").read_bytes()
    with (
        ReplayServer(FIXTURES / "wyoming.sse", speed=0) as server,
        httpx.stream("POST", server.url + STREAM, json={}) as response,
    ):
        pieces = list(response.iter_raw())
    assert b"".join(pieces) == body
    assert len(parse(body)) == 3


def test_httpx_async_and_aiohttp_read_the_stream_live() -> None:
    body = (FIXTURES / "thinking.sse").read_bytes()

    async def both(url: str) -> tuple[bytes, bytes]:
        async with httpx.AsyncClient() as client, client.stream("POST", url, json={}) as response:
            via_httpx = b"".join([piece async for piece in response.aiter_raw()])
        async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
            via_aiohttp = b"".join([piece async for piece in response.content.iter_any()])
        return via_httpx, via_aiohttp

    with ReplayServer(FIXTURES / "thinking.sse", speed=0) as server:
        assert asyncio.run(both(server.url + STREAM)) == (body, body)


def test_recorded_timing_reaches_the_client_one_event_at_a_time() -> None:
    exchange = Exchange(
        headers=[("Content-Type", "text/event-stream")],
        chunks=[Chunk(b"data: one\n\n", 0.0), Chunk(b"data: two\n\n", 0.2), Chunk(b"data: three\n\n", 0.4)],
    )
    seen = []
    with ReplayServer(exchange) as server:
        start = time.monotonic()
        with requests.get(server.url + "/events", stream=True, timeout=10) as response:
            parser = EventParser()
            for piece in response.iter_content(chunk_size=None):
                for event in parser.feed(piece):
                    seen.append((event.data, time.monotonic() - start))
    assert [data for data, _ in seen] == ["one", "two", "three"]
    assert seen[2][1] >= 0.4 * 0.9 and seen[1][1] >= 0.2 * 0.9  # gaps kept; lower bounds only


def test_speed_two_halves_the_recorded_gaps() -> None:
    exchange = Exchange(
        headers=[("Content-Type", "text/event-stream")],
        chunks=[Chunk(b"data: a\n\n", 0.0), Chunk(b"data: b\n\n", 0.6)],
    )
    with ReplayServer(exchange, speed=2) as server:
        start = time.monotonic()
        assert httpx.get(server.url + "/").content == b"data: a\n\ndata: b\n\n"
    assert time.monotonic() - start >= 0.3 * 0.9


def test_a_client_that_disconnects_mid_stream_then_the_next_request_works() -> None:
    exchange = Exchange(
        headers=[("Content-Type", "text/event-stream")],
        chunks=[Chunk(b"data: %d\n\n" % i, 0.02 * i) for i in range(30)],
    )
    with ReplayServer(exchange) as server:
        for _ in range(3):
            with httpx.stream("GET", server.url + "/events") as response:
                first = next(response.iter_raw())
            assert first == b"data: 0\n\n"
        with httpx.Client() as client:
            assert client.get(server.url + "/events").content.count(b"data:") == 30
        server.check()
