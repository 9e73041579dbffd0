"""curl, running the quickstart's exact command (shared/seed: Streaming_REST) against the replay server,
prints the recording byte for byte."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from sse_toolkit.replay._app import ReplayServer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

# The quickstart's command, with only the host replaced by the replay server's base URL ($BASE).
QUICKSTART = """curl "$BASE/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=${GOOGLE_API_KEY}" \\
        -H 'Content-Type: application/json' \\
        --no-buffer \\
        -d '{ "contents":[{"parts":[{"text": "Write a cute story about cats."}]}]}'
"""


def _run(base: str, key: str = "test-key") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "BASE": base, "GOOGLE_API_KEY": key}
    return subprocess.run(["sh", "-c", QUICKSTART], check=False, capture_output=True, env=env, timeout=30)


def test_the_quickstart_command_prints_the_recorded_stream_byte_for_byte() -> None:
    with ReplayServer(FIXTURES / "cats.sse", speed=0, require_key=True) as server:
        result = _run(server.url)
        request = server.requests[-1]
        server.check()
    assert result.returncode == 0, result.stderr
    assert result.stdout == (FIXTURES / "cats.sse").read_bytes()
    assert request.params["key"] == "test-key"
    assert request.body == b'{ "contents":[{"parts":[{"text": "Write a cute story about cats."}]}]}'


def test_the_quickstart_command_at_the_default_pace() -> None:
    # cats.sse has no timing: it plays at the default pace; curl still prints exactly the recording.
    with ReplayServer(FIXTURES / "cats.sse") as server:
        result = _run(server.url)
    assert result.stdout == (FIXTURES / "cats.sse").read_bytes()


def test_curl_include_shows_the_api_headers() -> None:
    with ReplayServer(FIXTURES / "cats.sse", speed=0) as server:
        result = subprocess.run(
            ["curl", "-sS", "-i", "--no-buffer", "-H", "Content-Type: application/json", "-d", "{}",
             server.url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"],
            check=False, capture_output=True, timeout=30,
        )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")]
    assert lines[0] == b"http/1.1 200 ok"
    assert b"content-type: text/event-stream" in lines
    assert b"content-disposition: attachment" in lines
    assert b"transfer-encoding: chunked" in lines
    assert body == (FIXTURES / "cats.sse").read_bytes()


def test_curl_sees_a_disconnect_fault_as_a_broken_transfer() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, disconnect_after=1) as server:
        result = subprocess.run(
            ["curl", "-sS", "--no-buffer", "-d", "{}", server.url + "/v1beta/models/x:streamGenerateContent?alt=sse"],
            check=False, capture_output=True, timeout=30,
        )
    assert result.returncode in (18, 56)  # partial file / failure receiving data: the stream broke
    assert result.stdout == (FIXTURES / "wyoming.sse").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
