"""Replay layer: fault injection (re-chunking, latency and jitter, error statuses, mid-stream errors, breaks).

A :class:`Faults` value says what to do wrong; :func:`inject` applies it to a planned response: the body as
timed pieces ``(t, bytes)`` plus the byte offsets where its events end. Everything here is pure (no
sockets): the server then sends the pieces as they come out, one HTTP chunk each, at their times.

Order of application (each step sees the result of the one before):
  1. ``status``: the whole response becomes the API's error for that status (see :func:`error_reply_body`);
  2. ``error_after`` N: after N events the stream ends with the API's raw mid-stream JSON error;
     ``truncate_after`` N: after N events the stream ends cleanly (final chunk sent) before any event that
     carries a ``finishReason``, so the answer is silently short;
  3. ``disconnect_after`` N events / ``disconnect_after_bytes`` N: the body is cut there and the
     connection is closed abruptly (TCP reset, no final chunk);
  4. ``rechunk``: pieces are re-split (``1`` or any size in bytes, or ``"random"`` sizes from ``seed``);
  5. ``latency`` before the first byte, ``event_latency`` before each later event, each plus a random
     ``0..jitter`` (seeded).

Every delay is bounded where it enters: each time field is at most ``MAX_DELAY`` (one day, the fixture
layer's bound for every replayed delay), and so is the sum of the delays one response adds up to; beyond
that ``SSEUsageError`` names the field (a per-request ``x-sse-replay-faults`` header then gets a 400).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from ..fixture._model import End
from ..fixture._pace import MAX_DELAY
from ..gemini._wire import error_body
from ..parser._exceptions import SSEUsageError
from ._convert import Planned

__all__ = [
    "FAULTS_HEADER",
    "Faults",
    "error_reply_body",
    "inject",
    "parse_faults",
    "retry_after_header",
    "retry_delay_text",
]

FAULTS_HEADER = "x-sse-replay-faults"  # per-request faults, e.g. "status=503" or "rechunk=1, seed=4"

# The API's own texts for each status (from real responses; 429 also carries Help/QuotaFailure/RetryInfo).
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential."
        ),
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: (
        "RESOURCE_EXHAUSTED",
        (
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
        ),
    ),
    500: (
        "INTERNAL",
        (
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ),
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
_RANDOM_MAX = 32  # largest piece of "random" re-chunking: small enough to split every Gemini event


@dataclass(frozen=True)
class Faults:
    """What to break in a replayed response (all off by default). Times are seconds, counts are events.

    - ``status``: answer with this HTTP status and the API's error body instead (429, 500, 503, ...);
      ``retry_after``: seconds the 429 asks the client to wait. ``RetryInfo.retryDelay`` carries it exactly
      (``"0.500s"``, protobuf Duration style); the ``Retry-After`` header, whole seconds in HTTP, carries
      it rounded up (``0.5`` -> ``Retry-After: 1``), so a client reading either one waits long enough.
    - ``truncate_after``: after this many events end the stream cleanly, never sending a ``finishReason``.
    - ``error_after``: after this many events, send the API's raw mid-stream error (``error_code``) and end.
    - ``disconnect_after`` events / ``disconnect_after_bytes`` bytes: then close abruptly (TCP reset).
    - ``rechunk``: piece size in bytes (``1``: byte by byte) or ``"random"`` (1..32 bytes, from ``seed``).
    - ``latency`` before the first byte; ``event_latency`` before each later event; ``jitter`` adds a
      random ``0..jitter`` to each of these delays (from ``seed``).

    Times (``latency``, ``event_latency``, ``jitter``, ``retry_after``) are 0..``MAX_DELAY`` seconds (one
    day); anything else, ``inf`` and NaN included, raises ``SSEUsageError`` naming the field.
    """

    status: int | None = None
    retry_after: float = 7
    error_after: int | None = None
    truncate_after: int | None = None
    error_code: int = 503
    disconnect_after: int | None = None
    disconnect_after_bytes: int | None = None
    rechunk: int | str | None = None
    latency: float = 0.0
    event_latency: float = 0.0
    jitter: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("retry_after", "latency", "event_latency", "jitter"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= MAX_DELAY  # NaN and inf too
            ):
                raise SSEUsageError(
                    f"fault {name} must be >= 0 seconds and at most {MAX_DELAY:g} (one day), got {value!r}"
                )
        for name in ("error_after", "truncate_after", "disconnect_after", "disconnect_after_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise SSEUsageError(f"fault {name} must be a whole number >= 0, got {value!r}")
        for name in ("status", "error_code"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 400 <= value <= 599):
                raise SSEUsageError(f"fault {name} must be an HTTP error status (400..599), got {value!r}")
        if self.rechunk not in (None, "random") and (not isinstance(self.rechunk, int) or self.rechunk < 1):
            raise SSEUsageError(f"fault rechunk must be a size >= 1 or 'random', got {self.rechunk!r}")

    @cached_property  # a frozen instance: worked out once (a server asks its default faults per request)
    def active(self) -> bool:
        """True when any fault is set."""
        return (
            self.status is not None
            or self.error_after is not None
            or self.truncate_after is not None
            or self.disconnect_after is not None
            or self.disconnect_after_bytes is not None
            or self.rechunk is not None
            or self.latency > 0
            or self.event_latency > 0
            or self.jitter > 0
        )


_INT_FIELDS = {
    "status",
    "error_after",
    "truncate_after",
    "error_code",
    "disconnect_after",
    "disconnect_after_bytes",
    "seed",
}
_FLOAT_FIELDS = {"latency", "event_latency", "jitter", "retry_after"}


def parse_faults(spec: str) -> Faults:
    """Faults from ``name=value`` pairs separated by ``,`` or ``;`` (the ``x-sse-replay-faults`` header).

    Names are the :class:`Faults` fields, with ``-`` or ``_``: ``status=429, retry-after=2, rechunk=1``.
    """
    values: dict[str, object] = {}
    for item in spec.replace(";", ",").split(","):
        if not item.strip():
            continue
        name, sep, raw = item.partition("=")
        name, raw = name.strip().replace("-", "_"), raw.strip()
        if not sep or not raw:
            raise SSEUsageError(f"fault {item.strip()!r}: expected name=value")
        try:
            if name in _INT_FIELDS:
                values[name] = int(raw)
            elif name in _FLOAT_FIELDS:
                number = float(raw)
                values[name] = int(number) if name == "retry_after" and number.is_integer() else number
            elif name == "rechunk":
                values[name] = "random" if raw == "random" else int(raw)
            else:
                known = ", ".join(sorted(f.name for f in dataclasses.fields(Faults)))
                raise SSEUsageError(f"unknown fault {name!r} (known: {known})")
        except ValueError:
            raise SSEUsageError(f"fault {name}: {raw!r} is not a number") from None
    return Faults(**values)  # type: ignore[arg-type]


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value for a wait of ``seconds``: HTTP's delta-seconds are whole, so round up."""
    return str(math.ceil(seconds))


def retry_delay_text(seconds: float) -> str:
    """``RetryInfo.retryDelay`` as the API writes it (protobuf Duration JSON): ``"7s"``, ``"0.500s"``."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    for digits in (3, 6, 9):
        text = f"{seconds:.{digits}f}"
        if float(text) == round(seconds, 9):
            return text + "s"
    return f"{seconds:.9f}s"


def error_reply_body(code: int, retry_after: float = 7) -> bytes:
    """The API's pretty-printed error body for status ``code`` (a 429 carries RetryInfo ``retry_after``)."""
    status, message = _ERRORS.get(code, ("UNKNOWN", "Unknown error."))
    details = None
    if code == 429:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": _QUOTA_METRIC,
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": retry_delay_text(retry_after),
            },
        ]
    return error_body(code, status, message, details)


Pieces = list[tuple[float, bytes]]


def _cut(pieces: Sequence[tuple[float, bytes]], offset: int) -> Pieces:
    """The pieces holding the first ``offset`` body bytes (the last one split if needed)."""
    out: Pieces = []
    pos = 0
    for t, data in pieces:
        if pos >= offset:
            break
        take = data[: offset - pos]
        out.append((t, take))
        pos += len(take)
    return out


def _resplit(pieces: Pieces, faults: Faults, rng: random.Random) -> Pieces:
    out: Pieces = []
    for t, data in pieces:
        i = 0
        while i < len(data):
            size = rng.randint(1, _RANDOM_MAX) if faults.rechunk == "random" else int(faults.rechunk or 1)
            out.append((t, data[i : i + size]))
            i += size
    return out


def _delay(pieces: Pieces, event_ends: list[int], faults: Faults, rng: random.Random) -> Pieces:
    """Shift each piece by the delays of all events that start at or before it."""
    starts = [0] + [end for end in event_ends if end > 0]
    shifts, total = [], 0.0
    for k in range(len(starts)):
        total += (faults.latency if k == 0 else faults.event_latency) + rng.uniform(0, faults.jitter)
        shifts.append(total)
    if total > MAX_DELAY:
        raise SSEUsageError(
            f"faults latency={faults.latency:g}, event_latency={faults.event_latency:g} and "
            f"jitter={faults.jitter:g} add up to {total:g} s over {len(starts)} events: beyond the "
            f"{MAX_DELAY:g} s (one day) a replayed delay may take"
        )
    out: Pieces = []
    pos, k = 0, 0
    for t, data in pieces:
        while k + 1 < len(starts) and starts[k + 1] <= pos:
            k += 1
        out.append((t + shifts[k], data))
        pos += len(data)
    return out


def _truncation_point(ends: list[int], count: int, finish_at: int | None) -> int:
    """Body offset after ``count`` events, moved back before the first event that carries a finishReason
    (a truncated answer must not look finished)."""
    n = min(count, len(ends))
    if finish_at is not None:
        n = min(n, bisect.bisect_left(ends, finish_at))  # the index of the event holding the finishReason
    return ends[n - 1] if n else 0


def inject(planned: Planned, faults: Faults, error_event: Callable[[bytes], bytes] | None = None) -> Planned:
    """Apply steps 2..5 (all but ``status``) to a planned body (its pieces a list, its event ends known);
    returns the body as faulted. ``error_event`` turns the API's raw mid-stream error into what this
    stream sends instead (the compatibility stream's error event); None: sent raw, as the Gemini API does."""
    rng = random.Random(faults.seed)
    pieces: Sequence[tuple[float, bytes]] = planned.pieces
    ends = sorted(planned.event_ends or ())
    end = planned.end
    finish_at = planned.finish_at
    error_end: int | None = None  # the appended raw error's end in ``ends``: not an event of the stream
    if faults.error_after is not None:
        offset = ends[faults.error_after - 1] if 0 < faults.error_after <= len(ends) else 0
        if faults.error_after > len(ends):
            offset = sum(len(d) for _, d in pieces)
        cut = _cut(pieces, offset)
        t = cut[-1][0] if cut else (pieces[0][0] if pieces else 0.0)
        error = error_reply_body(faults.error_code)
        if error_event is not None:
            error = error_event(error)
        pieces = [*cut, (t, error)]
        error_end = offset + len(error)
        ends = [e for e in ends if e <= offset] + [error_end]
        finish_at = finish_at if finish_at is not None and finish_at <= offset else None
        end = End.COMPLETE
    if faults.truncate_after is not None:
        offset = _truncation_point(ends, faults.truncate_after, finish_at)
        pieces = _cut(pieces, offset)
        ends = [e for e in ends if e <= offset]
        finish_at = None  # cut before the event that carries it
        end = End.COMPLETE
    cut_at: int | None = None
    if faults.disconnect_after is not None:
        n = faults.disconnect_after
        cut_at = ends[n - 1] if 0 < n <= len(ends) else (0 if n == 0 else None)
    if faults.disconnect_after_bytes is not None:
        cut_at = min(x for x in (cut_at, faults.disconnect_after_bytes) if x is not None)
    if cut_at is not None:
        pieces = _cut(pieces, cut_at)
        ends = [e for e in ends if e <= cut_at]
        finish_at = finish_at if finish_at is not None and finish_at <= cut_at else None
        end = End.RESET
    out = list(pieces)
    if faults.rechunk is not None:
        out = _resplit(out, faults, rng)
    if faults.latency or faults.event_latency or faults.jitter:
        out = _delay(out, ends, faults, rng)
    return Planned(out, [e for e in ends if e != error_end], finish_at, end)
