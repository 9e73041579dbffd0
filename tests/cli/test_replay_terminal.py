"""``sse-replay FILE`` on a real terminal (a pseudo-terminal) shows a person the stream: the Gemini text as it
streams, events at a visible pace, and one closing line; piped or with ``--raw`` it writes the exact bytes."""

from __future__ import annotations

import os
import pathlib
import pty
import subprocess
import sys
import time
import tty

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
SSE_REPLAY = str(pathlib.Path(sys.executable).parent / "sse-replay")


def _run_on_a_terminal(*args: str, deadline: float = 30.0) -> bytes:
    """Run sse-replay with stdout on a pseudo-terminal in raw mode (no newline translation); its output."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen([SSE_REPLAY, *args], stdout=slave, stderr=subprocess.PIPE, cwd=ROOT)
    os.close(slave)
    out = bytearray()
    end = time.monotonic() + deadline
    try:
        while time.monotonic() < end:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        assert proc.wait(timeout=max(0.1, end - time.monotonic())) == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return bytes(out)


def test_a_gemini_fixture_on_a_terminal_shows_its_text_and_a_closing_line() -> None:
    out = _run_on_a_terminal("fixtures/cats.sse", "--speed", "0").decode()
    assert "In the quaint, sunlit cottage" in out
    assert "data:" not in out and "safetyRatings" not in out
    assert "2 events" in out and "finished: STOP" in out
    assert "sse-replay --serve" in out  # what to try next


def test_a_generic_stream_on_a_terminal_shows_one_line_per_event() -> None:
    body = (FIXTURES / "ticker.sse").read_bytes()
    import sse_toolkit

    events = sse_toolkit.parse(body)
    out = _run_on_a_terminal("fixtures/ticker.sse", "--speed", "0").decode()
    for event in events:
        assert event.data in out
    assert f"{len(events)} events" in out


def test_an_untimed_fixture_plays_at_a_pace_a_person_can_see() -> None:
    started = time.monotonic()
    out = _run_on_a_terminal("fixtures/cats.sse").decode()
    # Two untimed events, one every 0.4 s: the second arrives 0.4 s after the first.
    assert time.monotonic() - started >= 0.4
    assert "one event every 0.4 s" in out


def test_raw_on_a_terminal_and_piped_output_are_the_exact_bytes() -> None:
    body = (FIXTURES / "cats.sse").read_bytes()
    assert _run_on_a_terminal("--raw", "fixtures/cats.sse", "--speed", "0") == body
    piped = subprocess.run([SSE_REPLAY, "fixtures/cats.sse", "--speed", "0"], cwd=ROOT, capture_output=True)
    assert piped.returncode == 0 and piped.stdout == body


@pytest.mark.parametrize("name", ["midstream-error.sse", "quota-429.http"])
def test_a_failing_stream_says_how_it_ended(name: str) -> None:
    out = _run_on_a_terminal(f"fixtures/{name}", "--speed", "0").decode()
    assert "API error" in out
