"""The loopback server itself: lifecycle, exact chunked streaming, abrupt closes, robustness to clients that
leave, and errors of server threads surfacing through ``check()``. Real sockets, real clients."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import parse_qsl

import httpx
import pytest
from _rawhttp import post_request, raw_exchange, split_chunked
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit.fixture._model import End
from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayError, ReplayRequest, Reply


def read_raw_chunks(url: str, target: str, body: bytes = b"{}") -> tuple[bytes, list[bytes], bool]:
    """Send one request on a raw socket; return (head, the HTTP chunks' payloads, whether the final
    0-chunk came)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return split_chunked(raw_exchange(host, int(port), post_request(target, body)))


def _fixed(pieces: list[tuple[float | None, bytes]], **kw: object) -> LoopbackServer:
    return LoopbackServer(
        lambda request: Reply(200, [("Content-Type", "text/event-stream")], list(pieces), **kw)
    )


def test_port_zero_gets_a_free_port_and_url_names_it() -> None:
    with _fixed([]) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/").status_code == 200


def test_ipv6_url_has_brackets() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = _fixed([(None, b"data: x\n\n")])
        server.host = "::1"
        server.start()
    except ReplayError as exc:
        pytest.skip(f"cannot bind ::1 here: {exc}")
    try:
        assert server.url == f"http://[::1]:{server.port}"
        assert httpx.get(server.url + "/").content == b"data: x\n\n"
    finally:
        server.stop()


def test_start_twice_raises_and_stop_when_stopped_raises() -> None:
    server = _fixed([])
    server.start()
    try:
        with pytest.raises(ReplayError, match="already running"):
            server.start()
    finally:
        server.stop()
    assert not server.is_running()
    with pytest.raises(ReplayError, match="not running"):
        server.stop()


def test_server_restarts_after_stop() -> None:
    server = _fixed([(None, b"data: 1\n\n")])
    with server:
        first = server.port
        assert httpx.get(server.url).content == b"data: 1\n\n"
    with server:
        assert httpx.get(server.url).content == b"data: 1\n\n"
    assert first > 0


def test_each_piece_is_one_http_chunk_and_the_stream_ends_with_the_final_chunk() -> None:
    pieces = [(0.0, b"data: a\r\n\r\n"), (0.0, b"da"), (0.0, b"ta: b\r\n\r\n")]
    with _fixed(pieces) as server:
        head, chunks, final = read_raw_chunks(server.url, "/")
    assert b"Transfer-Encoding: chunked" in head
    assert chunks == [b"data: a\r\n\r\n", b"da", b"ta: b\r\n\r\n"]
    assert final


def test_pieces_go_out_at_their_time_offsets() -> None:
    pieces = [(0.0, b"data: a\n\n"), (0.3, b"data: b\n\n")]
    arrivals = []
    with _fixed(pieces) as server:
        start = time.monotonic()
        with httpx.stream("GET", server.url) as response:
            for _ in response.iter_raw():
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.25  # the recorded gap is kept (only a lower bound is asserted)


@pytest.mark.parametrize("end", [End.RESET, End.TIMEOUT])
def test_an_abrupt_end_closes_without_the_final_chunk(end: str) -> None:
    with _fixed([(0.0, b"data: a\n\n")], end=end) as server:
        _, chunks, final = read_raw_chunks(server.url, "/")
        assert chunks == [b"data: a\n\n"]
        assert not final
        with (
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
            httpx.stream("GET", server.url) as response,
        ):
            for _ in response.iter_raw():
                pass
        # and the server goes on serving
        _, chunks, _ = read_raw_chunks(server.url, "/")
        assert chunks == [b"data: a\n\n"]


def test_a_client_that_leaves_mid_stream_does_not_hurt_the_server() -> None:
    pieces = [(0.0, b"data: first\n\n")] + [(0.02 * i, b"data: %d\n\n" % i) for i in range(1, 20)]
    with _fixed(pieces) as server:
        with httpx.stream("GET", server.url) as response:
            for _ in response.iter_raw():
                break  # leave after the first chunk; the server is still writing
        time.sleep(0.2)
        with httpx.Client() as client:
            assert client.get(server.url).status_code == 200
        server.check()  # a vanished client is no server error


def test_stop_ends_a_response_that_is_waiting_and_joins_quickly() -> None:
    with _fixed([(0.0, b"data: a\n\n"), (30.0, b"data: late\n\n")]) as server:
        got = threading.Event()

        def client() -> None:
            try:
                with httpx.stream("GET", server.url) as response:
                    for _ in response.iter_raw():
                        got.set()
            except httpx.HTTPError:
                pass

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        assert got.wait(5)
        start = time.monotonic()
        server.stop()
        assert time.monotonic() - start < 5
        thread.join(5)
        assert not thread.is_alive()


def test_an_error_in_the_handler_answers_500_and_check_reraises_it() -> None:
    def broken(request: ReplayRequest) -> Reply:
        raise ValueError("boom in handler")

    with LoopbackServer(broken) as server:
        response = httpx.get(server.url + "/x")
        assert response.status_code == 500
        with pytest.raises(ReplayError, match="boom in handler"):
            server.check()
        server.check()  # errors are reported once


def test_the_handler_sees_method_path_query_headers_and_body() -> None:
    seen: list[ReplayRequest] = []

    def handler(request: ReplayRequest) -> Reply:
        seen.append(request)
        return Reply(200, [("Content-Type", "text/plain")], [(None, b"ok")], stream=False)

    with LoopbackServer(handler) as server:
        response = httpx.post(server.url + "/a/b?key=k&alt=sse", content=b'{"x": 1}', headers={"X-Test": "1"})
    assert response.text == "ok" and response.headers["content-length"] == "2"
    (request,) = seen
    assert (request.method, request.path, request.query, request.body) == (
        "POST",
        "/a/b",
        "key=k&alt=sse",
        b'{"x": 1}',
    )
    assert request.params == {"key": "k", "alt": "sse"}
    assert request.header("x-test") == "1"
    assert server.requests == seen


def test_a_chunked_request_body_is_read() -> None:
    seen: list[bytes] = []

    def handler(request: ReplayRequest) -> Reply:
        seen.append(request.body)
        return Reply(200, [], [(None, b"ok")])

    def gen():  # type: ignore[no-untyped-def]
        yield b'{"a":'
        yield b" 1}"

    with LoopbackServer(handler) as server:
        assert httpx.post(server.url, content=gen()).text == "ok"
    assert seen == [b'{"a": 1}']


def test_a_malformed_request_body_gets_400_and_is_no_server_error() -> None:
    with _fixed([(None, b"data: x\n\n")]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert httpx.get(server.url).content == b"data: x\n\n"
        server.check()


def test_head_gets_the_head_without_a_body() -> None:
    with _fixed([(None, b"data: x\n\n")]) as server:
        response = httpx.head(server.url)
    assert (
        response.status_code == 200 and response.headers["content-length"] == "9" and response.content == b""
    )


@given(st.text(alphabet="ab=&;%+2F é", max_size=30))
def test_request_params_are_what_parse_qsl_gives(query: str) -> None:
    assert ReplayRequest("GET", "/", query).params == dict(parse_qsl(query, keep_blank_values=True))
