"""The verdict's rules as properties over journals (the journal fields are what the server records)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit.replay import Ending, Finding, Outcome, RequestKind, Severity
from sse_toolkit.replay._verdict import (
    AT_ONCE,
    GROWTH,
    MAX_ATTEMPTS,
    JournalEntry,
    format_findings,
    verdict,
)

PATH = "/v1beta/models/m:streamGenerateContent"


def _entry(
    index: int, t: float, status: int, duration: float = 0.001, end: str = "complete", **extra: object
) -> JournalEntry:
    entry = JournalEntry(
        index,
        t,
        1e9 + t,
        "POST",
        PATH,
        "alt=sse",
        [],
        b"{}",
        model="m",
        kind="stream",
        status=status,
        end=end,
        finished=status == 200 and end == "complete",
        done_t=t + duration,
    )
    for name, value in extra.items():
        setattr(entry, name, value)
    return entry


def _journal(statuses: list[int], gaps: list[float], **extra: object) -> list[JournalEntry]:
    entries, t = [], 0.0
    for index, status in enumerate(statuses):
        entries.append(_entry(index, t, status, **extra))
        t = entries[-1].done_t + (gaps[index] if index < len(gaps) else 0.0)  # type: ignore[operator]
    return entries


@given(delay=st.floats(0.01, 5), gap=st.floats(0, 10))
def test_a_429_retry_is_too_soon_exactly_when_the_gap_is_under_the_retry_delay(
    delay: float, gap: float
) -> None:
    findings = verdict(_journal([429, 200], [gap], retry_delay=delay))
    too_soon = [f for f in findings if f.code == "retry-too-soon"]
    assert bool(too_soon) == (gap + 0.005 < delay)
    if too_soon:
        assert f"{delay - gap:.3f} s too soon" in too_soon[0].message


@given(status=st.sampled_from([400, 401, 403, 404]), gap=st.floats(0, 100))
def test_any_retry_of_a_client_error_is_flagged_whatever_the_wait(status: int, gap: float) -> None:
    codes = [f.code for f in verdict(_journal([status, 200], [gap]))]
    assert codes == ["retried-non-retryable"]


@given(gaps=st.lists(st.floats(AT_ONCE, 5), min_size=1, max_size=3).map(sorted))
def test_growing_waits_after_server_errors_pass_and_waits_that_do_not_grow_fail(gaps: list[float]) -> None:
    statuses = [503] * len(gaps) + [200]
    findings = verdict(_journal(statuses, gaps))
    if len(gaps) >= 2 and abs(gaps[-1] - gaps[0] * GROWTH) < 1e-6:
        return  # on the boundary: float rounding of the recorded times decides
    grew = len(gaps) < 2 or gaps[-1] > gaps[0] * GROWTH
    assert [f.code for f in findings] == ([] if grew else ["no-backoff"])


@given(gaps=st.lists(st.floats(0, 5), min_size=1, max_size=4))
def test_a_retry_of_a_server_error_within_at_once_is_no_backoff(gaps: list[float]) -> None:
    if any(abs(g - AT_ONCE) < 1e-6 for g in gaps):
        return  # on the boundary: float rounding of the recorded times decides (found: gaps [2.0, 0.05, 0.0])
    findings = verdict(_journal([500] * len(gaps) + [200], gaps))
    fast = [g for g in gaps if g < AT_ONCE]
    if fast:
        (finding,) = findings
        assert finding.code == "no-backoff" and "at once, without backing off" in finding.message
        first = gaps.index(fast[0])
        assert (
            f"request #{first + 1} retried 500 Internal Server Error of request #{first} after "
            in finding.message
        )


@given(attempts=st.integers(1, 12), strict=st.booleans())
def test_attempt_count_storm_and_giving_up(attempts: int, strict: bool) -> None:
    gaps = [0.1 * 2**n for n in range(attempts)]
    codes = {f.code: f.severity for f in verdict(_journal([503] * attempts, gaps), strict=strict)}
    assert ("retry-storm" in codes) == (attempts > MAX_ATTEMPTS)
    assert ("gave-up" in codes) == (attempts == 1)
    if attempts == 1:
        assert codes["gave-up"] == ("error" if strict else "warning")


@given(calls=st.integers(1, 6))
def test_identical_requests_that_each_succeed_are_separate_calls(calls: int) -> None:
    assert verdict(_journal([200] * calls, [0.0] * calls)) == []


def test_the_report_counts_errors_and_warnings() -> None:
    findings = verdict(_journal([503], [])) + verdict(_journal([400, 200], [0.2]))
    report = format_findings(findings, 3)
    assert report.splitlines()[0] == "client resilience: 2 findings (1 error, 1 warning) in 3 requests"
    assert report.splitlines()[1].startswith("  warning gave-up: request #0 got 503 Service Unavailable")


def test_result_text_judges_the_last_call_and_earlier_truncations_stay_warnings() -> None:
    earlier = _entry(
        0, 0.0, 200, end="truncated", events=2, path="/v1beta/models/m:streamGenerateContent", body=b"1"
    )
    last = _entry(
        1, 1.0, 200, end="truncated", events=2, body=b"2", answer_source=lambda: "The whole answer."
    )
    findings = verdict([earlier, last], result_text="The whole")
    assert [(f.code, f.severity, f.requests) for f in findings] == [
        ("truncated-not-retried", "warning", (0,)),
        ("truncated-answer", "error", (1,)),
    ]
    assert verdict([earlier, last], result_text="The whole answer.")[1:] == []


def test_how_an_answer_ended_and_what_it_got_are_one_enum_each_still_spelled_as_words() -> None:
    entry = _entry(0, 0.0, 503, end="reset")
    assert entry.end is Ending.RESET and entry.kind is RequestKind.STREAM
    assert entry.outcome is Outcome.SERVER_ERROR and entry.outcome == "server-error"
    assert entry.to_dict()["end"] == "reset" and entry.to_dict()["outcome"] == "server-error"
    assert _entry(1, 0.0, 200, end="error").outcome is Outcome.BROKEN
    with pytest.raises(ValueError, match="'finished'"):
        _entry(2, 0.0, 200, end="finished")  # not a word of the journal
    finding = Finding("gave-up", "warning", "m")
    assert finding.severity is Severity.WARNING and finding.to_dict()["severity"] == "warning"
    assert str(finding) == "warning: gave-up: m"
