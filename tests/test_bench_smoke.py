"""Smoke test: bench/bench_parser.py runs end to end on small corpora and prints its tables.

No timing is asserted (speed is measured by the benchmark itself, not by tests); this only proves that the
script, its corpora and its peer drivers still work. Skipped where a peer library is not installed
(``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_parser.py"


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
    assert "linear time" in proc.stdout
    assert "targets:" in proc.stdout
    results = json.loads(out_json.read_text())
    assert [c["name"] for c in results["corpora"]] == ["gemini", "small", "fields", "big"]
    assert all(len(c["results"]) == 4 for c in results["corpora"])
