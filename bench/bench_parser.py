"""Benchmark: sse_toolkit's parser against httpx-sse, launchdarkly-eventsource and sseclient-py.

Run from the repository root (after ``pip install -e ".[bench]"``)::

    python bench/bench_parser.py            # full corpora, best of 5
    python bench/bench_parser.py --quick    # ~10x smaller corpora: a smoke run
    python bench/bench_parser.py --repeat 9 --corpus gemini --json results.json

Fairness: one process; every parser gets the same bytes cut into the same 4 KiB chunks (prepared before
timing); each is driven the way its library drives itself, minus the network; every field of every event
is read and ``len(data)`` summed (``data`` is a real ``str`` for all four); best of N runs, the parsers
taking turns within each round so that background load hits them alike; the clock is this process's CPU
time by default (``--timer wall`` for elapsed time), so other processes on shared cores do not count; the
garbage collector is off while timing (as ``timeit`` does). Ratios within one run are what count, not
absolute numbers. Outside the timed region, each peer's ``(event, data)`` list is compared with ours; a
difference is reported as a note, not a crash (a peer that raises is noted and left out of that corpus).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpora
from _peers import BytesResponse

from sse_toolkit import EventParser

OURS = "sse_toolkit"

# Targets from issue 3: how many times faster than the peer ours must be, per corpus.
TARGETS: dict[str, dict[str, float]] = {
    "httpx-sse": {"gemini": 2.0, "small": 2.0, "fields": 2.0, "big": 1.2},
    "launchdarkly-eventsource": {"gemini": 1.3, "small": 1.5, "fields": 1.5, "big": 1.05},
}

Chunks = list[bytes]
Pairs = list[tuple[str, str]]


@dataclass
class Runner:
    """One parser: ``timed(chunks) -> (events, total data length)`` and ``collect(chunks) -> [(event, data)]``."""

    name: str
    dist: str
    timed: Callable[[Chunks], tuple[int, int]]
    collect: Callable[[Chunks], Pairs]
    version: str = ""


# --- sse_toolkit: EventParser.feed/close, the API users call ------------------------------------------


def _ours_timed(chunks: Chunks) -> tuple[int, int]:
    parser = EventParser()
    feed = parser.feed
    n = size = 0
    for chunk in chunks:
        for ev in feed(chunk):
            _e, _i, _r = ev.event, ev.id, ev.retry
            size += len(ev.data)
            n += 1
    for ev in parser.close():
        _e, _i, _r = ev.event, ev.id, ev.retry
        size += len(ev.data)
        n += 1
    return n, size


def _ours_collect(chunks: Chunks) -> Pairs:
    parser = EventParser()
    out = [(ev.event, ev.data) for chunk in chunks for ev in parser.feed(chunk)]
    return out + [(ev.event, ev.data) for ev in parser.close()]


def _ours() -> Runner:
    return Runner(OURS, "sse-toolkit", _ours_timed, _ours_collect)


# --- httpx-sse: EventSource.iter_sse over a response whose iter_text() is httpx's, minus the socket -------




def _httpx_sse() -> Runner:
    from httpx_sse import EventSource

    def timed(chunks: Chunks) -> tuple[int, int]:
        n = size = 0
        for ev in EventSource(BytesResponse(chunks)).iter_sse():  # type: ignore[arg-type]
            _e, _i, _r = ev.event, ev.id, ev.retry
            size += len(ev.data)
            n += 1
        return n, size

    def collect(chunks: Chunks) -> Pairs:
        source = EventSource(BytesResponse(chunks))  # type: ignore[arg-type]
        return [(ev.event, ev.data) for ev in source.iter_sse()]

    return Runner("httpx-sse", "httpx-sse", timed, collect)


# --- launchdarkly-eventsource: its line reader + SSE reader, as SSEClient._all_generator drives them -------


def _launchdarkly() -> Runner:
    from ld_eventsource.actions import Event  # type: ignore[import-untyped]
    from ld_eventsource.reader import _BufferedLineReader, _SSEReader  # type: ignore[import-untyped]

    def events(chunks: Chunks) -> Iterator[Any]:
        # SSEClient.events keeps the Event items of events_and_comments() (comments are yielded too).
        reader = _SSEReader(_BufferedLineReader.lines_from(iter(chunks)), None, None)
        for item in reader.events_and_comments():
            if isinstance(item, Event):
                yield item

    def timed(chunks: Chunks) -> tuple[int, int]:
        n = size = 0
        reader = _SSEReader(_BufferedLineReader.lines_from(iter(chunks)), None, None)
        for ev in reader.events_and_comments():
            if isinstance(ev, Event):
                # Its Event has no retry; it reports the last event ID separately.
                _e, _i, _r = ev.event, ev.id, ev.last_event_id
                size += len(ev.data)
                n += 1
        return n, size

    def collect(chunks: Chunks) -> Pairs:
        return [(ev.event, ev.data) for ev in events(chunks)]

    return Runner("launchdarkly-eventsource", "launchdarkly-eventsource", timed, collect)


# --- sseclient-py: SSEClient over a generator of chunks, its events() ---------------------------------------


def _sseclient() -> Runner:
    from sseclient import SSEClient

    def timed(chunks: Chunks) -> tuple[int, int]:
        n = size = 0
        for ev in SSEClient(c for c in chunks).events():
            _e, _i, _r = ev.event, ev.id, ev.retry
            size += len(ev.data)
            n += 1
        return n, size

    def collect(chunks: Chunks) -> Pairs:
        return [(ev.event, ev.data) for ev in SSEClient(c for c in chunks).events()]

    return Runner("sseclient-py", "sseclient-py", timed, collect)


PEERS: tuple[Callable[[], Runner], ...] = (_httpx_sse, _launchdarkly, _sseclient)


def load_runners() -> tuple[list[Runner], list[str]]:
    """Our runner plus every installed peer; notes for the peers that are missing."""
    runners = [_ours()]
    notes = []
    for make in PEERS:
        try:
            runners.append(make())
        except ImportError as exc:
            notes.append(f"peer skipped, not installed ({exc}); pip install -e '.[bench]'")
    for runner in runners:
        try:
            runner.version = metadata.version(runner.dist)
        except metadata.PackageNotFoundError:
            runner.version = "?"
    return runners, notes


# --- measuring ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    parser: str
    seconds: float
    events: int
    mb_per_s: float
    events_per_s: float
    speedup: float | None = None  # peer time / our time: how many times faster ours is
    target: float | None = None
    passed: bool | None = None


@dataclass
class CorpusReport:
    name: str
    description: str
    size: int
    events: int
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _best_times(
    runners: list[Runner], chunks: Chunks, repeat: int, expected: int, timer: Callable[[], float]
) -> dict[str, float]:
    """Best time per runner over ``repeat`` rounds; in each round every runner runs once, in turn."""
    best = {r.name: float("inf") for r in runners}
    counts: dict[str, int] = {}
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            for runner in runners:
                gc.collect()
                gc.disable()
                t0 = timer()
                n, _size = runner.timed(chunks)
                elapsed = timer() - t0
                gc.enable()
                best[runner.name] = min(best[runner.name], elapsed)
                counts[runner.name] = n
    finally:
        if gc_was_enabled:
            gc.enable()
    if counts[OURS] != expected:
        raise SystemExit(f"bench: {OURS} found {counts[OURS]} events, expected {expected}: parser bug")
    return best


def _compare(runners: list[Runner], chunks: Chunks) -> tuple[list[str], list[Runner]]:
    """Notes for each peer whose (event, data) list differs from ours, and the runners that did not raise.

    Runs outside the timed region.
    """
    ours = _ours_collect(chunks)
    notes = []
    usable = []
    for runner in runners:
        if runner.name == OURS:
            usable.append(runner)
            continue
        try:
            theirs = runner.collect(chunks)
        except Exception as exc:  # noqa: BLE001 - a peer bug must not stop the benchmark
            notes.append(f"{runner.name} raised {type(exc).__name__}: {_short(exc)}; left out of this corpus")
            continue
        usable.append(runner)
        if theirs == ours:
            continue
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        got = theirs[first] if first < len(theirs) else "<none>"
        want = ours[first] if first < len(ours) else "<none>"
        notes.append(
            f"{runner.name} differs: {len(theirs)} events vs our {len(ours)}; first difference at event "
            f"{first}: {_short(got)} vs ours {_short(want)}"
        )
    return notes, usable


def _short(value: object, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def run_corpus(
    runners: list[Runner], corpus: _corpora.Corpus, repeat: int, chunk_size: int, timer: Callable[[], float]
) -> CorpusReport:
    chunks = _corpora.chunked(corpus.data, chunk_size)
    report = CorpusReport(corpus.name, corpus.description, len(corpus.data), corpus.events)
    report.notes, runners = _compare(runners, chunks)
    best = _best_times(runners, chunks, repeat, corpus.events, timer)
    ours = best[OURS]
    for runner in runners:
        seconds = best[runner.name]
        result = Result(
            runner.name,
            seconds,
            corpus.events,
            len(corpus.data) / seconds / 1e6,
            corpus.events / seconds,
        )
        if runner.name != OURS:
            result.speedup = seconds / ours
            result.target = TARGETS.get(runner.name, {}).get(corpus.name)
            if result.target is not None:
                result.passed = result.speedup >= result.target
        report.results.append(result)
    return report


@dataclass
class LinearReport:
    parser: str
    half_seconds: float
    full_seconds: float
    ratio: float


def run_linear(
    runners: list[Runner], size: int, repeat: int, timer: Callable[[], float]
) -> tuple[list[LinearReport], list[str]]:
    """A ``size``-byte line and one of half that size, fed 1 byte at a time: time should double, not quadruple."""
    reports = []
    notes = []
    for runner in runners:
        if runner.name == "sseclient-py":
            # Its _read() grows the pending event with `data += line`: quadratic, hours at 1 MiB.
            notes.append("sseclient-py skipped: its _read() concatenates bytes per line (quadratic)")
            continue
        times = []
        for n in (size // 2, size):
            one_byte_chunks = [bytes([b]) for b in _corpora.long_line_stream(n)]
            best = float("inf")
            for _ in range(repeat):
                gc.collect()
                gc.disable()
                t0 = timer()
                events, _ = runner.timed(one_byte_chunks)
                best = min(best, timer() - t0)
                gc.enable()
                if events != 1:
                    notes.append(f"{runner.name} found {events} events in the long-line stream, expected 1")
            times.append(best)
        reports.append(LinearReport(runner.name, times[0], times[1], times[1] / times[0]))
    return reports, notes


# --- output ----------------------------------------------------------------------------------------------


def _print_corpus(report: CorpusReport, chunk_size: int, repeat: int) -> None:
    print(
        f"\n## {report.name}: {report.description}\n"
        f"   {report.size / 1e6:.1f} MB, {report.events:,} events, {chunk_size}-byte chunks, best of {repeat}\n"
    )
    print(f"| {'parser':<26} | {'MB/s':>8} | {'events/s':>11} | {'ours/peer':>9} | {'target':>6} | {'':4} |")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 13}|{'-' * 11}|{'-' * 8}|{'-' * 6}|")
    for r in report.results:
        ratio = "" if r.speedup is None else f"{r.speedup:.2f}x"
        target = "" if r.target is None else f"{r.target:g}x"
        mark = "" if r.passed is None else ("PASS" if r.passed else "MISS")
        print(
            f"| {r.parser:<26} | {r.mb_per_s:8.1f} | {r.events_per_s:11,.0f} | {ratio:>9} | {target:>6} | {mark:4} |"
        )
    for note in report.notes:
        print(f"   note: {note}")


def _print_linear(reports: list[LinearReport], size: int, notes: list[str]) -> None:
    print(f"\n## linear time: one {size // 1024} KiB line fed 1 byte at a time (and one of {size // 2048} KiB)\n")
    print(f"| {'parser':<26} | {f'{size // 2048} KiB s':>10} | {f'{size // 1024} KiB s':>10} | {'ratio':>6} |")
    print(f"|{'-' * 28}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
    for r in reports:
        print(f"| {r.parser:<26} | {r.half_seconds:10.3f} | {r.full_seconds:10.3f} | {r.ratio:6.2f} |")
    print("   (linear: ratio ~2; quadratic: ~4)")
    for note in notes:
        print(f"   note: {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=5, help="runs per parser and corpus; the best counts (default 5)")
    ap.add_argument("--quick", action="store_true", help="~10x smaller corpora and a 64 KiB long line: a smoke run")
    ap.add_argument(
        "--corpus", action="append", choices=_corpora.CORPORA, help="run only this corpus (repeatable)"
    )
    ap.add_argument("--chunk-size", type=int, default=_corpora.CHUNK_SIZE, help="bytes per chunk (default 4096)")
    ap.add_argument("--no-linear", action="store_true", help="skip the 1-byte-at-a-time long line check")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
    ap.add_argument(
        "--timer",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: this process's CPU time (default; other processes on shared cores do not count); wall: elapsed",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    timer = time.process_time if args.timer == "cpu" else time.perf_counter

    runners, notes = load_runners()
    print(f"# SSE parser benchmark ({'quick' if args.quick else 'full'})")
    print(
        f"   Python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}, "
        f"{args.timer} time"
    )
    print("   " + ", ".join(f"{r.name} {r.version}" for r in runners))
    for note in notes:
        print(f"   note: {note}")

    reports = []
    for name in args.corpus or _corpora.CORPORA:
        corpus = _corpora.build(name, quick=args.quick)
        report = run_corpus(runners, corpus, args.repeat, args.chunk_size, timer)
        _print_corpus(report, args.chunk_size, args.repeat)
        sys.stdout.flush()
        reports.append(report)

    linear: list[LinearReport] = []
    linear_size = (64 if args.quick else 1024) * 1024
    if not args.no_linear:
        linear, linear_notes = run_linear(runners, linear_size, min(args.repeat, 3), timer)
        _print_linear(linear, linear_size, linear_notes)

    checked = [r for rep in reports for r in rep.results if r.passed is not None]
    missed = [f"{rep.name} vs {r.parser}" for rep in reports for r in rep.results if r.passed is False]
    summary = f"{len(checked) - len(missed)}/{len(checked)} PASS" + (f"; MISS: {', '.join(missed)}" if missed else "")
    print(f"\ntargets: {summary}")

    if args.json:
        payload = {
            "python": platform.python_version(),
            "versions": {r.name: r.version for r in runners},
            "chunk_size": args.chunk_size,
            "repeat": args.repeat,
            "timer": args.timer,
            "quick": args.quick,
            "corpora": [
                {
                    "name": rep.name,
                    "description": rep.description,
                    "bytes": rep.size,
                    "events": rep.events,
                    "results": [vars(r) for r in rep.results],
                    "notes": rep.notes,
                }
                for rep in reports
            ],
            "linear": {"bytes": linear_size, "results": [vars(r) for r in linear]},
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
