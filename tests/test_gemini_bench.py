"""bench/bench_gemini.py runs end to end at a tiny size and reports every runner (no timing asserts)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_bench_gemini_smoke_run_reports_every_runner_and_format() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_gemini.py"),
            "--events",
            "40",
            "--repeat",
            "1",
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    seen = {(row["corpus"], row["format"], row["runner"]) for row in rows}
    assert ("real captures", "sse", "sse_toolkit") in seen
    assert ("real captures", "json-array", "sse_toolkit") in seen
    assert ("real captures", "sse", "httpx-sse + json.loads") in seen
    assert ("real captures", "sse", "google-genai") in seen
    assert all(row["seconds"] > 0 and row["us_per_response"] > 0 for row in rows)
