"""``sse-replay`` as a user runs it: the console script in a real process, stdout at the recorded pace,
``--serve`` printing its URL and stopping cleanly on SIGINT/SIGTERM, one-line errors."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time

import httpx
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
_SCRIPT = pathlib.Path(sys.executable).parent / "sse-replay"
# The console script when installed (as README's `pip install` does), else the same command in-process.
COMMAND = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from sse_toolkit.cli import replay_main; replay_main()"]
)


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*COMMAND, *args], check=False, capture_output=True, timeout=timeout)


def test_replay_file_writes_the_body_byte_for_byte() -> None:
    result = run(str(FIXTURES / "cats.sse"), "--speed", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (FIXTURES / "cats.sse").read_bytes()
    assert result.stderr == b""


def test_replay_file_flushes_each_chunk_at_the_default_pace() -> None:
    # wyoming.sse has no timing: 3 events, DEFAULT_PACE (50 ms) apart; speed 0.1 makes that 0.5 s.
    body = (FIXTURES / "wyoming.sse").read_bytes()
    first_event = body.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with subprocess.Popen(
        [*COMMAND, str(FIXTURES / "wyoming.sse"), "--speed", "0.1"], stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        start = time.monotonic()
        got = proc.stdout.read1(len(first_event))  # type: ignore[attr-defined]
        while len(got) < len(first_event):
            got += proc.stdout.read1(len(first_event) - len(got))  # type: ignore[attr-defined]
        assert got == first_event
        assert proc.poll() is None  # the first event came out while the rest was still waiting
        rest = proc.stdout.read()
        elapsed = time.monotonic() - start
    assert got + rest == body
    assert elapsed >= 2 * 0.5 * 0.9


def test_a_missing_file_is_one_line_and_exit_1() -> None:
    result = run("no/such/fixture.sse")
    assert result.returncode == 1
    assert result.stderr == b"sse-replay: error: no/such/fixture.sse: No such file or directory\n"


def test_a_damaged_recorded_fixture_names_the_file_and_line(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.sse"
    bad.write_text('{"sse_toolkit_fixture": 1}\n{"response": {"status": 200}}\n{"t": "soon", "chunk": "x"}\n')
    for args in ([str(bad)], ["--serve", str(bad)]):
        result = run(*args)
        assert result.returncode != 0
        assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr
        assert str(bad).encode() + b":" in result.stderr


def test_fault_options_need_serve() -> None:
    result = run(str(FIXTURES / "cats.sse"), "--status", "503")
    assert result.returncode != 0 and b"--serve" in result.stderr


def _serve(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([*COMMAND, "--serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(b"http://127.0.0.1:"), (
        line,
        proc.stderr.read() if proc.poll() is not None else b"",
    )
    return proc, line.decode().strip()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_its_url_serves_and_exits_0_on_signal(sig: signal.Signals) -> None:
    proc, url = _serve(str(FIXTURES), "--speed", "0")
    try:
        # a fixture is reachable by its file name without extension; only wyoming.sse is named so
        response = httpx.post(url + "/v1beta/models/wyoming:streamGenerateContent?alt=sse", json={})
        assert response.content == (FIXTURES / "wyoming.sse").read_bytes()
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == b"" and err == b""  # exactly one line of output in all: the URL


def test_serve_with_fault_and_key_flags() -> None:
    proc, url = _serve(
        str(FIXTURES / "wyoming.sse"),
        "--speed=0",
        "--status",
        "429",
        "--retry-after",
        "3",
        "--require-key=secret",
    )
    try:
        target = url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        assert httpx.post(target + "&key=wrong", json={}).status_code == 400
        limited = httpx.post(target + "&key=secret", json={})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_serve_on_a_busy_port_is_one_line(tmp_path: pathlib.Path) -> None:
    proc, url = _serve(str(FIXTURES / "cats.sse"))
    try:
        port = url.rsplit(":", 1)[1]
        result = run("--serve", str(FIXTURES / "cats.sse"), "--port", port)
        assert result.returncode != 0 and result.stderr.count(b"\n") == 1
        assert b"Traceback" not in result.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_serve_rechunk_flag_is_parsed() -> None:
    proc, url = _serve(str(FIXTURES / "wyoming.sse"), "--speed", "0", "--rechunk", "random", "--seed", "3")
    try:
        body = httpx.post(url + "/v1beta/models/x:streamGenerateContent?alt=sse", json={}).content
        assert body == (FIXTURES / "wyoming.sse").read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    bad = run("--serve", str(FIXTURES / "wyoming.sse"), "--rechunk", "big")
    assert bad.returncode != 0 and b"--rechunk" in bad.stderr


STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"


def test_require_key_alone_is_a_flag_that_leaves_the_path_and_accepts_any_key() -> None:
    # `--require-key fixtures/` once took the path as the key ("Missing argument 'PATH'").
    proc, url = _serve("--speed=0", "--require-key", str(FIXTURES / "wyoming.sse"))
    try:
        assert httpx.post(url + STREAM, json={}).status_code == 403  # no key: the API's PERMISSION_DENIED
        for key in ("any", "other"):
            answer = httpx.post(url + STREAM + "&key=" + key, json={})
            assert answer.content == (FIXTURES / "wyoming.sse").read_bytes()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize("spelling", [["--require-key=secret"], ["--key", "secret"]], ids=["equals", "key"])
def test_both_spellings_of_a_required_key_demand_exactly_that_key(spelling: list[str]) -> None:
    proc, url = _serve("--speed=0", *spelling, str(FIXTURES / "wyoming.sse"))
    try:
        assert httpx.post(url + STREAM, json={}).status_code == 403
        wrong = httpx.post(url + STREAM, json={}, headers={"x-goog-api-key": "wrong"})
        assert wrong.status_code == 400 and b"API_KEY_INVALID" in wrong.content
        right = httpx.post(url + STREAM, json={}, headers={"x-goog-api-key": "secret"})
        assert right.content == (FIXTURES / "wyoming.sse").read_bytes()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_require_key_equals_after_a_double_dash_is_the_path() -> None:
    # After `--` everything is an argument: the rewriting of --require-key=KEY must not reach it.
    result = run("--speed=0", "--", "--require-key=x")
    assert result.returncode == 1
    assert result.stderr == b"sse-replay: error: --require-key=x: No such file or directory\n"


def test_truncate_after_ends_the_stream_cleanly_before_the_finish_reason() -> None:
    body = (FIXTURES / "wyoming.sse").read_bytes()
    events = body.split(b"\r\n\r\n")[:-1]
    assert b"finishReason" in events[-1] and len(events) == 3
    proc, url = _serve("--speed=0", "--truncate-after", "1", str(FIXTURES / "wyoming.sse"))
    try:
        answer = httpx.post(url + STREAM, json={})
        assert answer.status_code == 200
        assert answer.content == events[0] + b"\r\n\r\n"  # whole (a clean end: httpx saw the final chunk)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_truncate_after_needs_serve_too() -> None:
    result = run(str(FIXTURES / "wyoming.sse"), "--truncate-after", "1")
    assert result.returncode == 1
    assert result.stderr == b"sse-replay: error: fault and key options need --serve\n"
