"""Replay layer: the request journal and the client-resilience verdict drawn from it (no sockets).

Every request a :class:`~sse_toolkit.ReplayServer` answers is journaled as a :class:`JournalEntry`: when
it came (monotonic and wall clock), what it asked (method, path, model, headers and query with secrets
redacted, body) and what it got (status, events and bytes sent, the script step applied, how it ended,
when the last byte left). :func:`verdict` reads the journal the way a reviewer reads a client's log.

Strategy: requests with the same method, path and body are attempts of one *call*; an attempt that ends
well (a 2xx answer, a stream that reached its ``finishReason``) closes the call, so the next identical
request starts a new one. Gaps are measured from the moment the failed answer's last byte was handed to
the socket to the arrival of the retry, so network time only makes a client look slower, never faster.

Findings (``code``: severity):
  * ``retry-too-soon``: error. A 429 was retried before its wait was over. The wait is ``retryDelay``
    (exact, e.g. ``0.5`` s); ``Retry-After`` is that rounded up to whole seconds, so honouring either passes.
  * ``retried-non-retryable``: error. A 400, 401, 403, 404 (any 4xx but 408/429) was sent again.
  * ``retry-storm``: error. More than ``max_attempts`` (default 5, google-genai's default) attempts of one
    call.
  * ``no-backoff``: error. A 5xx or a broken stream was retried at once (within ``AT_ONCE`` = 0.05 s), or
    over three or more attempts the last gap was not ``GROWTH`` (1.2) times the first: timer noise
    makes equal sleeps differ by milliseconds, exponential backoff doubles.
  * ``gave-up``: warning (error with ``strict=True``). One retryable failure (429, 5xx, a broken stream)
    and the call was never tried again.
  * ``truncated-not-retried``: warning. A stream ended cleanly without ``finishReason`` and was not retried;
    pass ``result_text`` to have the verdict check what the application made of it.
  * ``truncated-answer``: error. With ``result_text``: the last call ended truncated or broken and the
    application returned a shortened answer as if complete.
  * ``wrong-answer``: error. With ``result_text``: it differs from the answer served (e.g. the text of a
    broken attempt glued to the text of its retry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ..parser._http_head import find_header
from ._faults import retry_after_header, retry_delay_text

if TYPE_CHECKING:
    from ..server._loop import ReplayRequest

__all__ = [
    "AT_ONCE",
    "GROWTH",
    "MAX_ATTEMPTS",
    "Ending",
    "Finding",
    "JournalEntry",
    "Outcome",
    "RequestKind",
    "Severity",
    "format_findings",
    "verdict",
]

MAX_ATTEMPTS = 5  # google-genai's default (HttpRetryOptions.attempts, the first call included)
AT_ONCE = 0.05  # seconds: a retry sooner than this after a 5xx is "at once", whatever the policy says
GROWTH = 1.2  # the last wait between 5xx retries must be this many times the first to count as backoff
_SLACK = 0.005  # timer granularity: a client that sleeps exactly retryDelay is never flagged
_NOT_RETRYABLE = frozenset({400, 401, 403, 404, 405, 409, 411, 413, 414, 415, 422})


class _Words(StrEnum):
    """A value set whose values are the words the journal's JSON and reports show."""


class Ending(_Words):
    """How an answer ended, as the journal records it (``JournalEntry.end``): the wire's ``End.COMPLETE``
    and ``End.RESET``, plus what only the replay app can tell."""

    PENDING = "pending"  # still being sent
    COMPLETE = "complete"  # sent whole, final chunk included
    TRUNCATED = "truncated"  # a clean end, but the Gemini stream never reached a finishReason
    RESET = "reset"  # closed abruptly (recorded reset, disconnect step)
    ERROR = "error"  # the raw mid-stream error ended it
    CLIENT_GONE = "client-gone"  # the client closed the connection before the end


class Outcome(_Words):
    """What a request got, as the verdict judges it (``JournalEntry.outcome``)."""

    OK = "ok"
    RATE_LIMITED = "rate-limited"  # a 429
    SERVER_ERROR = "server-error"  # a 5xx or a 408
    CLIENT_ERROR = "client-error"  # any other 4xx
    BROKEN = "broken"  # a stream reset or ended by the raw mid-stream error
    TRUNCATED = "truncated"  # see Ending.TRUNCATED
    CLIENT_GONE = "client-gone"
    PENDING = "pending"


class RequestKind(_Words):
    """Which endpoint a request asked for (``JournalEntry.kind``), and what a recorded request asked (the
    catalog matches requests by it). The three the app answers itself have a Gemini method name."""

    STREAM = "stream"  # :streamGenerateContent
    UNARY = "unary"  # :generateContent
    COUNT = "count"  # :countTokens
    MODELS = "models"  # the model list, or one model
    SSE = "sse"  # a generic SSE path
    OTHER = "other"  # another Gemini method (answered 404)

    @property
    def method(self) -> str:
        """The Gemini method name (``streamGenerateContent`` ...); only STREAM, UNARY and COUNT have one."""
        try:
            return _METHODS[self]
        except KeyError:
            raise ValueError(f"{self!r} names no Gemini method") from None

    @classmethod
    def of_method(cls, method: str) -> RequestKind:
        """The kind of the Gemini method name ``method``; ``OTHER`` for any method the app does not answer."""
        return _KINDS.get(method, cls.OTHER)


_METHODS = {
    RequestKind.STREAM: "streamGenerateContent",
    RequestKind.UNARY: "generateContent",
    RequestKind.COUNT: "countTokens",
}
_KINDS = {method: kind for kind, method in _METHODS.items()}


class Severity(_Words):
    """How bad a :class:`Finding` is: an ``error`` fails ``assert_resilient``, a ``warning`` does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass
class JournalEntry:
    """One request and what it got. ``index`` is its position in ``server.requests``.

    ``headers`` and ``query`` are redacted (``x-goog-api-key``, ``Authorization``, ``?key=`` ...): they are
    what ``to_dict()``, the ``/_sse/journal`` endpoint and reports show. ``header()`` and ``params`` read
    the request as it was received, so a test can still check the key its client sent.
    """

    index: int
    t: float  # time.monotonic() at arrival
    wall: float  # time.time() at arrival
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    model: str | None = None
    kind: RequestKind = RequestKind.OTHER
    step: int | None = None  # index of the script step applied
    step_text: str | None = None
    retry_delay: float | None = None  # what a 429 asked for
    status: int | None = None
    events: int = 0
    bytes: int = 0
    end: Ending = Ending.PENDING
    finished: bool = False  # a finishReason went out
    done_t: float | None = None  # monotonic time the last byte was handed to the socket
    # The whole answer of the fixture exchange served, computed only when asked (see full_text).
    answer_source: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    mid_stream_error: bool = field(default=False, repr=False)  # the body carries the raw mid-stream error
    request: ReplayRequest | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.kind) is not RequestKind:  # a plain word is accepted, and checked
            self.kind = RequestKind(self.kind)
        if type(self.end) is not Ending:
            self.end = Ending(self.end)

    @property
    def full_text(self) -> str | None:
        """The whole answer of the fixture exchange served (the first candidate's non-thought text)."""
        return self.answer_source() if self.answer_source is not None else None

    def header(self, name: str, default: str | None = None) -> str | None:
        """Request header ``name`` as received (not redacted)."""
        if self.request is not None:
            return self.request.header(name, default)
        return find_header(self.headers, name, default)

    @property
    def params(self) -> dict[str, str]:
        """Query parameters as received (not redacted)."""
        from urllib.parse import parse_qsl

        return (
            self.request.params
            if self.request is not None
            else dict(parse_qsl(self.query, keep_blank_values=True))
        )

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    @property
    def outcome(self) -> Outcome:
        """What the request got, as the verdict judges it (see :class:`Outcome`)."""
        if self.status is None or self.end is Ending.PENDING:
            return Outcome.PENDING
        if self.status == 429:
            return Outcome.RATE_LIMITED
        if self.status >= 500 or self.status == 408:
            return Outcome.SERVER_ERROR
        if self.status >= 400:
            return Outcome.CLIENT_ERROR
        if self.end is Ending.RESET or self.end is Ending.ERROR:
            return Outcome.BROKEN
        if self.end is Ending.TRUNCATED:
            return Outcome.TRUNCATED
        if self.end is Ending.CLIENT_GONE:
            return Outcome.CLIENT_GONE
        return Outcome.OK

    def what(self) -> str:
        """What the request got, in words: ``503 Service Unavailable``, ``a stream cut after 3 events``."""
        outcome = self.outcome
        if outcome in _FAILED_STATUS:
            return f"{self.status} {_phrase(self.status or 0)}"
        if outcome is Outcome.BROKEN:
            how = "the raw mid-stream error" if self.end is Ending.ERROR else "an abrupt close"
            return f"a stream broken after {_n(self.events, 'event')} by {how}"
        if outcome is Outcome.TRUNCATED:
            return f"a stream that ended cleanly after {_n(self.events, 'event')} without a finishReason"
        if outcome is Outcome.CLIENT_GONE:
            return f"a stream the client left after {_n(self.events, 'event')}"
        if self.kind is RequestKind.STREAM:
            return f"{self.status} with {_n(self.events, 'event')}"
        return f"{self.status}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the body as text, invalid UTF-8 replaced)."""
        return {
            "index": self.index,
            "t": round(self.t, 6),
            "wall": round(self.wall, 6),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "model": self.model,
            "kind": self.kind.value,
            "headers": [[k, v] for k, v in self.headers],
            "body": self.body.decode("utf-8", "replace"),
            "step": self.step,
            "step_text": self.step_text,
            "retry_delay": self.retry_delay,
            "status": self.status,
            "events": self.events,
            "bytes": self.bytes,
            "end": self.end.value,
            "finished": self.finished,
            "done_t": None if self.done_t is None else round(self.done_t, 6),
            "outcome": self.outcome.value,
        }


_FAILED_STATUS = frozenset({Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.CLIENT_ERROR})
_RETRYABLE = frozenset({Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.BROKEN})
# An attempt with one of these outcomes closes its call: the next identical request starts a new one.
_CLOSES_CALL = frozenset({Outcome.OK, Outcome.CLIENT_GONE, Outcome.PENDING})
# A retry of an attempt with one of these outcomes must back off (a 429 waits as it was told instead).
_BACKS_OFF = frozenset({Outcome.SERVER_ERROR, Outcome.BROKEN})


@dataclass(frozen=True)
class Finding:
    """One thing the client did wrong: ``code`` (see the module doc), ``severity`` (:class:`Severity`),
    ``message`` in plain words, ``requests`` the journal indices involved."""

    code: str
    severity: Severity
    message: str
    requests: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))

    def __str__(self) -> str:
        return f"{self.severity}: {self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "requests": list(self.requests),
        }


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _calls(entries: Iterable[JournalEntry]) -> list[list[JournalEntry]]:
    """Attempts grouped into calls (see the module doc), in order of their first attempt."""
    calls: list[list[JournalEntry]] = []
    open_calls: dict[tuple[str, str, bytes], list[JournalEntry]] = {}
    for entry in entries:
        if entry.kind is RequestKind.MODELS or entry.method in ("OPTIONS", "HEAD"):
            continue
        key = (entry.method, entry.path, entry.body)
        call = open_calls.get(key)
        if call is None:
            call = []
            calls.append(call)
            open_calls[key] = call
        call.append(entry)
        if entry.outcome in _CLOSES_CALL:
            del open_calls[key]
    return calls


def _gap(before: JournalEntry, after: JournalEntry) -> float:
    return after.t - (before.done_t if before.done_t is not None else before.t)


def verdict(
    entries: Sequence[JournalEntry],
    *,
    strict: bool = False,
    result_text: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[Finding]:
    """Findings about the client that made the journaled requests (see the module doc)."""
    findings: list[Finding] = []
    calls = _calls(entries)
    for call in calls:
        findings += _retry_findings(call)
        if len(call) > max_attempts:
            findings.append(
                Finding(
                    "retry-storm",
                    Severity.ERROR,
                    f"{len(call)} attempts of one call ({call[0].method} {call[0].path}, requests "
                    f"#{call[0].index}..#{call[-1].index}): "
                    f"more than the bound of {max_attempts} attempts",
                    tuple(e.index for e in call),
                )
            )
        findings += _backoff_findings(call)
        last = call[-1]
        if (
            len(call) == 1
            and last.outcome in _RETRYABLE
            and not (result_text is not None and last is calls[-1][-1] and last.outcome is Outcome.BROKEN)
        ):
            findings.append(
                Finding(
                    "gave-up",
                    Severity.ERROR if strict else Severity.WARNING,
                    f"request #{last.index} got {last.what()} and was never retried: the call gave up "
                    "after one retryable failure",
                    (last.index,),
                )
            )
        if last.outcome is Outcome.TRUNCATED and (result_text is None or call is not calls[-1]):
            findings.append(
                Finding(
                    "truncated-not-retried",
                    Severity.WARNING,
                    f"request #{last.index} got {last.what()} and was not retried; pass result_text= to "
                    "check the answer the application returned",
                    (last.index,),
                )
            )
    if result_text is not None and calls:
        findings += _answer_findings(calls[-1], result_text)
    return findings


def _retry_findings(call: list[JournalEntry]) -> list[Finding]:
    out: list[Finding] = []
    for before, after in pairwise(call):
        gap = _gap(before, after)
        if (
            before.outcome is Outcome.RATE_LIMITED
            and before.retry_delay is not None
            and gap + _SLACK < before.retry_delay
        ):
            wait = before.retry_delay
            out.append(
                Finding(
                    "retry-too-soon",
                    Severity.ERROR,
                    f"request #{after.index} retried the 429 of request #{before.index} after {gap:.3f} s, "
                    f'but the 429 asked for {wait:g} s (retryDelay "{retry_delay_text(wait)}", Retry-After: '
                    f"{retry_after_header(wait)}): {wait - gap:.3f} s too soon",
                    (before.index, after.index),
                )
            )
        if before.outcome is Outcome.CLIENT_ERROR and before.status in _NOT_RETRYABLE:
            out.append(
                Finding(
                    "retried-non-retryable",
                    Severity.ERROR,
                    f"request #{after.index} retried request #{before.index}, which got {before.what()}: a "
                    "client error fails the same way every time and must not be retried",
                    (before.index, after.index),
                )
            )
    return out


def _backoff_findings(call: list[JournalEntry]) -> list[Finding]:
    pairs = [(b, a, _gap(b, a)) for b, a in pairwise(call) if b.outcome in _BACKS_OFF]
    if not pairs:
        return []
    at_once = [(b, a, g) for b, a, g in pairs if g < AT_ONCE]
    if at_once:
        b, a, g = at_once[0]
        more = f" ({len(at_once)} such retries)" if len(at_once) > 1 else ""
        return [
            Finding(
                "no-backoff",
                Severity.ERROR,
                f"request #{a.index} retried {b.what()} of request #{b.index} after {g:.3f} s: at once, "
                f"without backing off{more}",
                tuple(sorted({x.index for p in at_once for x in p[:2]})),
            )
        ]
    if len(pairs) >= 2 and pairs[-1][2] < pairs[0][2] * GROWTH:
        gaps = ", ".join(f"{g:.3f} s" for _, _, g in pairs)
        return [
            Finding(
                "no-backoff",
                Severity.ERROR,
                f"the waits between retries of server errors did not grow ({gaps}; requests "
                f"#{pairs[0][0].index}..#{pairs[-1][1].index}): no backoff",
                tuple(sorted({x.index for p in pairs for x in p[:2]})),
            )
        ]
    return []


def _answer_findings(call: list[JournalEntry], result_text: str) -> list[Finding]:
    last = call[-1]
    full = last.full_text
    if full is None or result_text == full or result_text.strip() == full.strip():
        return []
    indices = tuple(e.index for e in call)
    if last.outcome in (Outcome.TRUNCATED, Outcome.BROKEN) and len(result_text.strip()) < len(full.strip()):
        return [
            Finding(
                "truncated-answer",
                Severity.ERROR,
                f"the application returned {len(result_text)} of the {len(full)} characters of the answer "
                f"as if it were complete: request #{last.index} got {last.what()} and was not retried",
                indices,
            )
        ]
    detail = ""
    if len(call) > 1 and full in result_text:
        detail = " (it holds the whole answer plus text from a failed attempt)"
    return [
        Finding(
            "wrong-answer",
            Severity.ERROR,
            f"the application returned {len(result_text)} characters but the answer served in request "
            f"#{last.index} has {len(full)}{detail}: {result_text[:60]!r} vs {full[:60]!r}",
            indices,
        )
    ]


def format_findings(findings: Sequence[Finding], requests: int) -> str:
    """The message of ``assert_resilient``: a count line, then one finding per line."""
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    head = (
        f"client resilience: {_n(len(findings), 'finding')} ({_n(errors, 'error')}, "
        f"{_n(warnings, 'warning')}) in {_n(requests, 'request')}"
    )
    return "\n".join([head, *(f"  {f.severity.value:<7} {f.code}: {f.message}" for f in findings)])
