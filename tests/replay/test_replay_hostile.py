"""The replay server against hostile and broken input, over raw sockets: it listens on loopback unless told
otherwise (and warns when told), never serves a file outside its fixtures (``..``, ``%2e%2e``, ``%2f`` in a
model name, absolute paths, symlinks out of the directory), answers oversized heads 431, oversized bodies
413 and garbage 400, drops clients that never finish their head without blocking others, refuses broken
fixture files with ``FILE:LINE`` and no traceback, and stops promptly with streams open."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from _rawhttp import raw_exchange

from sse_toolkit import FixtureError, ReplayServer
from sse_toolkit.fixture import FixtureWarning
from sse_toolkit.fixture._model import Chunk, Exchange, Fixture

SECRET = b"TOP-SECRET-OUTSIDE-THE-FIXTURE-DIRECTORY"
_SCRIPT = pathlib.Path(sys.executable).parent / "sse-replay"
COMMAND = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from sse_toolkit.cli import replay_main; replay_main()"]
)


def raw(server: ReplayServer, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` as it is on a fresh connection; return everything the server sent until it closed."""
    return raw_exchange("127.0.0.1", server.port, request, timeout)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture
def fixture_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Two generic fixtures in ``served/``; a secret next to the directory, and a symlink to it inside."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "cats.sse").write_bytes(b"data: meow\n\n")
    (served / "dogs.sse").write_bytes(b"data: woof\n\n")
    (tmp_path / "secret.sse").write_bytes(b"data: " + SECRET + b"\n\n")
    (tmp_path / "passwd").write_bytes(b"data: " + SECRET + b"\n\n")
    os.symlink(tmp_path / "secret.sse", served / "leak.sse")
    return served


@pytest.fixture
def server(fixture_dir: pathlib.Path):  # type: ignore[no-untyped-def]
    with ReplayServer(fixture_dir, speed=0) as srv:
        yield srv


def test_the_server_listens_on_loopback_only_by_default(server: ReplayServer) -> None:
    assert server.host == "127.0.0.1"
    loop = server.http._loop  # the composed loopback server's socket
    assert loop is not None and loop.socket.getsockname()[0] == "127.0.0.1"


def test_cli_warns_on_stderr_for_a_public_bind_and_stops_on_sigterm(fixture_dir: pathlib.Path) -> None:
    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        proc = subprocess.Popen(
            [*COMMAND, "--serve", str(fixture_dir), "--host", host],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().decode().strip()
            port = int(url.rsplit(":", 1)[1])
            assert httpx.get(f"http://127.0.0.1:{port}/cats").content == b"data: meow\n\n"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill() if proc.poll() is None else None
        assert proc.returncode == 0
        assert (b"warning: listening on 0.0.0.0" in err) is warned, err


def test_a_symlink_out_of_the_directory_is_not_even_loaded(server: ReplayServer) -> None:
    assert sorted(pathlib.Path(e.name).name for e in server.app.entries) == ["cats.sse", "dogs.sse"]


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.sse",
        b"/../../../../etc/passwd",
        b"/%2e%2e/secret.sse",
        b"/%2E%2E%2Fsecret",
        b"/..%2fsecret",
        b"/served/../secret",
        b"/leak",
        b"/leak.sse",
        b"/v1beta/models/..%2fsecret:streamGenerateContent?alt=sse",
        b"/v1beta/models/%2e%2e%2fsecret:streamGenerateContent?alt=sse",
        b"/v1beta/models/..%2F..%2Fpasswd:generateContent",
        b"/v1beta/models/leak:streamGenerateContent?alt=sse",
        b"/v1beta/models/../../secret:streamGenerateContent",
        b"//tmp/secret.sse",
        b"http://127.0.0.1/../secret.sse",
        b"/%00/../secret",
        b"/\\..\\secret",
    ],
)
def test_no_path_outside_the_fixture_directory_is_ever_served(
    server: ReplayServer, fixture_dir: pathlib.Path, target: bytes
) -> None:
    for method in (b"GET", b"POST"):
        response = raw(
            server,
            method
            + b" "
            + target
            + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        assert SECRET not in response
        assert response.startswith(b"HTTP/1.1 ")
        assert status_of(response) in (400, 404), response[:200]
    # An absolute file path as the target, the secret's own.
    absolute = str(fixture_dir.parent / "secret.sse").encode()
    response = raw(server, b"GET " + absolute + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert SECRET not in response and status_of(response) == 404


def test_known_paths_still_work_next_to_the_hostile_ones(server: ReplayServer) -> None:
    assert httpx.get(server.url + "/cats").content == b"data: meow\n\n"
    assert httpx.get(server.url + "/some/where/dogs").content == b"data: woof\n\n"


def test_oversized_heads_get_431(server: ReplayServer) -> None:
    one_long_line = b"GET /cats HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    many_lines = b"GET /cats HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    # Under 100 lines, each under 64 KiB, but over the 64 KiB total.
    big_total = (
        b"GET /cats HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 2000) for i in range(60)) + b"\r\n"
    )
    for request in (one_long_line, many_lines, big_total):
        assert status_of(raw(server, request)) == 431
    assert status_of(raw(server, b"GET /" + b"c" * 70_000 + b" HTTP/1.1\r\n\r\n")) == 414
    # Just under the limits is fine.
    fine = (
        b"GET /cats HTTP/1.1\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(50))
        + b"Connection: close\r\n\r\n"
    )
    assert raw(server, fine).endswith(b"data: meow\n\n\r\n0\r\n\r\n")


def test_oversized_bodies_get_413(server: ReplayServer) -> None:
    response = raw(server, b"POST /cats HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n")
    assert status_of(response) == 413 and b"limit" in response
    server.max_body = 1000
    chunked = (
        b"POST /cats HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"400\r\n"
        + b"x" * 1024
        + b"\r\n0\r\n\r\n"
    )
    assert status_of(raw(server, chunked)) == 413
    assert (
        status_of(
            raw(server, b"POST /cats HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001)
        )
        == 413
    )
    ok = raw(
        server,
        b"POST /cats HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + b"x" * 1000,
    )
    assert status_of(ok) == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",  # a TLS ClientHello on the plain port
        b"HELLO\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/1.1 extra words\r\n\r\n",
        b"GET / HTTP/x.y\r\n\r\n",
        b"POST /cats HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /cats HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /cats HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_garbage_gets_400_and_the_server_goes_on(server: ReplayServer, request_bytes: bytes) -> None:
    response = raw(server, request_bytes)
    assert response.startswith(b"HTTP/1.") and status_of(response) == 400, response[:200]
    assert httpx.get(server.url + "/cats").content == b"data: meow\n\n"
    server.check()


def test_clients_that_never_finish_their_head_time_out_without_blocking_others(server: ReplayServer) -> None:
    server.header_timeout = 1.0
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    try:
        for sock in half:
            sock.sendall(b"GET /cats HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head never ends
        # Others are served at once, while 60 connections wait.
        response = httpx.get(server.url + "/cats", timeout=5)
        assert response.content == b"data: meow\n\n"
        # A client that trickles one byte every 0.2 s is cut at the deadline, not after each byte's timeout.
        trickle = socket.create_connection(("127.0.0.1", server.port))
        start = time.monotonic()
        trickle.settimeout(0.2)
        closed = False
        for byte in b"GET /cats HTTP/1.1\r\nX-Slow: " + b"z" * 100:
            try:
                trickle.sendall(bytes([byte]))
                if trickle.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        assert closed and time.monotonic() - start < 6
        trickle.close()
        # Every idle and half-sent connection is closed by the server (recv sees EOF or a reset).
        for sock in idle + half:
            sock.settimeout(5)
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in idle + half:
            sock.close()
    assert httpx.get(server.url + "/dogs").content == b"data: woof\n\n"


def test_over_max_connections_gets_503_and_the_rest_are_served(fixture_dir: pathlib.Path) -> None:
    slow = Fixture([Exchange(chunks=[Chunk(b"data: %d\n\n" % i, i * 0.2) for i in range(50)])])
    with ReplayServer(slow) as srv:
        srv.max_connections = 2
        held = []
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            held.append(sock)
        refused = raw(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(refused) == 503 and b"Retry-After: 1" in refused
        for sock in held:
            sock.close()


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        (
            b'{"sse_toolkit_fixture": 1}\n{"response": {"status": 200}}\n{"t": 0.1, "chunk": "data: x\n',
            ":3:",
            "not valid JSON",
        ),
        (
            b'{"sse_toolkit_fixture": 1}\n{"response": {"status": "two hundred"}}\n{"end": "complete"}\n',
            ":2:",
            "status",
        ),
        (b'{"sse_toolkit_fixture": 99}\n', ":1:", "unsupported fixture format version 99"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)) * 4, ":", "binary data"),
        (b"HTTP/1.1 100 Continue\r\n\r\n", ":1:", "interim"),
    ],
)
def test_broken_fixture_files_give_one_line_with_file_and_line_and_no_traceback(
    tmp_path: pathlib.Path, content: bytes, where: str, what: str
) -> None:
    path = tmp_path / "broken.sse"
    path.write_bytes(content)
    with pytest.raises(FixtureError, match=what) as caught:
        ReplayServer(path)
    assert caught.value.path == str(path) and caught.value.line is not None
    for args in ([str(path), "--speed", "0"], ["--serve", str(path)]):
        result = subprocess.run([*COMMAND, *args], capture_output=True, timeout=30, check=False)
        assert result.returncode == 1
        err = result.stderr.decode()
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"{path}{where}" in err and what in err, err
        assert result.stdout == b""


def test_a_recording_cut_inside_an_exchange_is_served_as_the_broken_stream_it_was(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(
        b'{"sse_toolkit_fixture": 1}\n{"response": {"status": 200}}\n{"t": 0.1, "chunk": "data: x\\n\\n"}\n'
    )
    with pytest.warns(FixtureWarning, match=re.escape(str(path)) + r":\d+: .*ends inside exchange 1"):
        server = ReplayServer(path, speed=0)
    received = b""
    with (
        server,
        pytest.raises(httpx.TransportError),
        httpx.stream("GET", server.url + "/cut") as response,
    ):
        for piece in response.iter_raw():
            received += piece
    assert received == b"data: x\n\n"


def test_stop_closes_a_long_stream_in_progress_promptly() -> None:
    long = Fixture([Exchange(chunks=[Chunk(b"data: %d\n\n" % i, i * 0.5) for i in range(200)])])  # 100 s
    server = ReplayServer(long)
    server.start()
    seen: list[bytes] = []
    ended = threading.Event()

    def read() -> None:
        try:
            with httpx.stream("GET", server.url + "/", timeout=30) as response:
                for chunk in response.iter_raw():
                    seen.append(chunk)
        except httpx.HTTPError:
            pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(seen) >= 2
    start = time.monotonic()
    server.stop()
    stopped_in = time.monotonic() - start
    assert ended.wait(5), "the client never saw the connection end"
    assert stopped_in < 2.5, stopped_in
    assert len(seen) < 20


def test_sigterm_ends_the_cli_server_with_a_stream_open(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "slow.sse"
    path.write_bytes(b"".join(b"data: %d\n\n" % i for i in range(1000)))  # 50 s at the default pace
    proc = subprocess.Popen([*COMMAND, "--serve", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        with httpx.stream("GET", url + "/slow", timeout=10) as response:
            stream = response.iter_raw()
            assert next(stream).startswith(b"data: 0")
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(httpx.HTTPError):
                for _ in stream:
                    pass
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
