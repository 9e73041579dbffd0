"""Benchmark: sse_toolkit's parser against httpx-sse, launchdarkly-eventsource and sseclient-py.

Run from the repository root (after ``pip install -e ".[bench]"``)::

    python bench/bench_parser.py            # full corpora, fresh and steady, best of 5 (a few minutes)
    python bench/bench_parser.py --quick    # ~10x smaller corpora: a smoke run
    python bench/bench_parser.py --repeat 9 --corpus gemini --json results.json

Every corpus is timed in two states, because a parser's speed can depend on what the process did before
(the allocator's state: a big line grown by realloc was measured to copy several times more once the heap
had served other work):

- **fresh**: a new subprocess per parser and corpus that reads the corpus and times that parser only (two
  runs, the best counts); ``--repeat`` such processes per parser, taking turns, the best counts.
- **steady**: this process, after every corpus has been parsed once by every parser (as a test session or a
  server would have), ``--repeat`` rounds with the parsers taking turns, the best counts.

Each parser's time is the worse of the two; the ratio to each peer ("ours is N times faster") is printed for
both states, and a target passes only if both ratios reach it. The gemini corpus is also timed against
two floors, the least pure-Python work that yields its data, with no SSE rules at all: **split + decode**
(split each chunk with ``bytes.splitlines``, carry the unfinished line, decode each value after ``data: ``)
and **+ events** (the same, plus building the ``Event`` objects and reading their fields as the driver
does for every parser); each parser's time is given as a multiple of both.

Fairness: every parser gets the same bytes cut into the same 4 KiB chunks (prepared before timing); each
is driven the way its library drives itself, minus the network; every field of every event is read and
``len(data)`` summed (``data`` is a real ``str`` for all); the clock is the process's CPU time by default
(``--timer wall`` for elapsed time), so other processes on shared cores do not count; the garbage
collector is off while timing (as ``timeit`` does). Ratios within one run are what count, not absolute
numbers. Outside the timed region, each peer's ``(event, data)`` list is compared with ours; a difference
is reported as a note, not a crash (a peer that raises is noted and left out of that corpus).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from itertools import repeat as _repeat
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpora
from _peers import BytesResponse

from sse_toolkit import Event, EventParser

OURS = "sse_toolkit"
FLOOR = "floor: split + decode"
FLOOR_EVENTS = "floor: + events"
FLOORS = (FLOOR, FLOOR_EVENTS)
FLOOR_CORPORA = ("gemini",)
FRESH_RUNS = 2  # timed runs inside each fresh process: a cold first one and one more

# How many times faster than the peer ours must be, per corpus (issues 3 and 16), in both states.
TARGETS: dict[str, dict[str, float]] = {
    "httpx-sse": {"gemini": 2.0, "small": 2.0, "fields": 2.0, "big": 2.0},
    "launchdarkly-eventsource": {"gemini": 1.3, "small": 1.5, "fields": 1.5, "big": 1.3},
}

Chunks = list[bytes]
Pairs = list[tuple[str, str]]
Timer = Callable[[], float]
TIMERS: dict[str, Timer] = {"cpu": time.process_time, "wall": time.perf_counter}


@dataclass
class Runner:
    """A parser: ``timed(chunks) -> (events, total data length)``, ``collect(chunks) -> [(event, data)]``."""

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


# --- the floors: no SSE rules, only the C primitives any parser of these corpora needs ----------------------


def _floor_values(chunks: Chunks) -> Iterator[list[str]]:
    """The data of a stream of one-line ``data: `` events and blank lines, a list per chunk.

    Valid for such streams only (``FLOOR_CORPORA``; the comparison with ours checks it): a blank line is
    dropped, so is a line end split between chunks; the carried rest is small in these corpora.
    """
    rest = b""
    for chunk in chunks:
        lines = chunk.splitlines()
        if rest:
            lines[0] = rest + lines[0]
        rest = b"" if chunk[-1] in b"\r\n" else lines.pop()
        yield [line[6:].decode("utf-8", "replace") for line in lines if line]


def _floor_timed(chunks: Chunks) -> tuple[int, int]:
    n = size = 0
    for values in _floor_values(chunks):
        n += len(values)
        size += sum(map(len, values))
    return n, size


def _floor_events_timed(chunks: Chunks) -> tuple[int, int]:
    new = tuple.__new__
    n = size = 0
    for values in _floor_values(chunks):
        for ev in map(new, _repeat(Event), zip(_repeat("message"), values, _repeat(""), _repeat(None))):
            _e, _i, _r = ev.event, ev.id, ev.retry
            size += len(ev.data)
            n += 1
    return n, size


def _floor_collect(chunks: Chunks) -> Pairs:
    return [("message", value) for values in _floor_values(chunks) for value in values]


def _floor() -> Runner:
    return Runner(FLOOR, "", _floor_timed, _floor_collect)


def _floor_events() -> Runner:
    return Runner(FLOOR_EVENTS, "", _floor_events_timed, _floor_collect)


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
    from ld_eventsource.actions import Event as LDEvent  # type: ignore[import-untyped]
    from ld_eventsource.reader import _BufferedLineReader, _SSEReader  # type: ignore[import-untyped]

    def events(chunks: Chunks) -> Iterator[Any]:
        # SSEClient.events keeps the Event items of events_and_comments() (comments are yielded too).
        reader = _SSEReader(_BufferedLineReader.lines_from(iter(chunks)), None, None)
        for item in reader.events_and_comments():
            if isinstance(item, LDEvent):
                yield item

    def timed(chunks: Chunks) -> tuple[int, int]:
        n = size = 0
        reader = _SSEReader(_BufferedLineReader.lines_from(iter(chunks)), None, None)
        for ev in reader.events_and_comments():
            if isinstance(ev, LDEvent):
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


PEERS: dict[str, Callable[[], Runner]] = {
    "httpx-sse": _httpx_sse,
    "launchdarkly-eventsource": _launchdarkly,
    "sseclient-py": _sseclient,
}


def load_runners() -> tuple[list[Runner], list[str]]:
    """Our runner plus every installed peer; notes for the peers that are missing."""
    runners = [_ours()]
    notes = []
    for make in PEERS.values():
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
    fresh_seconds: float
    steady_seconds: float
    seconds: float  # the worse of the two
    mb_per_s: float  # from the worse time
    events_per_s: float
    fresh_speedup: float | None = None  # peer time / our time, fresh: how many times faster ours is
    steady_speedup: float | None = None
    target: float | None = None
    passed: bool | None = None  # both speedups reach the target
    floor_multiples: list[float] = field(default_factory=list)  # worse time / each floor's worse time


@dataclass
class CorpusReport:
    name: str
    description: str
    size: int
    events: int
    results: list[Result] = field(default_factory=list)
    floors: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _time_once(runner: Runner, chunks: Chunks, timer: Timer) -> tuple[float, int]:
    gc.collect()
    gc.disable()
    try:
        t0 = timer()
        n, _size = runner.timed(chunks)
        return timer() - t0, n
    finally:
        gc.enable()


def _check_count(name: str, found: int, expected: int) -> None:
    if (name == OURS or name in FLOORS) and found != expected:
        raise SystemExit(f"bench: {name} found {found} events, expected {expected}: a bug")


def steady_times(
    runners: list[Runner], chunks: Chunks, rounds: int, expected: int, timer: Timer
) -> dict[str, float]:
    """Best time per runner over ``rounds``; in each round every runner runs once, in turn."""
    best = {r.name: float("inf") for r in runners}
    for _ in range(rounds):
        for runner in runners:
            seconds, n = _time_once(runner, chunks, timer)
            _check_count(runner.name, n, expected)
            best[runner.name] = min(best[runner.name], seconds)
    return best


def fresh_times(
    names: list[str], corpus_file: Path, expected: int, processes: int, chunk_size: int, timer: str
) -> dict[str, float]:
    """Best time per runner over ``processes`` new processes each (taking turns), each timing one runner."""
    best = dict.fromkeys(names, float("inf"))
    for _ in range(processes):
        for name in names:
            command = [sys.executable, __file__, "--fresh-worker", str(corpus_file), name]
            command += ["--chunk-size", str(chunk_size), "--timer", timer, "--expect", str(expected)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"bench: the fresh process timing {name} failed:\n{proc.stderr}")
            best[name] = min(best[name], float(proc.stdout))
    return best


def _fresh_worker(corpus_file: Path, name: str, chunk_size: int, timer: Timer, expected: int) -> None:
    """In a new process: read one corpus, time one runner ``FRESH_RUNS`` times, print the best seconds."""
    makers = {OURS: _ours, FLOOR: _floor, FLOOR_EVENTS: _floor_events, **PEERS}
    if name not in makers:
        raise SystemExit(f"bench: no runner called {name!r}")
    runner = makers[name]()
    chunks = _corpora.chunked(corpus_file.read_bytes(), chunk_size)
    best = float("inf")
    for _ in range(FRESH_RUNS):
        seconds, n = _time_once(runner, chunks, timer)
        _check_count(name, n, expected)
        best = min(best, seconds)
    print(repr(best))


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
        except Exception as exc:  # a peer's bug must not stop the benchmark
            notes.append(f"{runner.name} raised {type(exc).__name__}: {_short(exc)}; left out of this corpus")
            continue
        if theirs == ours:
            usable.append(runner)
            continue
        first = next(
            (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
            min(len(ours), len(theirs)),
        )
        got = theirs[first] if first < len(theirs) else "<none>"
        want = ours[first] if first < len(ours) else "<none>"
        notes.append(
            f"{runner.name} differs: {len(theirs)} events vs our {len(ours)}; first difference at event "
            f"{first}: {_short(got)} vs ours {_short(want)}"
        )
        if runner.name in FLOORS:
            raise SystemExit(f"bench: {notes[-1]}: the floor is wrong for this corpus")
        usable.append(runner)
    return notes, usable


def _short(value: object, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Prepared:
    corpus: _corpora.Corpus
    chunks: Chunks
    runners: list[Runner]
    notes: list[str]
    file: Path


def prepare(
    runners: list[Runner], names: list[str], quick: bool, chunk_size: int, folder: Path
) -> list[Prepared]:
    """Build, chunk and save each corpus (the fresh processes read the file) and check the peers on it."""
    out = []
    for name in names:
        corpus = _corpora.build(name, quick=quick)
        chunks = _corpora.chunked(corpus.data, chunk_size)
        path = folder / f"{name}.sse"
        path.write_bytes(corpus.data)
        candidates = runners + ([_floor(), _floor_events()] if name in FLOOR_CORPORA else [])
        notes, usable = _compare(candidates, chunks)
        out.append(Prepared(corpus, chunks, usable, notes, path))
    return out


def report(prep: Prepared, fresh: dict[str, float], steady: dict[str, float]) -> CorpusReport:
    corpus = prep.corpus
    rep = CorpusReport(corpus.name, corpus.description, len(corpus.data), corpus.events, notes=prep.notes)
    for runner in prep.runners:
        worse = max(fresh[runner.name], steady[runner.name])
        result = Result(
            runner.name,
            fresh[runner.name],
            steady[runner.name],
            worse,
            len(corpus.data) / worse / 1e6,
            corpus.events / worse,
        )
        if runner.name in FLOORS:
            rep.floors.append(result)
            continue
        if runner.name != OURS:
            result.fresh_speedup = fresh[runner.name] / fresh[OURS]
            result.steady_speedup = steady[runner.name] / steady[OURS]
            result.target = TARGETS.get(runner.name, {}).get(corpus.name)
            if result.target is not None:
                result.passed = min(result.fresh_speedup, result.steady_speedup) >= result.target
        rep.results.append(result)
    for result in rep.results:
        result.floor_multiples = [result.seconds / floor.seconds for floor in rep.floors]
    return rep


@dataclass
class LinearReport:
    parser: str
    half_seconds: float
    full_seconds: float
    ratio: float


def run_linear(
    runners: list[Runner], size: int, repeat: int, timer: Timer
) -> tuple[list[LinearReport], list[str]]:
    """A ``size``-byte line and one of half that size, fed 1 byte at a time: time should double, not 4x."""
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
                seconds, events = _time_once(runner, one_byte_chunks, timer)
                best = min(best, seconds)
                if events != 1:
                    notes.append(f"{runner.name} found {events} events in the long-line stream, expected 1")
            times.append(best)
        reports.append(LinearReport(runner.name, times[0], times[1], times[1] / times[0]))
    return reports, notes


# --- output ----------------------------------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _print_corpus(rep: CorpusReport, chunk_size: int, repeat: int) -> None:
    print(
        f"\n## {rep.name}: {rep.description}\n"
        f"   {rep.size / 1e6:.1f} MB, {rep.events:,} events, {chunk_size}-byte chunks; fresh: best of "
        f"{repeat} processes x {FRESH_RUNS} runs, steady: best of {repeat} rounds; "
        "MB/s from the worse of the two\n"
    )
    print(
        f"| {'parser':<26} | {'fresh ms':>8} | {'steady ms':>9} | {'MB/s':>7} | {'fresh':>6} | {'steady':>6} "
        f"| {'target':>6} | {'':4} |"
    )
    print(f"|{'-' * 28}|{'-' * 9}:|{'-' * 10}:|{'-' * 8}:|{'-' * 7}:|{'-' * 7}:|{'-' * 7}:|{'-' * 6}|")
    rows = rep.results + rep.floors
    for r in rows:
        target = "" if r.target is None else f"{r.target:g}x"
        mark = "" if r.passed is None else ("PASS" if r.passed else "MISS")
        print(
            f"| {r.parser:<26} | {r.fresh_seconds * 1e3:8.1f} | {r.steady_seconds * 1e3:9.1f} "
            f"| {r.mb_per_s:7.1f} | {_ratio(r.fresh_speedup):>6} | {_ratio(r.steady_speedup):>6} "
            f"| {target:>6} | {mark:4} |"
        )
    print("   fresh/steady: the peer's time / ours (ours is N times faster); a target needs both")
    if rep.floors:
        print(f"   {_floor_line(rep)}")
    for note in rep.notes:
        print(f"   note: {note}")


def _print_summary(reports: list[CorpusReport]) -> None:
    """One table for README: our worse-state speed and each peer's fresh / steady ratio."""
    peers = [r.parser for r in reports[0].results if r.parser != OURS] if reports else []
    print("\n## summary (ours is N times faster than the peer: fresh / steady)\n")
    print("| corpus | sse_toolkit MB/s | " + " | ".join(peers) + " |")
    print("|---|---:|" + "---:|" * len(peers))
    for rep in reports:
        by_name = {r.parser: r for r in rep.results}
        cells = []
        for peer in peers:
            r = by_name.get(peer)
            if r is None:
                cells.append("n/a")
                continue
            mark = "" if r.passed is None else f" {'PASS' if r.passed else 'MISS'} ({r.target:g}x)"
            cells.append(f"{_ratio(r.fresh_speedup)} / {_ratio(r.steady_speedup)}{mark}")
        print(f"| {rep.name} | {by_name[OURS].mb_per_s:.1f} | " + " | ".join(cells) + " |")
    for rep in reports:
        if rep.floors:
            print(f"\n{rep.name}: {_floor_line(rep)}")


def _floor_line(rep: CorpusReport) -> str:
    """Each parser's time as a multiple of each floor's (worse of the two states each)."""
    floors = " / ".join(f"{f.parser} ({f.seconds * 1e3:.1f} ms)" for f in rep.floors)
    multiples = ", ".join(
        f"{r.parser} {' / '.join(f'{m:.2f}x' for m in r.floor_multiples)}" for r in rep.results
    )
    return f"time as a multiple of {floors}: {multiples}"


def _print_linear(reports: list[LinearReport], size: int, notes: list[str]) -> None:
    print(
        f"\n## linear time: one {size // 1024} KiB line fed 1 byte at a time "
        f"(and one of {size // 2048} KiB)\n"
    )
    print(
        f"| {'parser':<26} | {f'{size // 2048} KiB s':>10} | {f'{size // 1024} KiB s':>10} | {'ratio':>6} |"
    )
    print(f"|{'-' * 28}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
    for r in reports:
        print(f"| {r.parser:<26} | {r.half_seconds:10.3f} | {r.full_seconds:10.3f} | {r.ratio:6.2f} |")
    print("   (linear: ratio ~2; quadratic: ~4)")
    for note in notes:
        print(f"   note: {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="fresh processes per parser and corpus, and steady rounds; the best counts (default 5)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="~10x smaller corpora and a 64 KiB long line: a smoke run"
    )
    ap.add_argument(
        "--corpus", action="append", choices=_corpora.CORPORA, help="run only this corpus (repeatable)"
    )
    ap.add_argument(
        "--chunk-size", type=int, default=_corpora.CHUNK_SIZE, help="bytes per chunk (default 4096)"
    )
    ap.add_argument("--no-linear", action="store_true", help="skip the 1-byte-at-a-time long line check")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
    ap.add_argument(
        "--timer",
        choices=tuple(TIMERS),
        default="cpu",
        help="cpu: the process's CPU time (default; other processes on shared cores do not count), "
        "wall: elapsed",
    )
    # Internal: how a fresh process is started (a corpus file and a runner name).
    ap.add_argument("--fresh-worker", nargs=2, metavar=("FILE", "PARSER"), help=argparse.SUPPRESS)
    ap.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    timer = TIMERS[args.timer]
    if args.fresh_worker:
        _fresh_worker(Path(args.fresh_worker[0]), args.fresh_worker[1], args.chunk_size, timer, args.expect)
        return 0

    runners, notes = load_runners()
    print(f"# SSE parser benchmark ({'quick' if args.quick else 'full'})")
    print(
        f"   Python {platform.python_version()} ({platform.python_implementation()}) "
        f"on {platform.machine()}, {args.timer} time"
    )
    print("   " + ", ".join(f"{r.name} {r.version}" for r in runners))
    for note in notes:
        print(f"   note: {note}")

    names = args.corpus or list(_corpora.CORPORA)
    with tempfile.TemporaryDirectory(prefix="bench-parser-") as folder:
        prepared = prepare(runners, names, args.quick, args.chunk_size, Path(folder))
        fresh = [
            fresh_times(
                [r.name for r in p.runners], p.file, p.corpus.events, args.repeat, args.chunk_size, args.timer
            )
            for p in prepared
        ]
    # Steady: every corpus through every parser once, then the timed rounds.
    for p in prepared:
        for runner in p.runners:
            _time_once(runner, p.chunks, timer)
    reports = []
    for p, fresh_best in zip(prepared, fresh, strict=True):
        steady = steady_times(p.runners, p.chunks, args.repeat, p.corpus.events, timer)
        rep = report(p, fresh_best, steady)
        _print_corpus(rep, args.chunk_size, args.repeat)
        sys.stdout.flush()
        reports.append(rep)

    linear: list[LinearReport] = []
    linear_size = (64 if args.quick else 1024) * 1024
    if not args.no_linear:
        linear, linear_notes = run_linear(runners, linear_size, min(args.repeat, 3), timer)
        _print_linear(linear, linear_size, linear_notes)

    _print_summary(reports)
    checked = [r for rep in reports for r in rep.results if r.passed is not None]
    missed = [f"{rep.name} vs {r.parser}" for rep in reports for r in rep.results if r.passed is False]
    summary = f"{len(checked) - len(missed)}/{len(checked)} PASS" + (
        f"; MISS: {', '.join(missed)}" if missed else ""
    )
    print(f"\ntargets: {summary} (a target needs both states)")

    if args.json:
        payload = {
            "python": platform.python_version(),
            "versions": {r.name: r.version for r in runners},
            "chunk_size": args.chunk_size,
            "repeat": args.repeat,
            "fresh_runs": FRESH_RUNS,
            "timer": args.timer,
            "quick": args.quick,
            "corpora": [
                {
                    "name": rep.name,
                    "description": rep.description,
                    "bytes": rep.size,
                    "events": rep.events,
                    "results": [vars(r) for r in rep.results],
                    "floors": [vars(f) for f in rep.floors],
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
