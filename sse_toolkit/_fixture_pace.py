"""Fixture layer: when to send each chunk of a recorded exchange (the replay pace), and a player that keeps it.

Times are absolute offsets from the moment the request was sent (recorded ``Chunk.t``), divided by the
speed. The player sleeps until each chunk is due, measured from one start instant, so the small lateness
of every ``sleep`` does not add up over a long stream. A chunk recorded without a time (a plain body,
``curl`` output) is sent ``DEFAULT_PACE`` seconds after the one before it, the first one at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from ._exceptions import SSEUsageError
from ._fixture_model import Exchange

__all__ = ["DEFAULT_PACE", "iter_schedule", "play", "schedule"]

# Seconds between events of an untimed fixture at speed 1. Real Gemini streams send an event every
# 0.05-0.5 s; 50 ms keeps the "it streams" look on a terminal while a 20-event test fixture still plays in
# about a second. Pass speed=0 to send everything at once.
DEFAULT_PACE = 0.05


def schedule(exchange: Exchange, speed: float = 1.0) -> list[tuple[float, bytes]]:
    """``(seconds after the request, bytes)`` for each chunk of ``exchange``, in order, never decreasing.

    ``speed`` 2 halves every time, 0.5 doubles it, 0 sends everything at 0. A recorded time earlier than
    the chunk before it (a hand-edited file) is sent right after that chunk instead.
    """
    return list(iter_schedule(exchange, speed))


def iter_schedule(exchange: Exchange, speed: float = 1.0) -> Iterator[tuple[float, bytes]]:
    """:func:`schedule` as a lazy iterator (``speed`` is checked at once): a fixture streamed from disk is
    read chunk by chunk as the plan is consumed."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed < 0:
        raise SSEUsageError(f"speed must be a finite number >= 0 (0: no delay), got {speed!r}")
    return _plan(exchange, float(speed))


def _plan(exchange: Exchange, speed: float) -> Iterator[tuple[float, bytes]]:
    if speed == 0:
        for chunk in exchange.chunks:
            yield 0.0, chunk.data
        return
    previous: float | None = None
    for chunk in exchange.chunks:
        if chunk.t is not None:
            due = chunk.t / speed
        elif previous is None:
            due = 0.0
        else:
            due = previous + DEFAULT_PACE / speed
        if previous is not None and due < previous:
            due = previous
        yield due, chunk.data
        previous = due


def play(
    exchange: Exchange,
    write: Callable[[bytes], object],
    speed: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    start: float | None = None,
) -> None:
    """Call ``write(chunk)`` for each chunk at its scheduled time, measured from ``start``.

    ``start`` is a ``clock()`` reading of the instant the request arrived (default: now), so that time
    already spent, e.g. sending the HTTP head, counts. Each wait is computed from ``start``, never from the
    previous write, so lateness does not accumulate. ``write`` raising (a client that left) stops play.
    """
    plan = iter_schedule(exchange, speed)
    begin = clock() if start is None else start
    for due, data in plan:
        delay = begin + due - clock()
        if delay > 0:
            sleep(delay)
        write(data)
