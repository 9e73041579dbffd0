"""Tests: ``sse-toolkit parse [SRC]``, in-process with click's CliRunner and as a real subprocess.

What it must do: one JSON object per event (keys event, data, id, retry), printed as each event arrives
(checked on a live pipe before stdin is closed), plain bodies and ``curl -i`` output alike, and bad input
as one line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import queue
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from click.testing import CliRunner

from sse_toolkit import DEFAULT_MAX_EVENT_SIZE, __version__
from sse_toolkit.cli import main

STREAM = (
    b"event: greet\r\ndata: h\xc3\xa9llo \xf0\x9f\x98\x80\r\nid: 7\r\nretry: 100\r\n\r\n"
    b": keep-alive\r\n\r\n"
    b"data: two\r\ndata: lines\r\n\r\n"
    b"data: unfinished\r\n"
)
EXPECTED = [
    {"event": "greet", "data": "h\u00e9llo \U0001f600", "id": "7", "retry": 100},
    {"event": "message", "data": "two\nlines", "id": "7", "retry": None},
]
CURL_I = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/2 200 \r\ncontent-type: text/event-stream\r\nvary: Origin\r\n\r\n" + STREAM
)
TIMEOUT = 30  # seconds for any subprocess step: generous, a hang fails instead of blocking the suite


def json_lines(output: bytes) -> list[dict[str, Any]]:
    objects = [orjson.loads(line) for line in output.splitlines()]
    for obj in objects:
        assert list(obj) == ["event", "data", "id", "retry"]
    return objects


def assert_one_line_error(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("sse-toolkit: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, stderr)


def console_script() -> str:
    """The installed ``sse-toolkit`` script (next to this interpreter in a venv, else on PATH)."""
    found = shutil.which("sse-toolkit", path=str(Path(sys.executable).parent)) or shutil.which("sse-toolkit")
    assert found, "the sse-toolkit console script is not installed"
    return found


def run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=stdin, capture_output=True, timeout=TIMEOUT, check=False)


# --- in-process (CliRunner) --------------------------------------------------------------------------------


def test_parse_file_prints_one_json_object_per_event(tmp_path: Path) -> None:
    src = tmp_path / "saved.sse"
    src.write_bytes(STREAM)
    result = CliRunner().invoke(main, ["parse", str(src)])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout_bytes) == EXPECTED


@pytest.mark.parametrize("args", [["parse", "-"], ["parse"]], ids=["dash", "default"])
def test_parse_reads_stdin(args: list[str]) -> None:
    result = CliRunner().invoke(main, args, input=STREAM)
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout_bytes) == EXPECTED


def test_parse_strips_curl_i_heads(tmp_path: Path) -> None:
    src = tmp_path / "curl-i.txt"
    src.write_bytes(CURL_I)
    result = CliRunner().invoke(main, ["parse", str(src)])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout_bytes) == EXPECTED


def test_parse_lf_only_curl_i_head_and_proxy_block() -> None:
    data = (
        b"HTTP/1.1 200 Connection established\n\nHTTP/1.1 200 OK\nContent-Type: text/event-stream\n\n"
        + STREAM
    )
    result = CliRunner().invoke(main, ["parse", "-"], input=data)
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout_bytes) == EXPECTED


def test_parse_empty_input_prints_nothing() -> None:
    result = CliRunner().invoke(main, ["parse", "-"], input=b"")
    assert result.exit_code == 0 and result.stdout_bytes == b""


def test_malformed_head_is_one_line_error_with_source_and_offset(tmp_path: Path) -> None:
    src = tmp_path / "bad.txt"
    src.write_bytes(b"HTTP/1.1 OK 200\r\n\r\ndata: x\n\n")
    result = CliRunner().invoke(main, ["parse", str(src)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert_one_line_error(result.stderr, str(src), "offset 0")


def test_input_ending_inside_a_head_is_one_line_error() -> None:
    result = CliRunner().invoke(
        main, ["parse", "-"], input=b"HTTP/2 200 \r\ncontent-type: text/event-stream\r\n"
    )
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "<stdin>", "offset 0")


def test_missing_file_is_an_error_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sse"
    result = CliRunner().invoke(main, ["parse", str(missing)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    assert "nope.sse" in result.stderr


# --- real subprocesses -------------------------------------------------------------------------------------


def test_console_script_parses_a_file(tmp_path: Path) -> None:
    src = tmp_path / "saved.sse"
    src.write_bytes(CURL_I)
    done = run([console_script(), "parse", str(src)])
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert json_lines(done.stdout) == EXPECTED


def test_python_m_parses_stdin() -> None:
    done = run([sys.executable, "-m", "sse_toolkit", "parse", "-"], stdin=STREAM)
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == EXPECTED


def test_python_m_version() -> None:
    done = run([sys.executable, "-m", "sse_toolkit", "--version"])
    assert done.returncode == 0, done.stderr
    assert __version__ in done.stdout.decode()


@pytest.mark.parametrize(
    ("pure", "says"), [("1", "(pure Python)"), ("", "(C speedups: parser, gemini, server)")]
)
def test_version_says_whether_the_c_speedups_are_in_use(pure: str, says: str) -> None:
    from sse_toolkit.parser import _parser

    if not pure and not _parser.SPEEDUPS:
        why = "SSE_TOOLKIT_PURE_PYTHON is set" if os.environ.get("SSE_TOOLKIT_PURE_PYTHON") else "not built"
        pytest.skip(f"the C extensions are not in use here: {why}")
    env = {**os.environ, "SSE_TOOLKIT_PURE_PYTHON": pure}
    done = subprocess.run([sys.executable, "-m", "sse_toolkit", "--version"], capture_output=True, env=env)
    assert done.stdout.decode().strip() == f"sse-toolkit, version {__version__} {says}"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"HTTP/1.1 2OO OK\r\n\r\n", "offset 0"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nbroken header\r\n\r\n", "offset 42"),
        (b"HTTP/1.1 200 OK\r\n", "offset 0"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (300 * 1024), "offset 0"),
    ],
    ids=["bad-status", "bad-header", "ends-inside-head", "oversize-head"],
)
def test_bad_input_gives_one_line_error_and_exit_1(data: bytes, needle: str) -> None:
    done = run([console_script(), "parse", "-"], stdin=data)
    assert done.returncode == 1
    assert done.stdout == b""
    assert_one_line_error(done.stderr.decode(), "<stdin>", needle)


def test_event_over_the_size_limit_gives_one_line_error_and_exit_1() -> None:
    # The CLI has no limit option, so this sends one line of DEFAULT_MAX_EVENT_SIZE + 1 bytes, streamed.
    proc = subprocess.Popen(
        [sys.executable, "-m", "sse_toolkit", "parse", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    block = b"x" * (1024 * 1024)
    try:
        proc.stdin.write(b"data: ok\n\n")
        for _ in range(DEFAULT_MAX_EVENT_SIZE // len(block) + 1):
            proc.stdin.write(block)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it may stop reading as soon as the limit is crossed
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert json_lines(stdout) == [{"event": "message", "data": "ok", "id": "", "retry": None}]
    assert_one_line_error(stderr.decode(), "<stdin>", "offset 10", "max_event_size")


def test_random_garbage_never_crashes() -> None:
    garbage = random.Random(1234).randbytes(200_000)
    assert not garbage.startswith(b"HTTP/")
    done = run([console_script(), "parse", "-"], stdin=garbage)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    for obj in json_lines(done.stdout):
        assert isinstance(obj["data"], str)


def test_garbage_after_http_slash_is_one_line_error() -> None:
    done = run([console_script(), "parse", "-"], stdin=b"HTTP/" + random.Random(5).randbytes(5000) + b"\n\n")
    assert done.returncode == 1
    assert_one_line_error(done.stderr.decode(), "<stdin>")


def test_missing_file_in_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    done = run([console_script(), "parse", str(tmp_path / "nope.sse")])
    assert done.returncode != 0
    assert b"Traceback" not in done.stderr
    assert b"nope.sse" in done.stderr


def test_reader_leaving_early_ends_quietly_and_successfully(tmp_path: Path) -> None:
    # `sse-toolkit parse big.sse | head -1`: the closed pipe must not produce a traceback.
    src = tmp_path / "big.sse"
    src.write_bytes((b"data: " + b"z" * 200 + b"\n\n") * 50_000)
    proc = subprocess.Popen(
        [console_script(), "parse", str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert orjson.loads(first)["data"] == "z" * 200
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=TIMEOUT)
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr, stderr
    assert proc.returncode == 0  # the reader leaving is no failure: `| head` under pipefail stays green


# --- a live pipe -------------------------------------------------------------------------------------------


def _line_reader(stream: IO[bytes]) -> queue.Queue[bytes]:
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, b""):
            lines.put(line)
        lines.put(b"")  # EOF

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.parametrize(
    "head", [b"", b"HTTP/2 200 \r\ncontent-type: text/event-stream\r\n\r\n"], ids=["body", "curl-i"]
)
def test_live_pipe_prints_each_event_before_stdin_is_closed(head: bytes) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sse_toolkit", "parse", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        lines = _line_reader(proc.stdout)
        proc.stdin.write(head + b"data: first\r\n\r\n")
        proc.stdin.flush()
        assert orjson.loads(lines.get(timeout=TIMEOUT))["data"] == "first"
        # An event in two writes, the second one just its final CR: it must come out without more input.
        proc.stdin.write(b"id: 2\r\ndata: second\r\n")
        proc.stdin.flush()
        proc.stdin.write(b"\r")
        proc.stdin.flush()
        second = orjson.loads(lines.get(timeout=TIMEOUT))
        assert second == {"event": "message", "data": "second", "id": "2", "retry": None}
        proc.stdin.write(b"\ndata: third\r\n\r\n")  # the LF completing that CRLF is no extra line end
        proc.stdin.flush()
        assert orjson.loads(lines.get(timeout=TIMEOUT))["data"] == "third"
        proc.stdin.close()
        assert lines.get(timeout=TIMEOUT) == b""
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
