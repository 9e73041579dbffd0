"""Fixture layer: statistics of a fixture's streams (events, bytes, timing, token rate), per exchange.

What each number means (all times are measured from the moment the request was sent, ``Chunk.t``):

- ``events``: SSE events the parser dispatches from the body; for a Gemini JSON-array or JSON body (no
  ``alt=sse``), the Gemini responses decoded from it. ``bytes``: the body length.
- An event *arrives* at the ``t`` of the chunk that completes it, as a client would see it.
- ``duration_s``: the last chunk's ``t`` (request sent -> last body byte).
- ``ttfb_ms``: time to first byte, the head's time (``head_t``) if recorded, else the first chunk's.
- ``ttft_ms``: time to first token, the arrival of the first event with generated content: for a Gemini
  body (decoded by the Gemini layer) the first response with non-empty text, thought text or a function
  call; for any other stream the first event with non-empty ``data``.
- ``gaps_ms``: the gaps between consecutive event arrivals, as p50/p90/p99/max (percentiles interpolate
  linearly between the closest ranks, as numpy's default does); null with fewer than two events.
- ``tokens``: ``candidatesTokenCount + thoughtsTokenCount`` of the last Gemini response's
  ``usageMetadata`` (every event carries running totals; the last counts). ``tokens_per_s``: ``tokens``
  over the generation time, from the request being sent to the last response's arrival (so it is the rate
  a caller sees, time to first token included).

A fixture without recorded times (a plain body, ``curl`` output) has every time-based number ``None``
("unknown"): nothing is made up. With several exchanges, ``FixtureStats`` sums events, bytes, tokens and
durations, pools the gaps, and reports the first exchange's ``ttfb_ms``/``ttft_ms``; ``exchanges`` holds
the numbers of each one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._fixture_model import Exchange, Fixture
from ._gemini_errors import GeminiAPIError, GeminiError
from ._gemini_stream import FORMAT_SSE, ResponseDecoder
from ._gemini_types import GenerateContentResponse
from ._sse_parser import EventParser

__all__ = ["ExchangeStats", "FixtureStats", "exchange_stats", "fixture_stats", "percentile", "render_stats"]

_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0))


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``, interpolating linearly between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _gap_summary(gaps_ms: list[float]) -> dict[str, float | None]:
    if not gaps_ms:
        return {name: None for name, _ in _PERCENTILES}
    return {name: round(percentile(gaps_ms, p), 3) for name, p in _PERCENTILES}


@dataclass
class ExchangeStats:
    """The numbers of one exchange (see the module docstring for their definitions).

    ``gaps_ms`` lists every gap (``to_dict`` summarises them). ``event_times`` (arrival in seconds, one per
    event) and ``token_times`` (``(arrival, running tokens)`` per Gemini response) are the timelines the
    plot draws; their times are ``None`` when the exchange is untimed.
    """

    index: int
    method: str | None
    path: str | None
    status: int
    end: str
    format: str  # "sse", "json-array", "json" or "empty"
    gemini: bool  # the body decoded as Gemini responses
    timed: bool
    events: int
    bytes: int
    duration_s: float | None
    ttfb_ms: float | None
    ttft_ms: float | None
    gaps_ms: list[float]
    tokens: int | None
    generation_s: float | None
    error: str | None
    event_times: list[float | None] = field(default_factory=list)
    token_times: list[tuple[float | None, int]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float | None:
        """``tokens`` over ``generation_s`` (request sent -> last response); None when either is unknown."""
        if self.tokens is None or not self.generation_s:
            return None
        return self.tokens / self.generation_s

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the numbers, without the timelines."""
        return {
            "index": self.index,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "end": self.end,
            "format": self.format,
            "gemini": self.gemini,
            "timed": self.timed,
            "events": self.events,
            "bytes": self.bytes,
            "duration_s": _round(self.duration_s, 6),
            "ttfb_ms": _round(self.ttfb_ms, 3),
            "ttft_ms": _round(self.ttft_ms, 3),
            "gaps_ms": _gap_summary(self.gaps_ms),
            "tokens": self.tokens,
            "tokens_per_s": _round(self.tokens_per_s, 2),
            "error": self.error,
        }


@dataclass
class FixtureStats:
    """The numbers of a whole fixture: totals over its exchanges, and each exchange's own."""

    source: str | None
    exchanges: list[ExchangeStats]

    @property
    def timed(self) -> bool:
        """True when every exchange carries recorded times."""
        return bool(self.exchanges) and all(e.timed for e in self.exchanges)

    def to_dict(self) -> dict[str, Any]:
        """``{"events", "bytes", "duration_s", "ttfb_ms", "gaps_ms": {"p50", "p90", "p99", "max"},
        "tokens_per_s", ...}`` for the fixture, plus ``"exchanges"``: the same for each exchange."""
        exchanges = self.exchanges
        first = exchanges[0] if exchanges else None
        timed = self.timed
        gaps = [gap for e in exchanges for gap in e.gaps_ms] if timed else []
        token_counts = [e.tokens for e in exchanges if e.tokens is not None]
        tokens = sum(token_counts) if token_counts else None
        generation = [e.generation_s for e in exchanges if e.tokens is not None]
        generation_s = sum(g for g in generation if g is not None) if generation and None not in generation else None
        tokens_per_s = tokens / generation_s if tokens is not None and generation_s else None
        return {
            "source": self.source,
            "exchanges_count": len(exchanges),
            "timed": timed,
            "events": sum(e.events for e in exchanges),
            "bytes": sum(e.bytes for e in exchanges),
            "duration_s": _round(_sum_or_none([e.duration_s for e in exchanges]) if timed else None, 6),
            "ttfb_ms": _round(first.ttfb_ms if first else None, 3),
            "ttft_ms": _round(first.ttft_ms if first else None, 3),
            "gaps_ms": _gap_summary(gaps),
            "tokens": tokens,
            "tokens_per_s": _round(tokens_per_s, 2),
            "errors": sum(1 for e in exchanges if e.error is not None),
            "exchanges": [e.to_dict() for e in exchanges],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _sum_or_none(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def _looks_gemini(response: GenerateContentResponse) -> bool:
    return (
        response.candidates is not None
        or response.prompt_feedback is not None
        or response.usage_metadata is not None
        or response.model_version is not None
    )


def _has_content(response: GenerateContentResponse) -> bool:
    return bool(response.text or response.thoughts or response.function_calls)


def _tokens(response: GenerateContentResponse) -> int | None:
    usage = response.usage_metadata
    if usage is None or (usage.candidates_token_count is None and usage.thoughts_token_count is None):
        return None
    return (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)


def exchange_stats(exchange: Exchange, index: int = 1) -> ExchangeStats:
    """The numbers of one exchange. Raises ``SSEProtocolError`` only for a body the parser refuses
    (a line over ``max_event_size``); a body that is no Gemini stream is simply counted as SSE."""
    timed = exchange.timed
    body_format = _sniff(exchange)
    parser = EventParser()
    decoder: ResponseDecoder | None = ResponseDecoder()
    sse_events: list[tuple[float | None, bool]] = []  # (arrival, has data) per SSE event
    responses: list[tuple[float | None, GenerateContentResponse]] = []
    error: str | None = None
    api_error = False

    def decode(data: bytes | None, t: float | None) -> None:
        nonlocal decoder, error, api_error
        if decoder is None:
            return
        try:
            got = decoder.feed(data) if data is not None else decoder.close()
            responses.extend((t, response) for response in got)
            decoder.raise_error()
        except GeminiAPIError as exc:
            error, api_error, decoder = str(exc), True, None
        except GeminiError as exc:  # no Gemini body, or a broken one: the SSE numbers still stand
            error, decoder = str(exc), None

    t: float | None = None
    for chunk in exchange.chunks:
        t = chunk.t if timed else None
        sse_events.extend((t, bool(event.data)) for event in parser.feed(chunk.data))
        decode(chunk.data, t)
    parser.close()
    decode(None, t)

    # Gemini when the Gemini layer understood the body: it was an API error, or responses came out that
    # carry the API's fields (any JSON object decodes, so a generic stream of JSON events would too).
    gemini = api_error or any(_looks_gemini(response) for _, response in responses)
    if not gemini:
        error = None  # a stream that simply is not Gemini is no error
    if gemini and body_format != FORMAT_SSE:
        event_times = [t for t, _ in responses]  # a JSON body: its responses are its events
    else:
        event_times = [t for t, _ in sse_events]
    if gemini:
        first = [t for t, response in responses if _has_content(response)]
    else:
        first = [t for t, has_data in sse_events if has_data]

    token_times: list[tuple[float | None, int]] = []
    running = 0
    for t, response in responses:
        count = _tokens(response)
        running = count if count is not None else running
        token_times.append((t, running))
    tokens = next((c for c in (_tokens(r) for _, r in reversed(responses)) if c is not None), None)

    ttfb_s = duration_s = generation_s = None
    gaps_ms: list[float] = []
    if timed:
        ttfb_s = exchange.head_t if exchange.head_t is not None else exchange.chunks[0].t
        duration_s = exchange.chunks[-1].t
        arrivals = [t for t in event_times if t is not None]
        gaps_ms = [(b - a) * 1000.0 for a, b in zip(arrivals, arrivals[1:])]
        if responses and tokens is not None:
            generation_s = responses[-1][0]
    first_t = first[0] if timed and first else None
    request = exchange.request
    return ExchangeStats(
        index=index,
        method=request.method if request is not None else None,
        path=request.path if request is not None else None,
        status=exchange.status,
        end=exchange.end,
        format=body_format if exchange.chunks else "empty",
        gemini=gemini,
        timed=timed,
        events=len(event_times),
        bytes=sum(len(chunk.data) for chunk in exchange.chunks),
        duration_s=duration_s,
        ttfb_ms=ttfb_s * 1000.0 if ttfb_s is not None else None,
        ttft_ms=first_t * 1000.0 if first_t is not None else None,
        gaps_ms=gaps_ms,
        tokens=tokens,
        generation_s=generation_s,
        error=error,
        event_times=event_times,
        token_times=token_times,
    )


def _sniff(exchange: Exchange) -> str:
    """The body's format by its first byte, as the Gemini layer detects it."""
    start = exchange.body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"[":
        return "json-array"
    if start == b"{":
        return "json"
    return FORMAT_SSE


def fixture_stats(fixture: Fixture, source: str | None = None) -> FixtureStats:
    """The numbers of every exchange of ``fixture`` (see the module docstring); ``source`` names it in
    the output (default: ``fixture.source``)."""
    exchanges = [exchange_stats(exchange, number) for number, exchange in enumerate(fixture.exchanges, 1)]
    return FixtureStats(source=source if source is not None else fixture.source, exchanges=exchanges)


# ---------------------------------------------------------------------------------------------------------
# The human form (``sse-toolkit stats`` without ``--json``)

_UNKNOWN = "unknown"


def _ms(value: float | None) -> str:
    return _UNKNOWN if value is None else f"{value:.1f} ms"


def _gaps(summary: dict[str, float | None]) -> str:
    if summary["max"] is None:
        return _UNKNOWN
    return " / ".join(f"{summary[name]:.1f}" for name, _ in _PERCENTILES) + " ms"


def render_stats(stats: FixtureStats) -> str:
    """A short aligned table; with several exchanges, one row per exchange follows the totals."""
    data = stats.to_dict()
    untimed = "" if data["timed"] else " (no recorded times)"
    rows: list[tuple[str, str]] = []
    if data["source"]:
        rows.append(("fixture", str(data["source"])))
    if len(stats.exchanges) == 1:
        one = stats.exchanges[0]
        kind = f"{one.format}, Gemini" if one.gemini else one.format
        what = " ".join(x for x in (one.method, one.path) if x)
        rows.append(("response", f"{one.status} {kind}" + (f" for {what}" if what else "") + f", {one.end}"))
    else:
        rows.append(("exchanges", str(len(stats.exchanges))))
    rows += [
        ("events", str(data["events"])),
        ("bytes", str(data["bytes"])),
        ("duration", _UNKNOWN + untimed if data["duration_s"] is None else f"{data['duration_s']:.3f} s"),
        ("first byte", _ms(data["ttfb_ms"])),
        ("first token", _ms(data["ttft_ms"])),
        ("gaps p50/p90/p99/max", _gaps(data["gaps_ms"])),
        ("tokens", _UNKNOWN if data["tokens"] is None else str(data["tokens"])),
        ("tokens/s", _UNKNOWN if data["tokens_per_s"] is None else f"{data['tokens_per_s']:.1f}"),
    ]
    errors = [e for e in stats.exchanges if e.error is not None]
    for e in errors:
        label = "error" if len(stats.exchanges) == 1 else f"error (#{e.index})"
        rows.append((label, " ".join(e.error.split()) if e.error else ""))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if len(stats.exchanges) > 1:
        lines += ["", *_exchange_table(stats.exchanges)]
    return "\n".join(lines)


def _exchange_table(exchanges: list[ExchangeStats]) -> list[str]:
    def num(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    header = ("#", "status", "events", "bytes", "dur s", "ttfb ms", "ttft ms", "p50", "p90", "p99", "max",
              "tok/s", "request")
    table = [header]
    for e in exchanges:
        gaps = _gap_summary(e.gaps_ms)
        table.append((
            str(e.index), str(e.status), str(e.events), str(e.bytes), num(e.duration_s, 3), num(e.ttfb_ms),
            num(e.ttft_ms), num(gaps["p50"]), num(gaps["p90"]), num(gaps["p99"]), num(gaps["max"]),
            num(e.tokens_per_s), " ".join(x for x in (e.method, e.path) if x) or "-",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    # Numbers right-aligned, the request left-aligned (it is last, so it needs no padding).
    return [
        "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1] for row in table
    ]
