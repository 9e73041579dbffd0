"""Parser layer: a differential test against headless Chromium's own ``EventSource``.

Seeded streams rich in edge cases go, in random chunks with real pauses between them, to one headless
Chromium page (tests/_browser_diff.py has the generator, the servers and the page). The parser gets the
same chunks. Events (type, data, lastEventId), the reconnection's ``Last-Event-ID`` and the reconnection
delay must agree, except where Chromium departs from the WHATWG text in one of the three ways documented
in docs/parser.md, recognised by rule. A new difference on either side fails the test.

CI runs one fixed seed; ``--diff-seed``/``--diff-n`` (tests/parser/conftest.py) or
``python fuzz/browser_differential.py`` run more. Skipped only where Chromium is missing locally; in CI
(``CI`` set) a missing Chromium fails the run, as in tests/replay/test_browser.py.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import pytest
from _browser_diff import (
    CHROMIUM,
    DEFAULT_RECONNECT_MS,
    Case,
    Deviation,
    Observed,
    Outcome,
    Verdict,
    compare,
    early_dispatches,
    expect,
    generate,
    judge,
    summarise,
)

from sse_toolkit import EventParser, parse

CI_SEED = 17
CI_STREAMS = 400
_IN_CI = bool(os.environ.get("CI"))
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not _IN_CI, reason="Chromium is not installed here (apt-get install chromium)"
)

BOM = b"\xef\xbb\xbf"
# The minimal stream of each deviation (docs/parser.md), and a near twin on which Chromium follows the spec.
DOCUMENTED = {
    Deviation.BOM_THEN_LINE_END: (BOM + b"\ndata: x\n\n", BOM + b"\r\ndata: x\n\n"),
    Deviation.EMPTY_RETRY_RESETS: (b"retry: 1000\nretry:\n\n", b"retry: 1000\nretry: x\n\n"),
    Deviation.HUGE_RETRY_IGNORED: (
        b"retry: 1000\nretry: 18446744073709551616\n\n",
        b"retry: 1000\nretry: 18446744073709551615\n\n",
    ),
}


def _documented_cases(first_index: int) -> list[Case]:
    streams = [stream for pair in DOCUMENTED.values() for stream in pair]
    return [Case(first_index + offset, (stream,), (0.0,)) for offset, stream in enumerate(streams)]


@pytest.fixture(scope="module")
def chromium_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Outcome], list[Outcome]]:
    """One Chromium page for the whole module: the seeded streams, then the documented minimal ones."""
    if CHROMIUM is None:
        pytest.fail("Chromium is missing in CI: .ci/run failed to install it")
    seed = request.config.getoption("diff_seed", default=None)
    count = request.config.getoption("diff_n", default=None)
    seeded = generate(CI_SEED if seed is None else seed, CI_STREAMS if count is None else count)
    documented = _documented_cases(len(seeded))
    outcomes = compare(
        seeded + documented, chromium=CHROMIUM, profile=tmp_path_factory.mktemp("chromium"), timeout=90
    )
    return outcomes[: len(seeded)], outcomes[len(seeded) :]


@pytest.mark.slow
@needs_chromium
def test_chromium_and_the_parser_agree_on_seeded_streams_but_for_documented_deviations(
    chromium_run: tuple[list[Outcome], list[Outcome]],
) -> None:
    seeded, _ = chromium_run
    report = summarise(seeded)
    print(report)
    assert all(outcome.verdict is not Verdict.DIFFERENT for outcome in seeded), report
    # The run proves something only if the browser really read the streams and the rules really ran.
    assert sum(len(outcome.observed.events) for outcome in seeded) > len(seeded)
    assert sum(outcome.observed.reconnected for outcome in seeded) > len(seeded) // 2
    assert any(outcome.verdict is Verdict.EXPLAINED for outcome in seeded)
    # ... and really saw the chunk boundaries: some events came before the next chunk was even written.
    assert sum(early_dispatches(outcome)[0] for outcome in seeded) > 0


@needs_chromium
@pytest.mark.parametrize("deviation", list(Deviation), ids=lambda deviation: deviation.name)
def test_chromium_still_shows_each_documented_deviation_on_its_minimal_stream(
    chromium_run: tuple[list[Outcome], list[Outcome]], deviation: Deviation
) -> None:
    # If Chromium fixes one, this fails: docs/parser.md and the rule for it must then go.
    _, documented = chromium_run
    by_stream = {outcome.case.stream: outcome for outcome in documented}
    minimal, twin = DOCUMENTED[deviation]
    assert by_stream[minimal].verdict is Verdict.EXPLAINED, by_stream[minimal]
    assert by_stream[minimal].deviations == {deviation}
    assert by_stream[twin].verdict is Verdict.IDENTICAL, by_stream[twin]


def test_parse_and_the_chunk_fed_parser_agree_on_the_seeded_streams() -> None:
    for case in generate(CI_SEED, CI_STREAMS):
        whole = parse(case.stream)
        assert [(e.event, e.data, e.id) for e in whole] == list(expect(case.chunks).events), case


def test_the_seeded_streams_hold_every_edge_case_the_issue_names() -> None:
    cases = generate(CI_SEED, CI_STREAMS)
    streams = [case.stream for case in cases]

    def some(predicate: Callable[[bytes], bool]) -> bool:
        return any(predicate(stream) for stream in streams)

    assert some(lambda s: s.startswith(BOM + b"\n") or (s.startswith(BOM + b"\r") and s[4:5] != b"\n"))
    assert some(lambda s: s.startswith(BOM + b"\r\n"))
    assert some(lambda s: b"\r\n" in s and b"\n\r" in s)  # mixed line ends
    assert any(
        chunk.endswith(b"\r") and after.startswith(b"\n")
        for case in cases
        for chunk, after in itertools.pairwise(case.chunks)
    ), "a chunk boundary right after CR, before its LF"
    assert any(pause > 0 for case in cases for pause in case.pauses)
    for needle in (b"\n:", b"\ndata\n", b"data:hello", b"data: hello", b"data:  ", b"id: a\x00b", b"\xff"):
        assert any(needle in stream for stream in streams), needle
    for retry in (b"-1", b"+5", b"1.5", "١٢".encode(), b"18446744073709551616", b"18446744073709551615"):
        assert any(b"retry: " + retry in stream or b"retry:" + retry in stream for stream in streams), retry
    assert some(lambda s: b"retry\n" in s or b"retry:\n" in s or b"retry: \n" in s)
    assert some(lambda s: b"\xe2\x82\n" in s or b"\xe2\x82\r" in s)  # a truncated UTF-8 sequence
    assert some(lambda s: not (s.endswith(b"\n\n") or s.endswith(b"\r\r") or s.endswith(b"\r\n\r\n")))
    assert any("\n" in event.data for s in streams for event in parse(s))
    assert any(event.data == "" for s in streams for event in parse(s))


# The rules themselves, without a browser: they explain a difference only where the stream holds the
# deviation's trigger and only if the difference is exactly its effect.


def _seen(events: list[tuple[str, str, str]], delay_ms: float | None, last_id: str | None = None) -> Observed:
    """An observation as Chromium would report it (for the rule tests, which need no browser)."""
    return Observed(tuple(events), delay_ms is not None, last_id, delay_ms)


def _verdict(stream: bytes, observed: Observed) -> Verdict:
    return judge(Case(0, (stream,), (0.0,)), observed).verdict


def test_the_rules_explain_each_deviation_on_its_minimal_stream() -> None:
    effects = {
        Deviation.BOM_THEN_LINE_END: _seen([], DEFAULT_RECONNECT_MS + 20),  # "x" never dispatched
        Deviation.EMPTY_RETRY_RESETS: _seen([], DEFAULT_RECONNECT_MS + 20),  # 3 s, not 1 s
        Deviation.HUGE_RETRY_IGNORED: _seen([], 1020),  # still 1 s
    }
    for deviation, observed in effects.items():
        minimal, _ = DOCUMENTED[deviation]
        outcome = judge(Case(0, (minimal,), (0.0,)), observed)
        assert (outcome.verdict, outcome.deviations) == (Verdict.EXPLAINED, frozenset({deviation}))


def test_the_rules_do_not_explain_a_difference_without_its_trigger() -> None:
    # The same effects on streams without the trigger: a lost line, a reconnection after 3 s or after 1 s.
    assert _verdict(b"\ndata: x\n\n", _seen([], 3020)) is Verdict.DIFFERENT
    assert _verdict(b"retry: 1000\nretry: 1500\n\n", _seen([], 3020)) is Verdict.DIFFERENT
    assert _verdict(b"retry: 1000\nretry: 18446744073709551615\n\n", _seen([], 1020)) is Verdict.DIFFERENT


def test_the_rules_do_not_explain_a_different_effect_of_a_present_trigger() -> None:
    bom = BOM + b"\ndata: x\n\ndata: y\n\n"
    # Chromium loses the line after the one the BOM's line end closes; losing another one is something else.
    assert _verdict(bom, _seen([("message", "y", "")], 3020)) is Verdict.EXPLAINED
    assert _verdict(bom, _seen([("message", "x", "")], 3020)) is Verdict.DIFFERENT
    assert _verdict(bom, _seen([("message", "x", ""), ("message", "y", "")], 3020)) is Verdict.IDENTICAL
    # An empty retry resets to 3 s, not to anything else; a huge one leaves the old time, not another one.
    assert _verdict(b"retry: 1000\nretry:\n\n", _seen([], 20)) is Verdict.DIFFERENT
    assert _verdict(b"retry: 1500\n\nretry: 18446744073709551616\n\n", _seen([], 20)) is Verdict.DIFFERENT
    # A trigger does not excuse a difference in the events next to it.
    huge = b"retry: 1000\nretry: 18446744073709551616\ndata: z\n\n"
    assert _verdict(huge, _seen([("message", "zz", "")], 1020)) is Verdict.DIFFERENT


def test_the_last_event_id_header_is_compared_as_http_carries_it() -> None:
    # HTTP drops a field value's leading and trailing spaces (RFC 9110 5.5); an empty id sends no header.
    spaced = b"id:  7 \nretry: 0\n\n"
    parser = EventParser()
    parser.feed(spaced)
    assert parser.last_event_id == " 7 "
    assert _verdict(spaced, _seen([], 20, "7")) is Verdict.IDENTICAL
    assert _verdict(spaced, _seen([], 20, "8")) is Verdict.DIFFERENT
    assert _verdict(b"retry: 0\n\n", _seen([], 20)) is Verdict.IDENTICAL
    assert _verdict(b"retry: 0\n\n", _seen([], 20, "")) is Verdict.DIFFERENT


def test_only_a_late_reconnection_is_left_to_a_second_measurement() -> None:
    # A loaded machine delays a timer but never fires it early: late (or not yet) may be re-measured, early
    # is a difference at once, and so is any difference in the events.
    stream = b"retry: 1500\ndata: a\n\n"
    case = Case(0, (stream,), (0.0,))
    late, early, none = (
        _seen([("message", "a", "")], 4000),
        _seen([("message", "a", "")], 20),
        _seen([], None),
    )
    assert judge(case, late).verdict is Verdict.DIFFERENT
    assert judge(case, late, late_ok=True).verdict is Verdict.IDENTICAL
    assert judge(case, _seen([("message", "a", "")], None), late_ok=True).verdict is Verdict.IDENTICAL
    assert judge(case, early, late_ok=True).verdict is Verdict.DIFFERENT
    assert judge(case, none, late_ok=True).verdict is Verdict.DIFFERENT
