"""Fuzz: serve seeded edge-case streams to headless Chromium's ``EventSource`` and compare with the parser.

The differential run of tests/parser/test_browser_differential.py (one seed in CI) for as many seeds and
streams as you like. Generator, servers, page and the rules for Chromium's documented deviations live in
tests/_browser_diff.py; docs/parser.md describes the deviations.

    python fuzz/browser_differential.py                          # seeds 1-4, 400 streams each
    python fuzz/browser_differential.py --seeds 7,8 --streams 1000 --show explained
    python fuzz/browser_differential.py --seeds 9 --save fuzz/findings

Prints, per seed, how many streams were identical, how many differed only by a documented Chromium
deviation (and which), and every other difference with its chunks as Python bytes literals. Exits 1 when
some difference is not explained, 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _browser_diff import (  # noqa: E402  (the helper lives beside the tests that share it)
    CHROMIUM,
    Deviation,
    Outcome,
    Verdict,
    compare,
    generate,
    summarise,
)


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes integers separated by commas, got {text!r}"
        ) from None


def _save(directory: pathlib.Path, seed: int, outcome: Outcome) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"chromium-seed{seed}-stream{outcome.case.index}.json"
    record = {
        "seed": seed,
        "index": outcome.case.index,
        "chunks": [repr(chunk) for chunk in outcome.case.chunks],
        "mismatches": list(outcome.mismatches),
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=_seeds, default=[1, 2, 3, 4], help="comma-separated seeds (1,2,3,4)")
    parser.add_argument("--streams", type=int, default=400, help="streams per seed (400)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser ({CHROMIUM or 'not found'})")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one seed's page may take")
    parser.add_argument(
        "--show", choices=("different", "explained"), default="different", help="which streams to print"
    )
    parser.add_argument("--save", type=pathlib.Path, help="write each unexplained stream to this folder")
    args = parser.parse_args(argv)
    if args.streams < 1:
        parser.error(f"--streams must be at least 1, got {args.streams}")
    if not args.chromium:
        print("browser_differential: Chromium not found; pass --chromium PATH", file=sys.stderr)
        return 2

    totals = {verdict: 0 for verdict in Verdict}
    by_deviation = {deviation: 0 for deviation in Deviation}
    for seed in args.seeds:
        cases = generate(seed, args.streams)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            outcomes = compare(
                cases, chromium=args.chromium, profile=pathlib.Path(profile), timeout=args.timeout
            )
        elapsed = time.monotonic() - started
        print(f"seed {seed}: {elapsed:.1f} s")
        print(summarise(outcomes))
        for outcome in outcomes:
            totals[outcome.verdict] += 1
            for deviation in outcome.deviations:
                by_deviation[deviation] += 1
            if args.show == "explained" and outcome.verdict is Verdict.EXPLAINED:
                names = ", ".join(sorted(deviation.name for deviation in outcome.deviations))
                print(f"stream {outcome.case.index} ({names}): chunks {list(outcome.case.chunks)!r}")
            if args.save and outcome.verdict is Verdict.DIFFERENT:
                print(f"  saved {_save(args.save, seed, outcome)}")
    tried = sum(totals.values())
    print(
        f"total: {tried} streams over {len(args.seeds)} seeds: {totals[Verdict.IDENTICAL]} identical, "
        f"{totals[Verdict.EXPLAINED]} explained ("
        + ", ".join(f"{deviation.name} {count}" for deviation, count in by_deviation.items())
        + f"), {totals[Verdict.DIFFERENT]} different"
    )
    return 1 if totals[Verdict.DIFFERENT] else 0


if __name__ == "__main__":
    sys.exit(main())
