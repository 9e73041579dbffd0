"""Tests: a differential run of the parser against headless Chromium's own ``EventSource``.

Streams rich in edge cases are generated from a seed and served, in random chunks with real pauses between
them, to one headless Chromium page that opens an ``EventSource`` per stream (many at once, across several
127.0.0.1 port-0 listeners, because Chromium opens at most six HTTP/1.1 connections per host and port).
Each stream ends by closing the connection; the browser's automatic reconnection is answered with 204,
which stops it, and the server records the ``Last-Event-ID`` it carried and how long after the close it
came (the reconnection time in force). The page reports every event it saw (type, data, lastEventId).

The same chunks are fed to ``EventParser``; a difference is either one of the documented places where
Chromium departs from the WHATWG text (``Deviation``), recognised by rule, or a failure. A rule applies
only when the stream holds the deviation's trigger, and explains a difference only when rewriting the
stream the way Chromium misreads it makes the parser's result equal to what Chromium did.

``fuzz/browser_differential.py`` runs more seeds; ``tests/parser/test_browser_differential.py`` one seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import os
import pathlib
import random
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from sse_toolkit import EventParser

__all__ = [
    "CHROMIUM",
    "DEFAULT_RECONNECT_MS",
    "Case",
    "Deviation",
    "Expected",
    "Observed",
    "Outcome",
    "Verdict",
    "chromium_args",
    "compare",
    "early_dispatches",
    "expect",
    "generate",
    "judge",
    "run_chromium",
    "summarise",
]

CHROMIUM: str | None = next(
    (
        path
        for path in (
            "/usr/bin/chromium",
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
            shutil.which("google-chrome"),
        )
        if path and pathlib.Path(path).exists()
    ),
    None,
)


def chromium_args(chromium: str, profile: pathlib.Path, url: str) -> list[str]:
    """The command line of a headless Chromium with its own ``profile`` directory that opens ``url``."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        # A page that waits on timers must not be throttled as a background one.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        f"--user-data-dir={profile}",
        url,
    ]


# The spec leaves the initial reconnection time to the user agent; Chromium's kDefaultReconnectDelay.
DEFAULT_RECONNECT_MS = 3000
# A reconnection is never earlier than the retry in force (the timer starts when the browser sees the
# close, after the server recorded it) but comes late on a loaded machine: the slack allowed each way.
# The valid retry values generated (0, 7, 1500 and the default) lie further apart than EARLY_MS + LATE_MS,
# so a reconnection after the wrong one of them never passes. A stream that differs only by a late (or
# missing) reconnection is measured again (``compare``): a timer never fires early, but may fire late.
EARLY_MS = 30
LATE_MS = 1400
# How long the page waits for a reconnection after it saw the end of a stream before it gives up: valid
# generated retry values are either at most the default (measured) or far above this (never seen).
GIVE_UP_MS = DEFAULT_RECONNECT_MS + LATE_MS + 800
# Chromium's limit is six connections per host and port; four streams per port leaves room for the
# reconnections of streams that just ended. The total stays well under Chromium's socket pool limit (256).
STREAMS_PER_PORT = 4
MAX_ACTIVE = 40

_BOM = b"\xef\xbb\xbf"


class Deviation(enum.Enum):
    """A documented place where Chromium departs from the WHATWG event-stream text (docs/parser.md)."""

    BOM_THEN_LINE_END = "a CR or LF right after a leading BOM"
    EMPTY_RETRY_RESETS = "an empty retry resets the reconnection time to 3000 ms"
    HUGE_RETRY_IGNORED = "a retry of 2**64 or more is ignored"


class Verdict(enum.Enum):
    IDENTICAL = "identical"
    EXPLAINED = "explained by a documented Chromium deviation"
    DIFFERENT = "different"


@dataclass(frozen=True)
class Case:
    """One generated stream: its chunks and the pause (seconds) after each one."""

    index: int
    chunks: tuple[bytes, ...]
    pauses: tuple[float, ...]

    @property
    def stream(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True)
class Observed:
    """What Chromium did with one stream."""

    events: tuple[tuple[str, str, str], ...]  # (type, data, lastEventId) in dispatch order
    reconnected: bool
    last_event_id: str | None  # the Last-Event-ID request header of the reconnection, None if absent
    delay_ms: float | None  # from the server's close to the reconnection request
    # Wall-clock times (ms since the epoch, one machine): each event's dispatch in the page, each chunk's
    # write on the server. They show whether the browser really saw the chunk boundaries.
    event_times_ms: tuple[float, ...] = ()
    chunk_times_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class Expected:
    """What the parser says a browser must do with one stream."""

    events: tuple[tuple[str, str, str], ...]
    last_event_id: str
    retry_ms: int  # the reconnection time in force at the end (the default if no valid retry was seen)


@dataclass(frozen=True)
class Outcome:
    case: Case
    observed: Observed
    expected: Expected
    verdict: Verdict
    deviations: frozenset[Deviation] = frozenset()
    mismatches: tuple[str, ...] = ()  # what differs between the parser and Chromium, when not identical
    remeasured: bool = False  # judged on a second run, the first having differed only by a late reconnection


# --- generating streams ----------------------------------------------------------------------------------

_LINE_ENDS = (b"\n", b"\r", b"\r\n")
_TEXT_VALUES = (
    b"hello",
    b"",
    b" two spaces",
    b"a:b: c",
    "é ü".encode(),
    "😀".encode(),
    "١٢".encode(),
    "\u2028 \x85".encode(),
    b"\x00",
    b"tab\there",
    b"\xef\xbb\xbfinner bom",
)
_BROKEN_UTF8 = (
    b"\xff",
    b"\xc3(",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xf0\x9f\x98",
    b"\x80\x80",
    b"ok\xe2\x82\xac\xe2",
)
_TYPES = (b"message", b"", b"update", "é".encode(), b"a b", b"x\x00y", b"\xff")
_IDS = (b"1", b"42", b"", "é".encode(), b"a\x00b", b"\x00", b"\xfe", b"id with spaces ", b"\t", b"7" * 200)
_RETRIES = (
    b"0",
    b"1500",
    b"01500",  # leading zeros are digits too
    b"600000",
    b"18446744073709551615",  # 2**64 - 1
    b"18446744073709551616",  # 2**64
    b"99999999999999999999999",
    b"-1",
    b"+5",
    b"1.5",
    b"",
    b" 7",
    "١٢".encode(),
    b"1e3",
    b"12a",
)
_OTHER_NAMES = (b"foo", b"Data", b"data ", b"dat", b"ID", b"\xef\xbb\xbfdata", b"retry ", b"event\x00")


def _value(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(_TEXT_VALUES)
    if roll < 0.9:
        return rng.choice(_TEXT_VALUES[:1]) + rng.choice(_BROKEN_UTF8)
    if roll < 0.97:
        return rng.choice(_BROKEN_UTF8)
    return b"y" * rng.choice((3000, 20000))


def _field(rng: random.Random, name: bytes, value: bytes) -> bytes:
    # With no colon the whole line is the name and the value is empty; else 0, 1 or 2 spaces after it.
    if not value and rng.random() < 0.3:
        return name
    return name + b":" + b" " * rng.choice((0, 1, 1, 1, 2)) + value


def _line(rng: random.Random) -> bytes:
    kind = rng.choices(
        ("data", "event", "id", "retry", "comment", "other", "blank"), (40, 9, 12, 12, 8, 8, 11)
    )[0]
    if kind == "data":
        return _field(rng, b"data", _value(rng))
    if kind == "event":
        return _field(rng, b"event", rng.choice(_TYPES))
    if kind == "id":
        return _field(rng, b"id", rng.choice(_IDS))
    if kind == "retry":
        return _field(rng, b"retry", rng.choice(_RETRIES))
    if kind == "comment":
        return b":" + rng.choice((b"", b" keep-alive", b"data: not data"))
    if kind == "other":
        return _field(rng, rng.choice(_OTHER_NAMES), rng.choice(_TEXT_VALUES))
    return b""


def _random_stream(rng: random.Random) -> bytes:
    parts: list[bytes] = []
    if rng.random() < 0.3:
        parts.append(_BOM)
        if rng.random() < 0.5:
            parts.append(rng.choice(_LINE_ENDS))
        if rng.random() < 0.1:
            parts.append(_BOM)  # only one BOM is stripped: the second starts the first line's name
    elif rng.random() < 0.05:
        parts.append(_BOM[:2])  # not a BOM: two bytes of broken UTF-8 at the start of the first line
    blocks = rng.randint(1, 5)
    for block in range(blocks):
        for _ in range(rng.randint(1, 4)):
            parts.append(_line(rng) + rng.choice(_LINE_ENDS))
        last = block == blocks - 1
        if not last or rng.random() < 0.7:
            parts.append(rng.choice(_LINE_ENDS))  # the blank line that dispatches
        elif rng.random() < 0.4:
            parts.append(_line(rng) or b"data: unterminated")  # a last line without its line end
    return b"".join(parts)


def _chunked(rng: random.Random, stream: bytes) -> tuple[tuple[bytes, ...], tuple[float, ...]]:
    cuts = {position for position in range(1, len(stream)) if rng.random() < 3 / max(len(stream), 1)}
    # A chunk boundary right after a CR: the browser must end the line at once and skip a following LF.
    cuts.update(
        position + 1
        for position in range(len(stream) - 1)
        if stream[position] == 0x0D and stream[position + 1] == 0x0A and rng.random() < 0.5
    )
    if stream.startswith(_BOM) and rng.random() < 0.3:
        cuts.add(rng.randint(1, 3))
    edges = [0, *sorted(cut for cut in cuts if 0 < cut < len(stream)), len(stream)]
    chunks = tuple(stream[start:end] for start, end in itertools.pairwise(edges))
    # Pauses make the chunk boundaries real: the browser reads each chunk before the next one is sent.
    pauses = tuple(
        max(rng.choice((0.0, 0.002, 0.005, 0.01, 0.02)), 0.03 if chunk.endswith(b"\r") else 0.0)
        for chunk in chunks
    )
    return chunks, pauses


def generate(seed: int, count: int) -> list[Case]:
    """``count`` streams and their chunkings, the same for the same seed."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        chunks, pauses = _chunked(rng, _random_stream(rng))
        cases.append(Case(index, chunks, pauses))
    return cases


# --- what the parser says ----------------------------------------------------------------------------------


def expect(chunks: Iterable[bytes]) -> Expected:
    parser = EventParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return Expected(
        tuple((event.event, event.data, event.id) for event in events),
        parser.last_event_id,
        DEFAULT_RECONNECT_MS if parser.retry is None else parser.retry,
    )


def _mismatches(expected: Expected, observed: Observed, *, late_ok: bool = False) -> list[str]:
    """What differs; with ``late_ok``, a reconnection later than the retry in force (or none yet) does not."""
    found = []
    if expected.events != observed.events:
        found.append(f"events: parser {list(expected.events)!r}, Chromium {list(observed.events)!r}")
    retry = expected.retry_ms
    if retry <= DEFAULT_RECONNECT_MS:
        if observed.delay_ms is None:
            if not late_ok:
                found.append(f"reconnection: parser after {retry} ms, Chromium none within {GIVE_UP_MS} ms")
        elif not retry - EARLY_MS <= observed.delay_ms <= (float("inf") if late_ok else retry + LATE_MS):
            found.append(f"reconnection: parser after {retry} ms, Chromium after {observed.delay_ms:.0f} ms")
    elif retry > GIVE_UP_MS and observed.delay_ms is not None:
        found.append(f"reconnection: parser after {retry} ms, Chromium after {observed.delay_ms:.0f} ms")
    if observed.reconnected:
        # No header for an empty last event ID. HTTP carries no leading or trailing space or tab in a field
        # value (RFC 9110 5.5), so the header is compared with the id trimmed the same way.
        header = expected.last_event_id.strip(" \t") if expected.last_event_id else None
        if header != observed.last_event_id:
            found.append(f"Last-Event-ID: parser {header!r}, Chromium {observed.last_event_id!r}")
    return found


# --- the deviations, by rule -----------------------------------------------------------------------------


def _lines(stream: bytes) -> list[bytes]:
    """The stream's lines with their line ends (CR, LF, CRLF), after one leading BOM."""
    return (stream[3:] if stream.startswith(_BOM) else stream).splitlines(keepends=True)


def _field_of(line: bytes) -> tuple[bytes, bytes]:
    content = line.rstrip(b"\r\n")
    name, _colon, value = content.partition(b":")
    return name, value[1:] if value.startswith(b" ") else value


def _is_empty_retry(line: bytes) -> bool:
    name, value = _field_of(line)
    return name == b"retry" and not value


def _is_huge_retry(line: bytes) -> bool:
    name, value = _field_of(line)
    return name == b"retry" and value.isdigit() and int(value) >= 2**64


def _bom_then_line_end(stream: bytes) -> bool:
    return stream.startswith(_BOM) and stream[3:4] in (b"\r", b"\n") and stream[3:5] != b"\r\n"


def _triggered(stream: bytes) -> set[Deviation]:
    lines = _lines(stream)
    found = set()
    if _bom_then_line_end(stream):
        found.add(Deviation.BOM_THEN_LINE_END)
    if any(map(_is_empty_retry, lines)):
        found.add(Deviation.EMPTY_RETRY_RESETS)
    if any(map(_is_huge_retry, lines)):
        found.add(Deviation.HUGE_RETRY_IGNORED)
    return found


def _as_chromium_reads(stream: bytes, deviations: frozenset[Deviation]) -> bytes:
    """The stream rewritten so that a spec-exact parser does what Chromium does with it."""
    lines = _lines(stream)
    if Deviation.BOM_THEN_LINE_END in deviations:
        # Chromium loses the line after the one the BOM's line end closes.
        lines = lines[:1] + lines[2:]
    rewritten = []
    for line in lines:
        end = line[len(line.rstrip(b"\r\n")) :]
        if Deviation.EMPTY_RETRY_RESETS in deviations and _is_empty_retry(line):
            line = b"retry:%d" % DEFAULT_RECONNECT_MS + end
        elif Deviation.HUGE_RETRY_IGNORED in deviations and _is_huge_retry(line):
            line = b":" + line
        rewritten.append(line)
    return (_BOM if stream.startswith(_BOM) else b"") + b"".join(rewritten)


def judge(case: Case, observed: Observed, *, late_ok: bool = False) -> Outcome:
    """Compare Chromium's ``observed`` behaviour with the parser's; explain a difference by rule if it can.

    A difference is explained only by deviations whose trigger the stream holds (``_triggered``), and only
    if the parser, given the stream rewritten the way Chromium misreads it (``_as_chromium_reads``), does
    exactly what Chromium did. ``late_ok`` lets a late reconnection pass (see ``compare``).
    """
    expected = expect(case.chunks)
    mismatches = tuple(_mismatches(expected, observed, late_ok=late_ok))
    if not mismatches:
        return Outcome(case, observed, expected, Verdict.IDENTICAL)
    triggered = sorted(_triggered(case.stream), key=lambda deviation: deviation.name)
    for size in range(1, len(triggered) + 1):
        for subset in itertools.combinations(triggered, size):
            deviations = frozenset(subset)
            chromium_reading = expect([_as_chromium_reads(case.stream, deviations)])
            if not _mismatches(chromium_reading, observed, late_ok=late_ok):
                return Outcome(case, observed, expected, Verdict.EXPLAINED, deviations, mismatches)
    return Outcome(case, observed, expected, Verdict.DIFFERENT, frozenset(), mismatches)


def compare(
    cases: Sequence[Case], *, chromium: str, profile: pathlib.Path, timeout: float = 120.0
) -> list[Outcome]:
    """Serve ``cases`` to Chromium and judge each one.

    A machine under load delays timers, never advances them: a stream whose only difference is a
    reconnection later than the retry in force (or none before the page gave up) is served once more, in a
    second page with just those streams, and judged on that run. A real difference in the reconnection
    time shows in both runs, an early reconnection or any difference in the events already in the first.
    """
    observed = run_chromium(cases, chromium=chromium, profile=profile / "first", timeout=timeout)
    outcomes = [judge(case, seen) for case, seen in zip(cases, observed, strict=True)]
    late = [
        index
        for index, outcome in enumerate(outcomes)
        if outcome.verdict is Verdict.DIFFERENT
        and judge(outcome.case, outcome.observed, late_ok=True).verdict is not Verdict.DIFFERENT
    ]
    if late:
        again = run_chromium(
            [cases[index] for index in late], chromium=chromium, profile=profile / "again", timeout=timeout
        )
        for index, seen in zip(late, again, strict=True):
            outcomes[index] = replace(judge(cases[index], seen), remeasured=True)
    return outcomes


def early_dispatches(outcome: Outcome, *, after_cr: bool = False) -> tuple[int, int]:
    """``(early, due)``: of the events the parser completes before the last chunk (``due``), how many
    Chromium dispatched before the next chunk was even written (``early``). Proof that it saw the chunk
    boundaries; with ``after_cr``, only chunks that end in CR followed by one starting with LF, proof that
    it ended the line at the CR at once instead of waiting for the LF."""
    chunks, times = outcome.case.chunks, outcome.observed.chunk_times_ms
    if outcome.verdict is not Verdict.IDENTICAL or len(times) != len(chunks):
        return 0, 0
    parser = EventParser()
    completed_by = [index for index, chunk in enumerate(chunks) for _ in parser.feed(chunk)]
    early = due = 0
    for index, dispatched in zip(completed_by, outcome.observed.event_times_ms, strict=True):
        if index + 1 < len(chunks) and (
            not after_cr or (chunks[index].endswith(b"\r") and chunks[index + 1].startswith(b"\n"))
        ):
            due += 1
            early += dispatched < times[index + 1]
    return early, due


def summarise(outcomes: Sequence[Outcome]) -> str:
    counts = {verdict: sum(1 for o in outcomes if o.verdict is verdict) for verdict in Verdict}
    by_deviation = {
        deviation: sum(1 for o in outcomes if deviation in o.deviations) for deviation in Deviation
    }
    lines = [
        f"{len(outcomes)} streams: {counts[Verdict.IDENTICAL]} identical, "
        f"{counts[Verdict.EXPLAINED]} explained by a documented Chromium deviation, "
        f"{counts[Verdict.DIFFERENT]} different "
        f"({sum(outcome.remeasured for outcome in outcomes)} reconnection delays measured twice)"
    ]
    lines += [f"  {deviation.name}: {count}" for deviation, count in by_deviation.items()]
    boundaries = [early_dispatches(outcome) for outcome in outcomes]
    early, due = sum(pair[0] for pair in boundaries), sum(pair[1] for pair in boundaries)
    boundaries = [early_dispatches(outcome, after_cr=True) for outcome in outcomes]
    early_cr, due_cr = sum(pair[0] for pair in boundaries), sum(pair[1] for pair in boundaries)
    lines.append(
        f"  Chromium dispatched {early} of {due} events before the next chunk was written "
        f"({early_cr} of {due_cr} where that chunk ended in CR and the next began with LF)"
    )
    for outcome in outcomes:
        if outcome.verdict is Verdict.DIFFERENT:
            lines.append(f"stream {outcome.case.index}: chunks {list(outcome.case.chunks)!r}")
            lines += [f"    {mismatch}" for mismatch in outcome.mismatches]
    return "\n".join(lines)


# --- serving the streams to Chromium ---------------------------------------------------------------------

PAGE = b"""<!doctype html><meta charset="utf-8"><title>differential</title><pre id="out">running</pre>
<script>
(async () => {
  const config = await (await fetch("/config")).json();
  const streams = config.streams;
  const results = streams.map(() => ({events: [], times: [], errors: 0}));
  const perPort = new Map();
  const queue = streams.map((_, i) => i);
  let active = 0, finished = 0;
  function report() {
    document.getElementById("out").textContent = "done";
    fetch("/result", {method: "POST", body: JSON.stringify(results)});
  }
  function finish(i, source) {
    if (results[i].finished) return;
    results[i].finished = true;
    source.close();
    if (++finished === streams.length) report();
  }
  function start(i) {
    const stream = streams[i];
    active += 1;
    perPort.set(stream.port, (perPort.get(stream.port) || 0) + 1);
    const source = new EventSource(stream.url);
    const record = (event) => {
      results[i].events.push([event.type, event.data, event.lastEventId]);
      results[i].times.push(performance.timeOrigin + performance.now());
    };
    for (const type of stream.types) source.addEventListener(type, record);
    let ended = false;
    source.onerror = () => {
      results[i].errors += 1;
      if (!ended) {
        // The end of the stream: the connection is free again; wait for the reconnection, not forever.
        ended = true;
        active -= 1;
        perPort.set(stream.port, perPort.get(stream.port) - 1);
        setTimeout(() => finish(i, source), config.giveUpMs);
        pump();
      }
      if (source.readyState === EventSource.CLOSED) finish(i, source);
    };
  }
  function pump() {
    for (let k = 0; k < queue.length && active < config.maxActive; ) {
      const i = queue[k];
      if ((perPort.get(streams[i].port) || 0) >= config.perPort) { k += 1; continue; }
      queue.splice(k, 1);
      start(i);
    }
  }
  pump();
})();
</script>
"""


@dataclass
class _Stream:
    case: Case
    served: bool = False
    closed_at: float | None = None
    reconnected_at: float | None = None
    last_event_id: bytes | None = None
    reconnected: bool = False
    chunk_times_ms: list[float] = field(default_factory=list)


@dataclass
class _Run:
    streams: list[_Stream]
    ports: list[int] = field(default_factory=list)
    result: asyncio.Future[bytes] | None = None
    errors: list[str] = field(default_factory=list)


class _Unused(Exception):
    """Chromium opened a connection ahead of need (a preconnect) and closed it unused."""


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, bytes, dict[bytes, bytes]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            raise _Unused() from None
        raise
    request_line, *header_lines = head[:-4].split(b"\r\n")
    method, target, _version = request_line.split(b" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip(b" \t")  # RFC 9110 5.5: no leading/trailing OWS
    return method, target, headers


def _types(stream: bytes) -> list[str]:
    """Every event type the stream could make a browser dispatch: each line's value after its colon."""
    types = {"message"}
    for line in stream.replace(b"\r", b"\n").split(b"\n"):
        value = line.partition(b":")[2]
        types.update(value.decode("utf-8", "replace") for value in (value, value[1:]))
    types.discard("")
    return sorted(types)


async def _page(run: _Run, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        method, target, headers = await _read_head(reader)
        if method == b"POST" and target == b"/result":
            body = await reader.readexactly(int(headers[b"content-length"]))
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            assert run.result is not None
            if not run.result.done():
                run.result.set_result(body)
        else:
            if target == b"/":
                body, kind = PAGE, b"text/html; charset=utf-8"
            elif target == b"/config":
                config = {
                    "streams": [
                        {
                            "url": f"http://127.0.0.1:{run.ports[index % len(run.ports)]}/s/{index}",
                            "port": run.ports[index % len(run.ports)],
                            "types": _types(stream.case.stream),
                        }
                        for index, stream in enumerate(run.streams)
                    ],
                    "giveUpMs": GIVE_UP_MS,
                    "perPort": STREAMS_PER_PORT,
                    "maxActive": MAX_ACTIVE,
                }
                body, kind = json.dumps(config).encode(), b"application/json"
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (kind, len(body), body)
            )
        await writer.drain()
    except _Unused:
        pass
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        run.errors.append(f"page server: {error!r}")
    finally:
        writer.close()


async def _serve_stream(run: _Run, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        method, target, headers = await _read_head(reader)
        stream = run.streams[int(target.rpartition(b"/")[2])]
        if stream.served:
            # The automatic reconnection (or its CORS preflight): note when, and stop it with 204.
            if stream.reconnected_at is None:
                stream.reconnected_at = time.monotonic()
            if method == b"GET":
                stream.reconnected = True
                stream.last_event_id = headers.get(b"last-event-id")
            allow = headers.get(b"access-control-request-headers", b"")
            writer.write(
                b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n"
                b"Access-Control-Allow-Headers: %s\r\nConnection: close\r\n\r\n" % allow
            )
            await writer.drain()
            return
        stream.served = True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            b"Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
        )
        for chunk, pause in zip(stream.case.chunks, stream.case.pauses, strict=True):
            writer.write(chunk)
            await writer.drain()
            stream.chunk_times_ms.append(time.time() * 1000)
            if pause:
                await asyncio.sleep(pause)
        writer.close()
        stream.closed_at = time.monotonic()
        await writer.wait_closed()
    except _Unused:
        pass
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
        run.errors.append(f"stream server: {error!r}")
    finally:
        writer.close()


async def _run(cases: Sequence[Case], chromium: str, profile: pathlib.Path, timeout: float) -> list[Observed]:
    run = _Run([_Stream(case) for case in cases])
    run.result = asyncio.get_running_loop().create_future()
    page = await asyncio.start_server(lambda r, w: _page(run, r, w), "127.0.0.1", 0)
    listeners = [
        await asyncio.start_server(lambda r, w: _serve_stream(run, r, w), "127.0.0.1", 0)
        for _ in range(max(1, -(-len(cases) // STREAMS_PER_PORT)))
    ]
    run.ports = [server.sockets[0].getsockname()[1] for server in listeners]
    browser = await asyncio.create_subprocess_exec(
        *chromium_args(chromium, profile, f"http://127.0.0.1:{page.sockets[0].getsockname()[1]}/"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        body = await asyncio.wait_for(run.result, timeout)
    except TimeoutError:
        served = sum(stream.served for stream in run.streams)
        raise RuntimeError(
            f"the Chromium page did not report within {timeout} s ({served} of {len(cases)} streams served"
            + "".join(f"; {error}" for error in run.errors)
            + ")"
        ) from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            browser.kill()
        await browser.wait()
        for server in (page, *listeners):
            server.close()
    if run.errors:
        raise RuntimeError("; ".join(run.errors))
    reported = json.loads(body)
    observed = []
    for stream, result in zip(run.streams, reported, strict=True):
        delay = None
        if stream.reconnected_at is not None and stream.closed_at is not None:
            delay = (stream.reconnected_at - stream.closed_at) * 1000
        header = stream.last_event_id
        observed.append(
            Observed(
                tuple(tuple(event) for event in result["events"]),
                stream.reconnected,
                None if header is None else header.decode("utf-8", "surrogateescape"),
                delay,
                tuple(result["times"]),
                tuple(stream.chunk_times_ms),
            )
        )
    return observed


def run_chromium(
    cases: Sequence[Case], *, chromium: str, profile: pathlib.Path, timeout: float = 120.0
) -> list[Observed]:
    """Serve ``cases`` to one headless Chromium page and return what its ``EventSource`` did with each."""
    os.makedirs(profile, exist_ok=True)
    return asyncio.run(_run(cases, chromium, profile, timeout))
