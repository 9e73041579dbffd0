"""Tests: feed one byte vector to ``EventParser`` in several chunkings and insist they all agree.

Like h11's ``tests/test_io.py`` (``t_body_reader``): every parser case runs whole, byte by byte and in
seeded random splits (some of them with empty chunks thrown in), and the outcome, the events plus
``last_event_id`` and ``retry`` after ``close()``, must be identical for all of them.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from sse_toolkit import Event, EventParser, SSEProtocolError

__all__ = ["Outcome", "chunkings", "feed_all_ways", "feed_chunks", "random_splits"]


class Outcome(NamedTuple):
    events: list[Event]
    last_event_id: str
    retry: int | None


def feed_chunks(chunks: Iterable[bytes], **parser_options: int) -> Outcome:
    """Feed ``chunks`` in order, then ``close()``; return what came out."""
    parser = EventParser(**parser_options)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return Outcome(events, parser.last_event_id, parser.retry)


def random_splits(data: bytes, rng: random.Random, empties: bool = False) -> list[bytes]:
    """``data`` cut at random places (chunks of 1 to ~2x average), optionally with empty chunks mixed in."""
    chunks: list[bytes] = []
    position = 0
    average = max(1, len(data) // rng.choice((2, 3, 5, 17)))
    while position < len(data):
        size = rng.randint(1, 2 * average)
        chunks.append(data[position : position + size])
        position += size
        if empties and rng.random() < 0.2:
            chunks.append(b"")
    return chunks


def chunkings(data: bytes, seeds: int = 6) -> Iterator[tuple[str, list[bytes]]]:
    """Named chunkings of ``data``: whole, byte by byte, and ``seeds`` seeded random splits."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    base = zlib.crc32(data)  # stable across runs (hash() of bytes is salted)
    for seed in range(seeds):
        rng = random.Random(base + seed)
        yield f"random-{seed}", random_splits(data, rng, empties=seed % 2 == 1)


def feed_all_ways(data: bytes, seeds: int = 6, **parser_options: int) -> Outcome:
    """Feed ``data`` every way of ``chunkings``; assert the outcomes are equal and return it."""
    expected: Outcome | None = None
    for name, chunks in chunkings(data, seeds):
        assert b"".join(chunks) == data
        outcome = feed_chunks(chunks, **parser_options)
        if expected is None:
            expected = outcome
        else:
            assert outcome == expected, f"chunking {name!r} ({len(chunks)} chunks) differs from feeding whole"
    assert expected is not None
    return expected


def feed_until_error(
    chunks: Iterable[bytes], limit: int
) -> tuple[list[Event], SSEProtocolError | None, EventParser]:
    """Feed ``chunks`` to a parser with ``max_event_size=limit``; return every event that came out (including
    ``exc.events``), the error if one was raised, and the parser."""
    parser = EventParser(max_event_size=limit)
    events: list[Event] = []
    try:
        for chunk in chunks:
            events.extend(parser.feed(chunk))
        parser.close()
    except SSEProtocolError as exc:
        return events + exc.events, exc, parser
    return events, None, parser
