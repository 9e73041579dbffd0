"""``sse-toolkit text`` and ``sse-toolkit json`` on every capture in every framing: the right text and merged
JSON, errors as one line on stderr with a non-zero exit, never a traceback; text streams live from a pipe."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time

import orjson
import pytest
from _captures import ALL, CASE_BY_NAME, DATA, Case, variants
from click.testing import CliRunner

from sse_toolkit import GeminiError, iter_responses, merge_responses
from sse_toolkit.cli import main

EXE = shutil.which("sse-toolkit") or ""


def _run(args: list[str], data: bytes) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(main, args, input=data)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def _expected_merged(case: Case) -> dict | None:
    got = []
    try:
        got.extend(iter_responses([(DATA / case.name).read_bytes()]))
    except GeminiError:
        pass  # the error cases: what came before it is in got
    return merge_responses(got).to_dict() if got else None


@pytest.mark.parametrize(("case", "label", "body"), ALL, ids=[f"{c.name}-{label}" for c, label, _ in ALL])
def test_text_and_json_commands_on_every_capture_and_framing(case: Case, label: str, body: bytes) -> None:
    code, out, err = _run(["text", "--thoughts", "-"], body)
    if case.error is None:
        assert code == 0 and err == ""
    else:
        assert code == 1
        assert err.startswith(case.error_line or "") and err.count("\n") == 1
    text = out.decode()
    if case.name == "code-execution.sse":  # the code blocks sit between the two text runs
        assert text.startswith(case.text[:40]) and text.endswith(" is 28.\n") and "```python\n" in text
    elif case.text:
        assert case.text.rstrip("\n") in text
    if case.thoughts_start:
        assert text.startswith(case.thoughts_start)
    for name, ident in case.calls:
        assert f"function call: {name}(" in text and f"(id {ident})" in text
    assert "Traceback" not in err

    code, out, err = _run(["json", "-"], body)
    assert code == (0 if case.error is None else 1)
    expected = _expected_merged(case)
    if expected is None:
        assert out == b""
    else:
        assert orjson.loads(out) == expected


def test_text_without_thoughts_prints_only_the_answer() -> None:
    code, out, _ = _run(["text", str(DATA / "thinking-thoughts.sse")], b"")
    assert code == 0
    assert out.decode() == CASE_BY_NAME["thinking-thoughts.sse"].text + "\n"


def test_code_execution_is_shown_readably() -> None:
    _, out, _ = _run(["text", "-"], (DATA / "code-execution.sse").read_bytes())
    assert "```python\nprime_numbers = [2, 3, 5, 7, 11]\n" in out.decode()
    assert "``` output (OUTCOME_OK)\nThe sum of the first 5 prime numbers is: 28\n```" in out.decode()


def test_json_prints_the_api_style_pretty_json() -> None:
    _, out, _ = _run(["json", str(DATA / "text-stop.sse")], b"")
    assert out.startswith(b'{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n')


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"garbage\n", "unexpected bytes"),
        (b'[{"candidates": [', "truncated JSON"),
        (b"data: {not json}\n\n", "data is not JSON"),
    ],
)
@pytest.mark.parametrize("command", ["text", "json"])
def test_bad_input_is_one_line_and_exit_1(command: str, body: bytes, message: str) -> None:
    code, out, err = _run([command], body)
    assert code == 1 and out == b""
    assert err.startswith("sse-toolkit: error: <stdin>: ") and message in err and err.count("\n") == 1


def test_a_cut_stream_is_reported_after_the_text_it_had() -> None:
    data = (DATA / "text-stop.sse").read_bytes()
    code, out, err = _run(["text"], data[: data.rindex(b"data: ")])
    assert (code, out) == (1, b"The capital of Wyoming\n")
    assert err == "stream truncated: it ended without a finishReason for candidate 0\n"


@pytest.mark.parametrize("command", ["text", "json"])
def test_missing_file_is_one_line_and_exit_1(command: str) -> None:
    code, out, err = _run([command, "/nonexistent/x.sse"], b"")
    assert (code, out) == (1, b"")
    assert err == "sse-toolkit: error: /nonexistent/x.sse: No such file or directory\n"


@pytest.mark.slow
@pytest.mark.skipif(not EXE, reason="sse-toolkit console script not installed")
def test_subprocess_curl_i_error_and_midstream_error() -> None:
    for name, line in [
        (
            "error-midstream-503.sse",
            "error 503 UNAVAILABLE: The model is overloaded. Please try again later.\n",
        ),
        ("prompt-blocked-safety.sse", "prompt blocked: SAFETY\n"),
    ]:
        for body in variants(name).values():
            done = subprocess.run([EXE, "text"], input=body, check=False, capture_output=True, timeout=60)
            assert done.returncode == 1
            assert done.stderr.decode() == line
    done = subprocess.run(
        [EXE, "text", str(DATA / "error-429-quota.json")], check=False, capture_output=True, timeout=60
    )
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode().startswith("error 429 RESOURCE_EXHAUSTED: You exceeded your current quota")
    assert done.stderr.count(b"\n") == 1


@pytest.mark.skipif(not EXE, reason="sse-toolkit console script not installed")
def test_text_appears_live_before_stdin_is_closed() -> None:
    events = (DATA / "text-stop.sse").read_bytes().split(b"\r\n\r\n")[:-1]
    process = subprocess.Popen(
        [EXE, "text", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        seen = b""
        for event, expected in zip(events[:2], [b"The", b"The capital of Wyoming"], strict=True):
            process.stdin.write(event + b"\r\n\r\n")
            process.stdin.flush()
            deadline = time.monotonic() + 30
            while seen != expected and time.monotonic() < deadline:
                ready, _, _ = select.select([process.stdout], [], [], 1)
                if ready:
                    seen += os.read(process.stdout.fileno(), 1024)
            assert seen == expected  # printed while stdin is still open
        rest, err = process.communicate(events[2] + b"\r\n\r\n", timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert seen + rest == b"The capital of Wyoming is **Cheyenne**.\n"
    assert process.returncode == 0 and err == b""


def test_python_m_entry_point_runs_text() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sse_toolkit", "text", str(DATA / "text-stop.sse")],
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == b"The capital of Wyoming is **Cheyenne**.\n"
