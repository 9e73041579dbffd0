"""``fuzz/attack_server.py --quick`` replays issue 13's attacks on the server layer against a live server
(framing that killed or fooled it, garbage, delays past any selector timeout, trickled bodies past the
connection cap, clients over the cap) and every one of them holds."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_quick_attack_run_holds_on_every_attack(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "attacks.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "attack_server.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {r["attack"] for r in results} == {"framing", "garbage", "delays", "trickle", "overcap"}
    assert all(r["passed"] for r in results)
    assert len(results) >= 50  # every case ran, not an early exit that printed nothing wrong
    assert "superscript" in run.stdout and "held" in run.stdout.splitlines()[-1]
