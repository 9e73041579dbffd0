"""Smoke test: bench/bench_parser.py runs end to end on small corpora and prints its tables.

No timing is asserted (speed is measured by the benchmark itself, not by tests); this only proves that the
script, its corpora, its peer drivers, its fresh processes and its floors still work. Skipped where a peer
library is not installed (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_parser.py"


@pytest.mark.slow
def test_quick_benchmark_exits_0_and_prints_a_table_per_corpus(tmp_path: Path) -> None:
    for peer in ("httpx_sse", "ld_eventsource", "sseclient"):
        pytest.importorskip(peer)
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--repeat", "1", "--json", str(out_json)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for corpus in ("gemini", "small", "fields", "big"):
        assert f"## {corpus}:" in proc.stdout
    for parser in ("sse_toolkit", "httpx-sse", "launchdarkly-eventsource", "sseclient-py"):
        assert f"| {parser} " in proc.stdout
    assert "| fresh ms | steady ms |" in proc.stdout
    assert "| floor: split + decode " in proc.stdout and "| floor: + events " in proc.stdout
    assert "linear time" in proc.stdout
    assert "## summary" in proc.stdout
    assert "targets:" in proc.stdout
    results = json.loads(out_json.read_text())
    assert [c["name"] for c in results["corpora"]] == ["gemini", "small", "fields", "big"]
    for corpus in results["corpora"]:
        assert len(corpus["results"]) == 4
        for result in corpus["results"]:
            # Both states were measured (a fresh process each and the steady one), and the worse one counts.
            assert result["fresh_seconds"] > 0 and result["steady_seconds"] > 0
            assert result["seconds"] == max(result["fresh_seconds"], result["steady_seconds"])
    assert [f["parser"] for f in results["corpora"][0]["floors"]] == [
        "floor: split + decode",
        "floor: + events",
    ]
    assert all(c["floors"] == [] for c in results["corpora"][1:])
