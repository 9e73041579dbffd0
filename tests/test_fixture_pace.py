"""Replay pace: the schedule math and a player that keeps it without drift."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit import DEFAULT_PACE, Chunk, Exchange, SSEUsageError, loads_fixture
from sse_toolkit._fixture_pace import play, schedule


def timed(*times: float | None) -> Exchange:
    return Exchange(chunks=[Chunk(f"data: {i}\n\n".encode(), t) for i, t in enumerate(times)])


def test_recorded_times_are_kept_at_speed_1() -> None:
    assert schedule(timed(0.4, 0.5, 1.25)) == [(0.4, b"data: 0\n\n"), (0.5, b"data: 1\n\n"), (1.25, b"data: 2\n\n")]


def test_speed_2_halves_and_speed_half_doubles_the_times() -> None:
    assert [t for t, _ in schedule(timed(0.4, 1.0), speed=2)] == [0.2, 0.5]
    assert [t for t, _ in schedule(timed(0.4, 1.0), speed=0.5)] == [0.8, 2.0]


def test_speed_0_sends_everything_at_once() -> None:
    assert [t for t, _ in schedule(timed(0.4, 1.0, None), speed=0)] == [0.0, 0.0, 0.0]


def test_untimed_chunks_are_spaced_by_the_default_pace_the_first_at_once() -> None:
    exchange = loads_fixture(b"data: a\r\n\r\ndata: b\r\n\r\ndata: c\r\n\r\n").exchanges[0]
    assert [t for t, _ in schedule(exchange)] == pytest.approx([0.0, DEFAULT_PACE, 2 * DEFAULT_PACE])
    assert [t for t, _ in schedule(exchange, speed=2)] == pytest.approx([0.0, DEFAULT_PACE / 2, DEFAULT_PACE])


def test_an_untimed_chunk_after_a_timed_one_follows_it_by_the_pace() -> None:
    assert [t for t, _ in schedule(timed(1.0, None))] == pytest.approx([1.0, 1.0 + DEFAULT_PACE])


def test_a_time_going_backwards_is_sent_right_after_the_previous_chunk() -> None:
    assert [t for t, _ in schedule(timed(1.0, 0.5, 2.0))] == [1.0, 1.0, 2.0]


def test_empty_exchange_has_an_empty_schedule() -> None:
    assert schedule(Exchange()) == []


@pytest.mark.parametrize("speed", [-1, float("nan"), float("inf"), "2"])
def test_bad_speed_is_a_usage_error(speed: object) -> None:
    with pytest.raises(SSEUsageError, match="speed"):
        schedule(timed(0.1), speed=speed)  # type: ignore[arg-type]


@given(
    st.lists(st.one_of(st.none(), st.floats(0, 1e4)), max_size=20),
    st.floats(0, 100),
)
def test_schedule_never_decreases_and_keeps_every_byte(times: list[float | None], speed: float) -> None:
    exchange = timed(*times)
    plan = schedule(exchange, speed)
    assert b"".join(data for _, data in plan) == exchange.body
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(plan))
    assert all(t >= 0 for t, _ in plan)


class FakeTime:
    """A clock that advances only when slept on, each sleep overshooting like a busy machine's."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = 100.0
        self.overshoot = overshoot
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.overshoot


def test_play_writes_each_chunk_when_due() -> None:
    fake = FakeTime()
    written: list[tuple[float, bytes]] = []
    play(
        timed(0.5, 0.5, 2.0), lambda data: written.append((fake.now - 100.0, data)), sleep=fake.sleep, clock=fake.clock
    )
    assert [t for t, _ in written] == pytest.approx([0.5, 0.5, 2.0])
    assert b"".join(d for _, d in written) == timed(0.5, 0.5, 2.0).body
    assert len(fake.sleeps) == 2  # no sleep for a chunk already due


def test_play_does_not_accumulate_sleep_overshoot() -> None:
    fake = FakeTime(overshoot=0.01)
    written: list[float] = []
    times = [0.1 * i for i in range(1, 51)]
    play(timed(*times), lambda data: written.append(fake.now - 100.0), sleep=fake.sleep, clock=fake.clock)
    # Each write is late by at most one overshoot, not by the sum of all of them (0.5 s).
    assert all(0 <= w - t <= 0.0100001 for w, t in zip(written, times))


def test_play_counts_from_the_given_start_instant() -> None:
    fake = FakeTime()
    start = fake.now
    fake.now += 0.3  # e.g. the head took 0.3 s to send
    written: list[float] = []
    play(
        timed(0.5, 0.1), lambda data: written.append(fake.now - start), sleep=fake.sleep, clock=fake.clock, start=start
    )
    assert written == pytest.approx([0.5, 0.5])


def test_play_at_speed_0_never_sleeps() -> None:
    fake = FakeTime()
    out: list[bytes] = []
    play(timed(1, 2, 3), out.append, speed=0, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [] and len(out) == 3


def test_a_failing_write_stops_play() -> None:
    fake = FakeTime()
    calls = []

    def write(data: bytes) -> None:
        calls.append(data)
        raise BrokenPipeError

    with pytest.raises(BrokenPipeError):
        play(timed(0.1, 0.2), write, sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1


def test_play_with_the_real_clock_writes_everything_in_order() -> None:
    out: list[bytes] = []
    exchange = timed(0.0, 0.001, 0.002)
    play(exchange, out.append)
    assert b"".join(out) == exchange.body
