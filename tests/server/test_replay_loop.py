"""The one-loop server's HTTP/1.1 over real loopback sockets: pipelined requests answered in order, a request
sent one byte at a time, a chunked body split across many writes, ``Expect: 100-continue``, keep-alive and
HEAD on both the loop path (a ``cpu_only`` handler) and the thread path (any other handler); a client that
never reads a 64 MiB stream delays no one and is cut by ``stop()``; a handler raising on the loop answers
500. Regressions: a burst of pieces outlasting the head deadline ends with one final chunk, a partial
pipelined request keeps its head deadline, pipelined requests before a half-close are all answered, a
refusal after a HEAD keeps its body. And a property of ``RequestReader``: any split of a byte stream of
pipelined requests parses as the whole stream does."""

from __future__ import annotations

import contextlib
import random
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit.server._http import ParsedRequest, Refusal, RequestReader
from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayError, ReplayRequest, Reply

Handler = Callable[[ReplayRequest], Reply]
PATHS = {"loop": True, "thread": False}  # the handler's cpu_only: called by the loop, or on a worker thread


def _on(path: str, handler: Handler) -> Handler:
    """``handler`` as the loop (``cpu_only``) or a worker thread serves it."""
    handler.cpu_only = PATHS[path]  # type: ignore[attr-defined]
    return handler


def _echo(request: ReplayRequest) -> Reply:
    """Two chunks: what was asked (method and target), then the request body (when there is one)."""
    said = f"{request.method} {request.target} ".encode()
    return Reply(200, [("Content-Type", "text/plain")], [(None, said), (None, request.body)])


@pytest.fixture(params=list(PATHS))
def echo(request: pytest.FixtureRequest) -> Iterator[LoopbackServer]:
    with LoopbackServer(_on(request.param, _echo)) as server:
        yield server
        server.check()


def _connect(server: LoopbackServer, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each send leaves as its own segment
    return sock


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, chunks: list[bytes]) -> None:
        self.status, self.headers, self.body, self.chunks = status, headers, body, chunks


class Responses:
    """Reads responses one after another off a kept-alive raw socket, strictly: any stray byte between
    them (a second final chunk, a body after a HEAD answer) fails the next read."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def next(self, head_only: bool = False) -> Response:
        status_line = self.file.readline()
        assert status_line.startswith(b"HTTP/1.1 ") and status_line.endswith(b"\r\n"), status_line
        headers: dict[str, str] = {}
        while (line := self.file.readline()) != b"\r\n":
            assert line.endswith(b"\r\n"), line
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.lower()] = value.strip()
        chunks: list[bytes] = []
        if head_only:
            body = b""
        elif "content-length" in headers:
            body = self.file.read(int(headers["content-length"]))
        else:
            assert headers.get("transfer-encoding") == "chunked", headers
            while size := int(self.file.readline(), 16):
                chunks.append(self.file.read(size))
                assert self.file.read(2) == b"\r\n"
            assert self.file.readline() == b"\r\n"  # the end of the final chunk
            body = b"".join(chunks)
        return Response(int(status_line.split()[1]), headers, body, chunks)

    def at_eof(self) -> bool:
        """True when the server closed (or reset) the connection with nothing more sent."""
        try:
            return self.file.read(1) == b""
        except ConnectionResetError:
            return True


def _get(target: str, *headers: str) -> bytes:
    return (
        "".join([f"GET {target} HTTP/1.1\r\nHost: x\r\n", *(h + "\r\n" for h in headers), "\r\n"])
    ).encode()


def _post(target: str, body: bytes, *headers: str) -> bytes:
    return _get(target, f"Content-Length: {len(body)}", *headers).replace(b"GET", b"POST", 1) + body


def _chunked(body_pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body_pieces) + b"0\r\n\r\n"


# -- keep-alive, pipelining, split requests ---------------------------------------------------------------


def test_keep_alive_serves_several_requests_one_after_another_on_one_connection(echo: LoopbackServer) -> None:
    with _connect(echo) as sock:
        responses = Responses(sock)
        for n in range(5):
            sock.sendall(_post(f"/n{n}", b"body %d" % n))
            response = responses.next()
            assert (response.status, response.body) == (200, b"POST /n%d body %d" % (n, n))
            assert response.headers.get("connection") != "close"
    assert [r.path for r in echo.requests] == [f"/n{n}" for n in range(5)]


def test_keep_alive_with_httpx_reuses_one_connection(echo: LoopbackServer) -> None:
    with httpx.Client(limits=httpx.Limits(max_connections=1)) as client:
        peers = set()
        for n in range(4):
            with client.stream("POST", f"{echo.url}/c{n}", content=b"x" * n) as response:
                assert response.read() == b"POST /c%d " % n + b"x" * n
                peers.add(response.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(peers) == 1  # the same local address and port: one connection served all four


def test_pipelined_requests_on_one_connection_are_all_answered_in_order(echo: LoopbackServer) -> None:
    requests = [
        _get("/a?x=1"),
        _post("/b", b"content-length body"),
        _get("/c", "Transfer-Encoding: chunked").replace(b"GET", b"PUT", 1) + _chunked([b"chun", b"ked"]),
        b"\r\n" + _get("/d"),  # a blank line between requests is allowed
        _post("/e", b"last", "Connection: close"),
    ]
    with _connect(echo) as sock:
        sock.sendall(b"".join(requests))  # all at once, before any answer
        responses = Responses(sock)
        bodies = [responses.next().body for _ in requests]
        assert responses.at_eof()  # Connection: close on the last one
    assert bodies == [
        b"GET /a?x=1 ",
        b"POST /b content-length body",
        b"PUT /c chunked",
        b"GET /d ",
        b"POST /e last",
    ]


def test_a_request_sent_one_byte_at_a_time_is_answered(echo: LoopbackServer) -> None:
    request = _post("/slow?q=1", b'{"one": "byte at a time"}', "X-Long-Header: " + "v" * 40)
    with _connect(echo) as sock:
        for i in range(len(request)):
            sock.send(request[i : i + 1])
            time.sleep(0.0005)  # let the server read most bytes on their own
        response = Responses(sock).next()
    assert response.body == b'POST /slow?q=1 {"one": "byte at a time"}'


def test_a_chunked_request_body_split_across_many_writes_is_read(echo: LoopbackServer) -> None:
    pieces = [b"first piece ", b"x" * 300, b" third;", b"\r\n", b"last"]
    wire = _get("/chunked", "Transfer-Encoding: chunked").replace(b"GET", b"POST", 1) + _chunked(pieces)
    head_end = wire.index(b"\r\n\r\n") + 4
    # cut inside the head, inside size lines, between CR and LF, inside the data and inside the final chunk
    cuts = sorted({*range(head_end - 3, len(wire), 7), head_end, len(wire) - 3, len(wire) - 1})
    with _connect(echo) as sock:
        start = 0
        for cut in [*cuts, len(wire)]:
            sock.send(wire[start:cut])
            start = cut
            time.sleep(0.001)
        response = Responses(sock).next()
    assert response.body == b"POST /chunked " + b"".join(pieces)
    assert echo.requests[-1].body == b"".join(pieces)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_expect_100_continue_gets_100_before_the_body_is_sent_then_the_answer(
    echo: LoopbackServer, framing: str
) -> None:
    body = b'{"sent": "after 100"}'
    if framing == "chunked":
        head, rest = (
            _get("/e", "Expect: 100-continue", "Transfer-Encoding: chunked"),
            _chunked([body[:5], body[5:]]),
        )
    else:
        head, rest = _get("/e", "Expect: 100-continue", f"Content-Length: {len(body)}"), body
    with _connect(echo, timeout=5) as sock:
        sock.sendall(head.replace(b"GET", b"POST", 1))
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            piece = sock.recv(1)  # byte by byte: nothing of the final answer is read here
            assert piece, "the server closed instead of answering 100 Continue"
            interim += piece
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(rest)
        response = Responses(sock).next()
    assert response.body == b"POST /e " + body


def test_head_gets_the_head_only_and_the_connection_serves_the_next_request(echo: LoopbackServer) -> None:
    with _connect(echo) as sock:
        sock.sendall(_get("/h").replace(b"GET", b"HEAD", 1) + _get("/after"))
        responses = Responses(sock)
        head = responses.next(head_only=True)
        assert head.status == 200 and head.headers["content-length"] == str(len(b"HEAD /h "))
        assert "transfer-encoding" not in head.headers
        assert responses.next().body == b"GET /after "  # so no body bytes followed the HEAD answer


# -- one client does not hold up the others; stop() -------------------------------------------------------

BIG_PIECE = b"x" * 65536
BIG_PIECES = 1024  # 64 MiB, far more than the socket buffers hold


def _big_or_small(request: ReplayRequest) -> Reply:
    if request.path == "/big":
        return Reply(200, [], [(None, BIG_PIECE)] * BIG_PIECES)
    return Reply(200, [], [(None, b"data: small\n\n"), (0.05, b"data: done\n\n")])


def _drain(sock: socket.socket) -> tuple[int, bool]:
    """Read until the server closes: (bytes read, whether it closed, not timed out)."""
    total = 0
    try:
        while piece := sock.recv(1 << 20):
            total += len(piece)
    except ConnectionResetError:
        pass
    except TimeoutError:
        return total, False
    return total, True


# stop() must not wait for a stream's next piece (30 s away in these tests): a deadline well below that,
# generous for a loaded machine. It bounds a hang, it does not time the server.
STOP_DEADLINE = 10.0


def _stop_and_drain(server: LoopbackServer, sock: socket.socket) -> tuple[float, int, bool]:
    """Stop ``server``; (seconds stop() took, bytes ``sock`` still read, whether the server closed it)."""
    start = time.monotonic()
    server.stop()
    took = time.monotonic() - start
    with sock:
        total, closed = _drain(sock)
    return took, total, closed


def test_a_client_that_never_reads_a_big_stream_does_not_delay_another_and_stop_cuts_it() -> None:
    with LoopbackServer(_on("loop", _big_or_small)) as server:
        stalled = _connect(server, timeout=5)
        stalled.sendall(_get("/big"))
        assert stalled.recv(16).startswith(b"HTTP/1.1 200")  # the stream is under way; then it is never read
        time.sleep(0.3)  # the server fills the socket buffers and is left waiting for them to drain
        # Served within the client's own deadline while the other stream stays stalled.
        response = httpx.get(server.url + "/small", timeout=5)
        assert response.content == b"data: small\n\ndata: done\n\n"
        stop_took, total, closed = _stop_and_drain(server, stalled)
    assert stop_took < STOP_DEADLINE
    assert closed  # the stalled connection was closed (or reset) by stop()
    assert total < BIG_PIECES * len(BIG_PIECE)  # cut: the 64 MiB never all went out


@pytest.mark.parametrize("stream", ["paced", "unread"])
def test_stop_ends_a_threaded_handlers_stream_in_progress_quickly(stream: str) -> None:
    def handler(request: ReplayRequest) -> Reply:
        if stream == "paced":  # the worker thread waits 30 s for the next piece
            return Reply(200, [], [(None, b"data: a\n\n"), (30.0, b"data: late\n\n")])
        return Reply(200, [], [(None, BIG_PIECE)] * BIG_PIECES)  # the worker blocks in a write

    server = LoopbackServer(_on("thread", handler))
    server.start()
    sock = _connect(server, timeout=5)
    sock.sendall(_get("/"))
    assert sock.recv(16).startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    took, _, closed = _stop_and_drain(server, sock)
    assert took < STOP_DEADLINE  # the stream would hold a stop() that waits for it 30 s
    assert closed
    server.check()


def test_a_handler_raising_on_the_loop_answers_500_and_check_reraises_it() -> None:
    def broken(request: ReplayRequest) -> Reply:
        raise ValueError("boom on the loop")

    with LoopbackServer(_on("loop", broken)) as server:
        response = httpx.get(server.url + "/x")
        assert response.status_code == 500 and b"boom on the loop" in response.content
        with pytest.raises(ReplayError, match="boom on the loop"):
            server.check()
        assert httpx.get(server.url + "/y").status_code == 500  # the loop goes on serving
        server.errors.clear()


# -- regressions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pieces", [15000, 15001])  # both parities: a doubled step shows at the end in one
def test_a_burst_of_pieces_outlasting_the_head_deadline_ends_with_exactly_one_final_chunk(
    pieces: int,
) -> None:
    # The head deadline's timer must not fire into a response being written: it stepped the response
    # a second time, and the final chunk went out twice (garbage before the next kept-alive answer).
    def burst(request: ReplayRequest) -> Reply:
        return Reply(200, [], [(None, b"x")] * pieces if request.path == "/burst" else [(None, b"next")])

    server = LoopbackServer(_on("loop", burst))
    server.header_timeout = 0.1  # the burst (~0.3 s) outlasts it
    with server, _connect(server) as sock:
        sock.sendall(_get("/burst") + _get("/next"))
        responses = Responses(sock)
        assert len(responses.next().chunks) == pieces
        assert responses.next().body == b"next"


def test_a_partial_pipelined_request_still_gets_the_head_deadline() -> None:
    server = LoopbackServer(_on("loop", _echo))
    server.header_timeout = 0.3
    with server, _connect(server, timeout=5) as sock:
        sock.sendall(_get("/one") + b"GET /tw")  # then silence
        responses = Responses(sock)
        assert responses.next().body == b"GET /one "
        assert responses.at_eof()  # closed by the head deadline, not left open (a timeout fails here)


@pytest.mark.parametrize("path", list(PATHS))
def test_pipelined_requests_followed_by_a_half_close_are_all_answered(path: str) -> None:
    with LoopbackServer(_on(path, _echo)) as server, _connect(server, timeout=5) as sock:
        sock.sendall(_get("/one") + _get("/two") + _get("/three"))
        sock.shutdown(socket.SHUT_WR)  # as `printf ... | nc` does: done sending, waiting for the answers
        responses = Responses(sock)
        assert [responses.next().body for _ in range(3)] == [b"GET /one ", b"GET /two ", b"GET /three "]
        assert responses.at_eof()


def test_a_refused_request_after_a_head_request_gets_its_body() -> None:
    with LoopbackServer(_on("loop", _echo)) as server, _connect(server, timeout=5) as sock:
        sock.sendall(
            _get("/h").replace(b"GET", b"HEAD", 1) + b"POST / HTTP/1.1\r\nContent-Length: lots\r\n\r\n"
        )
        responses = Responses(sock)
        assert responses.next(head_only=True).status == 200
        refused = responses.next()
        assert refused.status == 400 and b"Content-Length" in refused.body
        assert responses.at_eof()


# -- RequestReader: any split parses as the whole ----------------------------------------------------------

_NAME = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=8).map(lambda s: "X-" + s)
_VALUE = st.text(string.ascii_letters + string.digits + " !#$%&'*+-.^_|~:;,/=?@", max_size=12).map(str.strip)


@st.composite
def pipelined(draw: st.DrawFn) -> tuple[bytes, list[ParsedRequest]]:
    """A byte stream of 1 to 4 pipelined requests (bodies with Content-Length, chunked with extensions and
    trailers, or none; CRLF or bare LF line ends; blank lines between; a head sent again, as a client's
    next call sends it, with another body of the same length) and the requests it holds."""
    stream = b""
    expected: list[ParsedRequest] = []
    previous: tuple[bytes, str, bytes] | None = None  # the last request's head, framing and framed body
    for _ in range(draw(st.integers(1, 4))):
        if previous is not None and draw(st.integers(0, 2)) == 0:
            head_bytes, framing, framed = previous
            last = expected[-1]
            if framing == "content-length":
                framed = draw(st.binary(min_size=len(last.body), max_size=len(last.body)))
            body = framed if framing == "content-length" else last.body
            stream += draw(st.sampled_from([b"", b"\r\n", b"\n"])) + head_bytes + framed
            expected.append(
                ParsedRequest(last.method, last.target, last.version, last.headers, body, last.keep_alive)
            )
            continue
        eol = draw(st.sampled_from(["\r\n", "\n"]))
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
        target = "/" + draw(st.text(string.ascii_letters + string.digits + "/-_.?=&", max_size=12)).lstrip(
            "/"
        )
        headers = draw(st.lists(st.tuples(_NAME, _VALUE), max_size=4))
        body = draw(st.binary(max_size=60))
        framing = draw(st.sampled_from(["content-length", "chunked"] + ([] if body else ["none"])))
        if framing == "content-length":
            headers.append(("Content-Length", str(len(body))))
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        if draw(st.booleans()):
            headers.append(("Expect", "100-continue"))
        close = draw(st.integers(0, 5)) == 0
        if close:
            headers.append(("Connection", "close"))
        head = f"{method} {target} HTTP/1.1{eol}" + "".join(f"{k}: {v}{eol}" for k, v in headers) + eol
        framed = b""
        if framing == "content-length":
            framed = body
        elif framing == "chunked":
            cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=4))) if body else []
            for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
                if end > start:
                    ext = draw(st.sampled_from(["", ";ext", ";a=b"]))
                    framed += b"%x%s\r\n%s\r\n" % (end - start, ext.encode(), body[start:end])
            framed += b"0\r\n" + draw(st.sampled_from([b"", b"X-Trailer: t\r\n"])) + b"\r\n"
        previous = (head.encode("latin-1"), framing, framed)
        stream += (
            (draw(st.sampled_from([b"", b"\r\n", b"\n"])) if expected else b"") + previous[0] + framed
        )  # blank lines between
        expected.append(ParsedRequest(method, target, "HTTP/1.1", headers, body, not close))
    return stream, expected


def _parse(pieces: list[bytes]) -> list[ParsedRequest]:
    reader = RequestReader(max_head=64 * 1024, max_body=64 * 1024)
    parsed: list[ParsedRequest] = []
    for piece in pieces:
        reader.feed(piece)
        while (request := reader.next_request()) is not None:
            parsed.append(request)
    assert reader.idle  # nothing left over
    return parsed


@given(pipelined(), st.data())
def test_any_split_of_pipelined_requests_parses_as_the_whole(
    case: tuple[bytes, list[ParsedRequest]], data: st.DataObject
) -> None:
    stream, expected = case
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=12), label="cuts"))
    split = [stream[start:end] for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = _parse([stream])
    assert whole == expected
    assert _parse(split) == whole
    assert _parse([stream[i : i + 1] for i in range(len(stream))]) == whole  # byte by byte


def test_every_accepted_connection_has_nagle_off_so_each_piece_leaves_at_once() -> None:
    def handler(request: ReplayRequest) -> Reply:
        return Reply(200, [], [(None, b"data: a\n\n"), (5.0, b"data: later\n\n")])

    with LoopbackServer(_on("loop", handler)) as server:
        sock = _connect(server, timeout=5)
        with sock:
            sock.sendall(_get("/"))
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            assert server._loop is not None
            (conn,) = server._loop.conns.values()
            assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


# -- a broken reply, a huge HEAD, running out of descriptors: one connection suffers, never the server ------


@pytest.mark.parametrize("path", list(PATHS))
def test_a_reply_that_breaks_while_sent_ends_its_connection_and_the_server_goes_on(path: str) -> None:
    def handler(request: ReplayRequest) -> Reply:
        if request.path == "/broken":  # str, not bytes: framing it as a chunk raises TypeError
            return Reply(200, [], [(None, "data: not bytes\n\n")])  # type: ignore[list-item]
        return Reply(200, [("X-Note", "café€")], [(None, b"data: ok\n\n")])

    with LoopbackServer(_on(path, handler)) as server:
        with _connect(server, timeout=5) as sock:
            sock.sendall(_get("/broken"))
            got = b""
            with contextlib.suppress(ConnectionResetError):
                while piece := sock.recv(65536):
                    got += piece
        if path == "loop":  # the head waits to go with the first piece: nothing was sent, so a 500 instead
            assert got.startswith(b"HTTP/1.1 500 ") and b"internal error" in got, got
        else:  # a worker thread sends the head first: then the connection is closed without a body
            assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\n"), got
        with pytest.raises(ReplayError, match="TypeError"):
            server.check()
        response = httpx.get(server.url + "/fine", timeout=5)  # the loop still serves
        assert response.content == b"data: ok\n\n"
        assert (b"x-note", "café€".encode()) in [(k.lower(), v) for k, v in response.headers.raw]  # as UTF-8
        server.check()


def test_head_of_a_huge_stream_answers_at_once_without_reading_it_all() -> None:
    read: list[int] = []

    def body() -> Iterator[tuple[float | None, bytes]]:
        for n in range(1 << 16):  # 4 GiB if it were all read
            read.append(n)
            yield None, b"x" * 65536

    def handler(request: ReplayRequest) -> Reply:
        return Reply(200, [("Content-Type", "text/event-stream")], body())

    with LoopbackServer(_on("loop", handler)) as server:
        with _connect(server, timeout=5) as sock:
            sock.sendall(_get("/", "Connection: close").replace(b"GET", b"HEAD", 1))
            responses = Responses(sock)
            head = responses.next(head_only=True)
            assert head.status == 200 and head.headers.get("transfer-encoding") == "chunked"
            assert responses.at_eof()  # no body after the head
        assert len(read) <= 20  # stopped after ~1 MiB


def test_replaced_timers_do_not_pile_up_over_many_kept_alive_requests() -> None:
    with LoopbackServer(_on("loop", _echo)) as server, _connect(server, timeout=10) as sock:
        responses = Responses(sock)
        for n in range(3000):  # each request leaves its head deadline behind in the timer heap
            sock.sendall(_get(f"/{n}"))
            assert responses.next().status == 200
        assert server._loop is not None
        assert len(server._loop.timers) <= 2 * len(server._loop.conns) + 1025


def test_out_of_descriptors_new_clients_get_503_and_the_server_survives(tmp_path: Any) -> None:
    # The server runs in a process that may open only 100 descriptors; 150 clients connect from this one.
    script = tmp_path / "few_fds.py"
    script.write_text(
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from sse_toolkit.server._lifecycle import LoopbackServer\n"
        "from sse_toolkit.server._loop import Reply\n"
        "def handler(request):\n"
        "    return Reply(200, [], [(None, b'data: a\\n\\n'), (0.5, b'data: later\\n\\n')])\n"
        "handler.cpu_only = True\n"
        "with LoopbackServer(handler) as server:\n"
        "    print(server.port, flush=True)\n"
        "    sys.stdin.readline()\n"
        "    print(len(server.errors), flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        socks = []
        for _ in range(150):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(_get("/"))
            socks.append(sock)
        statuses = [sock.recv(12)[9:12] for sock in socks]
        for sock in socks:
            sock.close()
        # Past its cap (the descriptor limit less a reserve) a client gets 503 at once; none is left hanging.
        assert statuses.count(b"200") + statuses.count(b"503") == 150, statuses
        assert statuses.count(b"200") > 0 and statuses.count(b"503") > 0, statuses
        # Once the streams have ended (their last piece was due at 0.5 s) descriptors are free again.
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(_get("/"))
                status = sock.recv(12)
            if status == b"HTTP/1.1 200" or time.monotonic() > deadline:
                break
        assert status == b"HTTP/1.1 200"
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        assert int(proc.stdout.readline()) == 0  # no error: accept() never ran out of descriptors
    finally:
        proc.kill()
        proc.wait()


def test_pieces_due_at_once_reach_a_late_small_buffered_reader_whole_and_in_order() -> None:
    """Pieces due at the same time leave together (one writev), so a socket that takes only part of them
    cuts the write anywhere, inside a piece or between two: every byte and chunk boundary must still
    arrive, in order, and the connection must serve the next request."""
    rng = random.Random(5)
    pieces = [bytes([65 + n % 26]) * rng.choice([1, 7, 40, 4096, 70_000]) for n in range(400)]

    def many(request: ReplayRequest) -> Reply:
        return Reply(200, [("Content-Type", "text/plain")], [(0.0, p) for p in pieces])

    with LoopbackServer(_on("loop", many)) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        with sock:
            reader = Responses(sock)
            for _ in range(2):
                sock.sendall(_get("/many"))
                time.sleep(0.2)  # the reader is late: the writes fill both socket buffers and are cut
                response = reader.next()
                assert response.status == 200
                assert response.chunks == pieces
        server.check()


def test_a_burst_of_new_connections_gets_every_first_piece_before_any_second() -> None:
    """Clients that connect while the loop is busy are all accepted in one turn: each stream's first step
    takes one piece, so every stream's first piece is read (and written) before any stream's second."""
    entered, release = threading.Event(), threading.Event()
    reads: list[tuple[str, int]] = []

    def pieces(name: str) -> Iterator[tuple[float | None, bytes]]:
        for index in range(100):
            reads.append((name, index))
            yield 0.0, b"data: %d\n\n" % index

    def handler(request: ReplayRequest) -> Reply:
        if request.path == "/block":
            entered.set()
            release.wait(10)  # the loop is busy: the others wait in the backlog
            return Reply(200, [], [(None, b"done")])
        return Reply(200, [], pieces(request.path))

    with LoopbackServer(_on("loop", handler)) as server:
        blocker = _connect(server)
        blocker.sendall(_get("/block"))
        assert entered.wait(10)
        clients = [_connect(server) for _ in range(10)]
        for n, sock in enumerate(clients):
            sock.sendall(_get(f"/s{n}"))
        release.set()
        for sock in clients:
            assert Responses(sock).next().status == 200
            sock.close()
        blocker.close()
        server.check()
    first_seconds = [i for i, (_, index) in enumerate(reads) if index == 1]
    last_first = max(i for i, (_, index) in enumerate(reads) if index == 0)
    assert last_first < min(first_seconds), reads[:30]


# -- a connection's last head, read again --------------------------------------------------------------


def test_a_request_after_a_stray_empty_line_is_paced_from_its_own_first_byte() -> None:
    def paced(request: ReplayRequest) -> Reply:
        return Reply(200, [], [(0.3, b"data: late\n\n")])

    with LoopbackServer(_on("loop", paced)) as server, _connect(server) as sock:
        sock.sendall(b"\r\n")  # an empty line long before the request: not where its pace starts
        time.sleep(0.5)
        sent = time.monotonic()
        sock.sendall(_get("/"))
        got = b""
        while b"data: late" not in got:
            data = sock.recv(65536)
            assert data
            got += data
        assert time.monotonic() - sent >= 0.29
        server.check()


def test_a_handler_that_replaces_the_headers_or_the_query_reads_the_new_ones() -> None:
    seen: list[tuple[str | None, str | None, dict[str, str], int]] = []

    def replacing(request: ReplayRequest) -> Reply:
        request.headers = [("X-Key", "replaced"), ("X-More", "yes")]
        request.query = "key=changed"
        seen.append((request.header("x-key"), request.param("key"), request.params, request.fields_size))
        return Reply(200, [], [(None, b"ok")], stream=False)

    with LoopbackServer(_on("loop", replacing)) as server, httpx.Client(base_url=server.url) as client:
        for _ in range(2):  # the second request's head is the first's again: read without parsing
            assert client.get("/p?key=orig", headers={"X-Key": "sent"}).text == "ok"
        server.check()
    assert seen == [("replaced", "changed", {"key": "changed"}, len("X-Keyreplaced") + len("X-Moreyes"))] * 2


def test_a_head_sent_again_is_read_under_the_limits_in_force_now() -> None:
    reader = RequestReader(max_head=64 * 1024, max_body=1000)
    request = _post("/p", b"x" * 500)
    reader.feed(request)
    first = reader.next_request()
    assert first is not None and first.body == b"x" * 500
    reader.max_body = 100  # lowered between the two: the same head is now over the limit
    reader.feed(request)
    with pytest.raises(Refusal) as refused:
        reader.next_request()
    assert refused.value.status == 413


def test_a_long_head_sent_again_reads_the_same() -> None:
    reader = RequestReader(max_head=64 * 1024, max_body=1000)
    request = _get("/p", "X-Long: " + "y" * 20_000)  # over the size of the head a connection keeps
    for _ in range(3):
        reader.feed(request)
        parsed = reader.next_request()
        assert parsed is not None and parsed.headers[-1] == ("X-Long", "y" * 20_000)
    assert reader.idle


def test_a_handler_that_changes_the_headers_in_place_before_asking_reads_the_change() -> None:
    seen: list[tuple[str | None, str | None, int]] = []

    def changing(request: ReplayRequest) -> Reply:
        request.headers.append(("X-Added", "v"))
        request.headers[0] = ("Host", "changed")
        seen.append((request.header("x-added"), request.header("host"), request.fields_size))
        return Reply(200, [], [(None, b"ok")], stream=False)

    with LoopbackServer(_on("loop", changing)) as server, _connect(server) as sock:
        responses = Responses(sock)
        for _ in range(2):  # the second time from the connection's last head
            sock.sendall(_get("/"))
            assert responses.next().status == 200
        server.check()
    assert seen == [("v", "changed", len("Hostchanged") + len("X-Addedv"))] * 2


def test_out_of_descriptors_accept_failing_is_reported_once_and_clients_are_served_after(
    tmp_path: Any,
) -> None:
    script = tmp_path / "no_fds.py"
    script.write_text(
        "import os, resource, socket, time\n"
        "from sse_toolkit.server._lifecycle import LoopbackServer\n"
        "from sse_toolkit.server._loop import Reply\n"
        "def handler(request):\n"
        "    return Reply(200, [], [(None, request.path.encode())], stream=False)\n"
        "handler.cpu_only = True\n"
        "with LoopbackServer(handler) as server:\n"
        "    clients = [socket.socket() for _ in range(3)]\n"
        "    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "    top = max(int(fd) for fd in os.listdir('/proc/self/fd'))\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (top + 5, hard))\n"
        "    taken = []\n"
        "    try:\n"
        "        while True:\n"
        "            taken.append(os.open('/dev/null', os.O_RDONLY))\n"
        "    except OSError:\n"
        "        pass\n"
        "    for client in clients:\n"
        "        client.settimeout(10)\n"
        "        client.connect(('127.0.0.1', server.port))\n"
        "        client.sendall(b'GET /x HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "    time.sleep(0.6)  # accept() fails, and is tried again every 0.1 s meanwhile\n"
        "    for fd in taken:\n"
        "        os.close(fd)\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
        "    print(all(client.recv(1000).endswith(b'/x') for client in clients), len(server.errors))\n"
        "    server.errors.clear()\n"
    )
    if not sys.platform.startswith("linux"):
        pytest.skip("counts descriptors in /proc/self/fd")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "1"], out.stdout + out.stderr
