"""A smoke run of ``bench/bench_server.py --only tail`` (small numbers): the three servers answer the same
bytes, every request of each part is read to its end, and the report holds every figure; the figures are
printed, not asserted."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "bench_server.py"


@pytest.mark.slow
def test_the_tail_benchmark_runs_end_to_end(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tail.json"
    command = [sys.executable, str(BENCH), "--only", "tail", "--sequential", "200", "--tail-rounds", "1"]
    command += ["--tail-blocks", "3", "--tail-block", "5"]
    command += ["--tail-clients", "4", "--duration", "1", "--no-fill", "--json", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "## tail and throughput:" in proc.stdout
    assert "target max < 10 ms sequential" in proc.stdout
    tail = json.loads(out.read_text())["tail"]
    assert set(tail["servers"]) == {"sse-replay", "asyncio floor", "LoopbackServer"}
    for row in tail["servers"].values():
        assert len(row["max_ms"]) == 1 and row["rps"][0] > 0
    blocks = tail["blocks"]["servers"]
    assert set(blocks) == set(tail["servers"])
    assert all(len(row["seconds"]) == 3 and row["rps"] > 0 for row in blocks.values())
    assert blocks["sse-replay"]["share"] > 0 and len(blocks["LoopbackServer"]["share_blocks"]) == 3
    clients = tail["clients"]
    assert clients["sse-replay"]["requests"] > 0 and clients["asyncio floor"]["requests"] > 0
