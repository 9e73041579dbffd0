"""curl, running the quickstart's exact command (shared/seed: Streaming_REST) against the replay server,
prints the recording byte for byte."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from sse_toolkit import iter_responses, load_fixture, merge_responses
from sse_toolkit.replay import ReplayServer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

# The quickstart's command, with only the host replaced by the replay server's base URL ($BASE).
QUICKSTART = """curl "$BASE/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=${GOOGLE_API_KEY}" \\
        -H 'Content-Type: application/json' \\
        --no-buffer \\
        -d '{ "contents":[{"parts":[{"text": "Write a cute story about cats."}]}]}'
"""  # noqa: E501 - the README's command, verbatim


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


def test_sse_replay_serve_fixtures_answers_the_quickstart_command_with_the_cat_story() -> None:
    # README: the quickstart's curl command "works unchanged" against `sse-replay --serve fixtures/`: the
    # recorded request of cats.jsonl (the same -d body) makes it the answer, in today's wire shape.
    script = pathlib.Path(sys.executable).parent / "sse-replay"
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from sse_toolkit.cli import replay_main; replay_main()"]
    )
    proc = subprocess.Popen(
        [*command, "--serve", str(FIXTURES)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        result = _run(url)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout == load_fixture(FIXTURES / "cats.jsonl").exchanges[0].body
    story = merge_responses(iter_responses([result.stdout]))
    assert story.text == merge_responses(iter_responses([(FIXTURES / "cats.sse").read_bytes()])).text
    assert story.usage_metadata is not None and story.usage_metadata.total_token_count == 49


def test_the_quickstart_command_at_the_default_pace() -> None:
    # cats.sse has no timing: it plays at the default pace; curl still prints exactly the recording.
    with ReplayServer(FIXTURES / "cats.sse") as server:
        result = _run(server.url)
    assert result.stdout == (FIXTURES / "cats.sse").read_bytes()


def test_curl_include_shows_the_api_headers() -> None:
    with ReplayServer(FIXTURES / "cats.sse", speed=0) as server:
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "-i",
                "--no-buffer",
                "-H",
                "Content-Type: application/json",
                "-d",
                "{}",
                server.url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            ],
            check=False,
            capture_output=True,
            timeout=30,
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
            [
                "curl",
                "-sS",
                "--no-buffer",
                "-d",
                "{}",
                server.url + "/v1beta/models/x:streamGenerateContent?alt=sse",
            ],
            check=False,
            capture_output=True,
            timeout=30,
        )
    assert result.returncode in (18, 56)  # partial file / failure receiving data: the stream broke
    assert result.stdout == (FIXTURES / "wyoming.sse").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
