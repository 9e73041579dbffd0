"""Fuzz: throw random and structured bytes at the parser layer (and the CLI and Gemini layer above it).

Run it for as long as you like; it prints how many inputs each target took, at what rate, and every
invariant that broke, with the input shrunk to a short reproduction:

    python fuzz/fuzz_parser.py --seconds 60
    python fuzz/fuzz_parser.py --seconds 600 --seed 7 --targets parser,head --save fuzz/findings

Invariants (the same ones tests/test_fuzz_parser.py checks in a few seconds on every run):

parser   any bytes either parse or raise only an ``SSEError`` subclass (in practice ``SSEProtocolError``
         for ``max_event_size``); whole, byte by byte and in random splits (with empty chunks) give the
         same events, ``last_event_id`` and ``retry``, or the same error at the same offset with the same
         events delivered before it; the events are well formed (no line end in ``event``/``id``, no CR in
         ``data``, no NUL in ``id``, ``retry`` a non-negative int); and, where tests/_reference.py (a
         character-by-character transcription of the WHATWG algorithm) is present, the same as it.
speedups the C pairs path (sse_toolkit/parser/_speedups.c, where built) returns exactly what its Python
         reference ``_pairs_reference`` returns, for cuts of the input with every separator.
head     ``split_http_head`` and a ``HeadSplitter`` fed in any split agree; the body is a suffix of the
         input, and input that cannot start with ``HTTP/`` passes through untouched.
cli      ``sse-toolkit parse`` exits 0 (printing one JSON line per event) or 1 with a one-line message;
         never a traceback.
gemini   ``sse_toolkit.iter_responses`` yields responses or raises
         only ``SSEError`` subclasses, for any bytes and any chunking.

The input generators mix uniform random bytes, bytes drawn from an SSE-shaped alphabet (field names,
colons, every line end, BOM, NUL, broken UTF-8, non-ASCII digits), grammar-built streams, and mutations of
the real Gemini captures in /work/shared/gemini-captures (if that folder exists) and fixtures/.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import sse_toolkit
from sse_toolkit import Event, EventParser, HeadSplitter, SSEError, split_http_head
from sse_toolkit.parser import _parser

try:
    from sse_toolkit.parser import _speedups
except ImportError:  # not built: nothing to compare
    _speedups = None  # type: ignore[assignment]

__all__ = [
    "TARGETS",
    "Failure",
    "check_cli",
    "check_gemini",
    "check_head",
    "check_parser",
    "check_speedups",
    "gen_alphabet",
    "gen_input",
    "gen_mutation",
    "gen_random",
    "gen_structured",
    "shrink",
    "splits",
]

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS_DIRS = [pathlib.Path("/work/shared/gemini-captures"), ROOT / "fixtures"]


class Failure(Exception):
    """An invariant broke. ``kind`` names which one, so that shrinking keeps hunting the same bug."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# --- input generators ------------------------------------------------------------------------------------

_TOKENS: list[bytes] = [
    b"data",
    b"data",
    b"data",
    b"event",
    b"id",
    b"retry",
    b"dat",
    b"DATA",
    b"data ",
    b"",
    b":",
    b":",
    b": ",
    b" ",
    b"  ",
    b"\t",
    b"\n",
    b"\n",
    b"\r",
    b"\r\n",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"\r\r",
    b"\n\r",
    b"\xef\xbb\xbf",
    b"\xef\xbb",
    b"\xef",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    "é".encode(),
    "€".encode(),
    "😀".encode(),
    "\u0661".encode(),
    "\u2028".encode(),
    "\x85".encode(),
    b"0",
    b"1",
    b"12",
    b"3000",
    b"-1",
    b"+5",
    b"1_0",
    b"1.5",
    b"99999999999999999999",
    b"x",
    b"hello",
    b"{",
    b"}",
    b'{"candidates": [',
    b"]",
    b",",
    b'"',
    b"\\",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/2 200\r\n",
    b"content-type: text/event-stream\r\n",
]
_FIELDS = [b"data", b"data", b"data", b"event", b"id", b"retry", b"", b"comment", b"Data", b"data "]
_VALUES = [
    b"",
    b"x",
    b" x",
    b"  two spaces",
    b'{"a": 1}',
    b"1000",
    b"0",
    b"-1",
    b"\x00",
    b"a\x00b",
    "über".encode(),
    b"\xff\xfe",
    b"12a",
    b"\xef\xbb\xbfbom",
    "١٢".encode(),
    b":",
    b"a: b",
]
_LINE_ENDS = [b"\n", b"\r", b"\r\n"]


def gen_random(rng: random.Random, max_size: int) -> bytes:
    """Uniform random bytes of a random length (mostly short)."""
    size = min(max_size, int(rng.expovariate(1 / 64)))
    return rng.randbytes(size)


def gen_alphabet(rng: random.Random, max_size: int) -> bytes:
    """A run of SSE-shaped tokens: field names, colons, line ends, BOM pieces, broken UTF-8, digits."""
    out: list[bytes] = []
    size = 0
    target = min(max_size, int(rng.expovariate(1 / 80)) + 1)
    while size < target:
        token = rng.choice(_TOKENS) if rng.random() < 0.9 else bytes([rng.randrange(256)])
        out.append(token)
        size += len(token)
    return b"".join(out)[:max_size]


def gen_structured(rng: random.Random, max_size: int) -> bytes:
    """A grammar-built stream: blocks of ``field[:[ ]value]`` lines, mixed line ends, optional BOM."""
    out: list[bytes] = []
    if rng.random() < 0.1:
        out.append(b"\xef\xbb\xbf" * rng.choice((1, 1, 2)))
    for _ in range(rng.randint(0, 8)):
        for _ in range(rng.randint(0, 5)):
            field = rng.choice(_FIELDS)
            mode = rng.random()
            if mode < 0.1:
                line = field  # no colon: the whole line is the name
            elif mode < 0.2:
                line = b":" + rng.choice(_VALUES)  # a comment
            else:
                line = field + rng.choice((b":", b": ", b":  ")) + rng.choice(_VALUES)
            out.append(line + rng.choice(_LINE_ENDS))
        if rng.random() < 0.85:
            out.append(rng.choice(_LINE_ENDS))  # end the block
    if rng.random() < 0.3:
        out.append(b"data: unterminated")  # the spec discards it at end of stream
    return b"".join(out)[:max_size]


def _corpus() -> list[bytes]:
    files: list[bytes] = []
    for folder in CORPUS_DIRS:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix != ".md" and path.stat().st_size < 1 << 20:
                    files.append(path.read_bytes())
    return files or [b'data: {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}\r\n\r\n']


_CORPUS: list[bytes] | None = None


def gen_mutation(rng: random.Random, max_size: int) -> bytes:
    """A real capture (or fixture) with a few random edits: flips, inserts, deletes, cuts, duplications."""
    global _CORPUS
    if _CORPUS is None:
        _CORPUS = _corpus()
    data = bytearray(rng.choice(_CORPUS))
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        at = rng.randrange(len(data))
        op = rng.randrange(6)
        if op == 0:
            data[at] = rng.randrange(256)
        elif op == 1:
            data[at:at] = rng.choice(_TOKENS)
        elif op == 2:
            del data[at : at + rng.randint(1, 16)]
        elif op == 3:
            del data[at:]  # a truncated stream
        elif op == 4:
            end = min(len(data), at + rng.randint(1, 64))
            data[at:at] = data[at:end]
        else:
            data[at] = rng.choice(b"\r\n:")
    return bytes(data[:max_size])


GENERATORS: list[Callable[[random.Random, int], bytes]] = [
    gen_random,
    gen_alphabet,
    gen_structured,
    gen_mutation,
]


def gen_input(rng: random.Random, max_size: int) -> bytes:
    return rng.choice(GENERATORS)(rng, max_size)


def splits(data: bytes, rng: random.Random) -> Iterator[tuple[str, list[bytes]]]:
    """Whole, byte by byte, and two random splits (one with empty chunks thrown in)."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    for name, empties in (("random", False), ("random+empty", True)):
        chunks: list[bytes] = []
        position = 0
        while position < len(data):
            size = rng.randint(1, max(1, len(data) // rng.choice((2, 3, 7))))
            chunks.append(data[position : position + size])
            position += size
            if empties and rng.random() < 0.3:
                chunks.append(b"")
        yield name, chunks


# --- invariant checks ------------------------------------------------------------------------------------


class _Run(NamedTuple):
    events: list[Event]  # everything delivered, including an error's .events
    last_event_id: str | None  # None when the run ended in an error (its state then is not comparable)
    retry: int | None
    error: tuple[str, int | None] | None  # (class name, offset)


def _unexpected(where: str, exc: BaseException, data: bytes) -> Failure:
    tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return Failure(f"{where}-escaped-{type(exc).__name__}", f"{tb} (input {len(data)} bytes)")


def _feed(chunks: list[bytes], limit: int) -> _Run:
    parser = EventParser(max_event_size=limit)
    events: list[Event] = []
    try:
        for chunk in chunks:
            events.extend(parser.feed(chunk))
        events.extend(parser.close())
    except SSEError as exc:
        events.extend(getattr(exc, "events", []))
        return _Run(events, None, None, (type(exc).__name__, getattr(exc, "offset", None)))
    return _Run(events, parser.last_event_id, parser.retry, None)


def _check_event_shape(event: Any) -> None:
    if type(event) is not Event:
        raise Failure("parser-bad-event", f"dispatched {type(event).__name__}, not Event: {event!r}")
    if not all(isinstance(value, str) for value in event[:3]):
        raise Failure("parser-bad-event", f"non-str field in {event!r}")
    if (
        "\r" in event.event
        or "\n" in event.event
        or "\r" in event.id
        or "\n" in event.id
        or "\r" in event.data
    ):
        raise Failure("parser-bad-event", f"line end inside a field: {event!r}")
    if "\x00" in event.id:
        raise Failure("parser-bad-event", f"NUL in id: {event!r}")
    if not event.event:
        raise Failure("parser-bad-event", f"empty event type (the default is 'message'): {event!r}")
    if event.retry is not None and (type(event.retry) is not int or event.retry < 0):
        raise Failure("parser-bad-event", f"bad retry: {event!r}")


def _reference() -> Callable[[bytes], tuple[list[Event], str, int | None]] | None:
    path = ROOT / "tests" / "_reference.py"
    if not path.is_file():
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("_sse_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # another helper's file mid-edit: fuzz without it rather than stop
        return None
    return getattr(module, "reference_parse", None)


_REFERENCE: list[Callable[[bytes], tuple[list[Event], str, int | None]] | None] = []


def check_parser(data: bytes, rng: random.Random, limit: int | None = None, reference: bool = True) -> None:
    """The parser invariants for ``data`` (``limit``: ``max_event_size``; None = the default)."""
    limit = limit if limit is not None else sse_toolkit.DEFAULT_MAX_EVENT_SIZE
    try:
        _check_parser(data, rng, limit, reference)
    except Failure as failure:
        if limit != sse_toolkit.DEFAULT_MAX_EVENT_SIZE:
            failure.detail += f" (max_event_size={limit})"
        raise


def _check_parser(data: bytes, rng: random.Random, limit: int, reference: bool) -> None:
    runs: dict[str, _Run] = {}
    for name, chunks in splits(data, rng):
        try:
            runs[name] = _feed(chunks, limit)
        except Exception as exc:  # anything that is not an SSEError
            raise _unexpected(f"parser-{name}", exc, data) from exc
    whole = runs["whole"]
    for event in whole.events:
        _check_event_shape(event)
    for name, run in runs.items():
        run_class = run.error[0] if run.error else None
        whole_class = whole.error[0] if whole.error else None
        if run_class != whole_class:  # an error in one split and not in another, or another class
            raise Failure("parser-chunking-error", f"{name}: {run.error}, whole: {whole.error}")
        if run.error != whole.error:
            raise Failure("parser-chunking-error-offset", f"{name}: {run.error}, whole: {whole.error}")
        if run.events != whole.events:
            kind = "parser-chunking-events-before-error" if whole.error else "parser-chunking-events"
            raise Failure(kind, f"{name}: {len(run.events)} events, whole: {len(whole.events)}")
        if (run.last_event_id, run.retry) != (whole.last_event_id, whole.retry):
            raise Failure(
                "parser-chunking-state",
                f"{name}: {(run.last_event_id, run.retry)}, whole: {(whole.last_event_id, whole.retry)}",
            )
    if not _REFERENCE:
        _REFERENCE.append(_reference())
    if reference and _REFERENCE[0] is not None and whole.error is None:
        expected = _REFERENCE[0](data)
        got = (whole.events, whole.last_event_id, whole.retry)
        if got != tuple(expected):
            raise Failure("parser-differs-from-reference", f"got {got!r}, reference {expected!r}")


def _head_run(chunks: list[bytes]) -> tuple[Any, ...]:
    splitter = HeadSplitter()
    body: list[bytes] = []
    try:
        for chunk in chunks:
            body.append(splitter.feed(chunk))
        body.append(splitter.close())
    except SSEError as exc:
        return ("error", type(exc).__name__, getattr(exc, "offset", None))
    return ("ok", splitter.heads, b"".join(body))


def check_head(data: bytes, rng: random.Random) -> None:
    """``split_http_head`` and ``HeadSplitter`` agree in every split; the body is the input's tail."""
    try:
        heads, body = split_http_head(data)
        whole: tuple[Any, ...] = ("ok", heads, body)
    except SSEError as exc:
        whole = ("error", type(exc).__name__, getattr(exc, "offset", None))
    except Exception as exc:
        raise _unexpected("head-whole", exc, data) from exc
    if whole[0] == "ok":
        if not data.endswith(whole[2]):
            raise Failure("head-body-not-suffix", f"body {whole[2][:60]!r} is not the input's tail")
        if not b"HTTP/".startswith(data[:5]) and (whole[1] or whole[2] != data):
            raise Failure("head-plain-body-changed", "input not starting with HTTP/ was altered")
    for name, chunks in splits(data, rng):
        if name == "whole":
            continue
        try:
            run = _head_run(chunks)
        except Exception as exc:
            raise _unexpected(f"head-{name}", exc, data) from exc
        if run != whole:
            raise Failure("head-chunking", f"{name}: {run[:2]!r}..., whole: {whole[:2]!r}...")


def check_cli(data: bytes, rng: random.Random) -> None:
    """``sse-toolkit parse`` on ``data``: exit 0 with one JSON line per event, or 1 with one line."""
    from click.testing import CliRunner

    from sse_toolkit.cli import main

    result = CliRunner().invoke(main, ["parse", "-"], input=data)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise Failure("cli-traceback", f"{type(result.exception).__name__}: {result.exception}")
    if result.exit_code not in (0, 1):
        raise Failure("cli-exit-code", f"exit {result.exit_code}")
    stderr = result.stderr
    if "Traceback" in stderr or "Traceback" in result.stdout:
        raise Failure("cli-traceback", stderr[-300:])
    if result.exit_code == 1:
        lines = stderr.splitlines()
        if len(lines) != 1 or not lines[0].startswith("sse-toolkit: error: "):
            raise Failure("cli-error-not-one-line", repr(stderr[:300]))
        return
    try:
        expected = sse_toolkit.parse(split_http_head(data)[1])
    except SSEError as exc:
        raise Failure("cli-exit-0-on-bad-input", f"the API raises {exc}") from exc
    if len(result.stdout_bytes.splitlines()) != len(expected):
        raise Failure(
            "cli-event-count", f"{len(result.stdout_bytes.splitlines())} lines, {len(expected)} events"
        )


def check_gemini(data: bytes, rng: random.Random) -> None:
    """``iter_responses`` yields or raises only ``SSEError`` subclasses, whole and in any split."""
    outcomes: dict[str, tuple[Any, ...]] = {}
    for name, chunks in splits(data, rng):
        count = 0
        try:
            for _ in sse_toolkit.iter_responses(iter(chunks)):
                count += 1
            outcomes[name] = ("ok", count)
        except SSEError as exc:
            outcomes[name] = ("error", count, type(exc).__name__)
        except Exception as exc:
            raise _unexpected(f"gemini-{name}", exc, data) from exc
    whole = outcomes["whole"]
    for name, outcome in outcomes.items():
        if outcome != whole:
            raise Failure("gemini-chunking", f"{name}: {outcome}, whole: {whole}")


def _check_parser_limited(data: bytes, rng: random.Random) -> None:
    """The parser with a tiny ``max_event_size``, so that the limit paths are fuzzed too."""
    check_parser(data, rng, limit=rng.choice((1, 2, 3, 5, 8, 13, 32, 100)))


def check_speedups(data: bytes, rng: random.Random) -> None:
    """The C pairs path (``_speedups.pairs``, if built) returns exactly what its Python reference returns,
    for cuts of ``data`` into an unfinished first line and a chunk, with every separator."""
    if _speedups is None:
        return
    cuts = [0, len(data), rng.randint(0, len(data)), rng.randint(0, len(data))]
    for start in cuts:
        partial, chunk = data[:start], data[start:]
        if 13 in partial or 10 in partial:  # the parser never hands over a partial line with a line end
            partial = partial.replace(b"\r", b"").replace(b"\n", b"")
        for sep in (b"\r\r", b"\n\n", b"\r\n\r\n"):
            last_id = rng.choice(("", "7", "\u00e9"))
            try:
                got = _speedups.pairs(partial, chunk, sep, last_id)
            except Exception as exc:
                raise _unexpected("speedups", exc, data) from exc
            expected = _parser._pairs_reference(partial, chunk, sep, last_id)
            if got != expected:
                raise Failure("speedups-differ", f"sep {sep!r}, cut {start}: C {got!r}, Python {expected!r}")


TARGETS: dict[str, Callable[[bytes, random.Random], None]] = {
    "parser": check_parser,
    "speedups": check_speedups,
    "parser-limit": _check_parser_limited,
    "head": check_head,
    "cli": check_cli,
    "gemini": check_gemini,
}


# --- shrinking and the driver ----------------------------------------------------------------------------


def shrink(data: bytes, fails: Callable[[bytes], bool], budget: int = 3000) -> bytes:
    """Delta debugging: drop ever smaller pieces of ``data`` while ``fails`` stays true."""
    size = max(1, len(data) // 2)
    while size >= 1 and budget > 0:
        position = 0
        while position < len(data) and budget > 0:
            candidate = data[:position] + data[position + size :]
            budget -= 1
            if fails(candidate):
                data = candidate
            else:
                position += size
        size //= 2
    return data


def _reproduce(
    target: Callable[[bytes, random.Random], None], kind: str, seed: int
) -> Callable[[bytes], bool]:
    def fails(candidate: bytes) -> bool:
        try:
            target(candidate, random.Random(seed))
        except Failure as failure:
            return failure.kind == kind
        return False

    return fails


def run(
    seconds: float,
    seed: int,
    targets: list[str],
    max_size: int,
    save: pathlib.Path | None = None,
    ignore: frozenset[str] = frozenset(),
) -> int:
    """Fuzz each target in turn for ``seconds`` in total; print counts; return the number of distinct bugs."""
    rng = random.Random(seed)
    counts = dict.fromkeys(targets, 0)
    spent = dict.fromkeys(targets, 0.0)
    found: dict[str, tuple[str, bytes, str]] = {}  # kind -> (target, shrunk input, detail)
    weights = {"cli": 0.5, "gemini": 0.5}  # slower targets get fewer turns, not less attention per turn
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        name = rng.choices(targets, [weights.get(t, 1.0) for t in targets])[0]
        target = TARGETS[name]
        data = gen_input(rng, max_size)
        case_seed = rng.randrange(1 << 32)
        began = time.perf_counter()
        try:
            target(data, random.Random(case_seed))
        except Failure as failure:
            if failure.kind not in found and failure.kind not in ignore:
                small = shrink(data, _reproduce(target, failure.kind, case_seed))
                try:
                    target(small, random.Random(case_seed))
                    detail = failure.detail
                except Failure as again:
                    detail = again.detail
                found[failure.kind] = (name, small, detail)
                print(f"FOUND {failure.kind} [{name}] input={small!r}\n      {detail}", flush=True)
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    digest = hashlib.sha1(small).hexdigest()[:12]
                    (save / f"{failure.kind}-{digest}.bin").write_bytes(small)
        spent[name] += time.perf_counter() - began
        counts[name] += 1
    total = sum(counts.values())
    print(f"seed {seed}, {seconds:g} s, inputs up to {max_size} bytes")
    print(f"{'target':<14}{'inputs':>10}{'inputs/s':>11}")
    for name in targets:
        rate = counts[name] / spent[name] if spent[name] else 0.0
        print(f"{name:<14}{counts[name]:>10}{rate:>11.0f}")
    print(f"{'total':<14}{total:>10}{total / seconds:>11.0f}")
    if _REFERENCE and _REFERENCE[0] is None:
        print("note: tests/_reference.py not found; the parser was not compared with the reference")
    print(f"distinct failures: {len(found)}" + ("" if found else " (every invariant held)"))
    for kind, (name, small, detail) in sorted(found.items()):
        print(f"  {kind} [{name}]: {small!r}\n    {detail}")
    return len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, from {', '.join(TARGETS)} (default all)",
    )
    parser.add_argument("--max-size", type=int, default=4096, help="largest input in bytes (default 4096)")
    parser.add_argument(
        "--save", type=pathlib.Path, default=None, help="write each shrunk failing input here"
    )
    parser.add_argument(
        "--ignore", default="", help="comma-separated failure kinds already known (fuzz past them)"
    )
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        parser.error(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    seed = args.seed if args.seed is not None else int(time.time())
    ignore = frozenset(kind.strip() for kind in args.ignore.split(",") if kind.strip())
    return 1 if run(args.seconds, seed, targets, args.max_size, args.save, ignore) else 0


if __name__ == "__main__":
    sys.exit(main())
