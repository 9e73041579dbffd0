"""Benchmark corpora: deterministic SSE byte streams and chunking, shared by the benchmarks in bench/.

Every generator is a pure function of its arguments (fixed seeds), so two runs, or two benchmarks, see the
same bytes. Nothing here imports sse_toolkit or a peer library: the corpora describe the wire, not a parser.

- ``gemini_stream``: what ``streamGenerateContent?alt=sse`` sends (shared/gemini-captures/text-long-utf8.sse):
  ``data: <one-line JSON>\\r\\n\\r\\n``, raw non-ASCII UTF-8 text deltas, ~700-byte events.
- ``small_stream``: ``data: N\\n\\n``, the cheapest possible events (per-event overhead dominates).
- ``fields_stream``: every field kind in each block: comment, ``event``, ``id``, ``retry``, 3 ``data`` lines.
- ``big_stream``: few huge single-line events (inline base64 images); lines span many chunks.
- ``long_line_stream``: one line of a given size, for the linear-time check (fed 1 byte at a time).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHUNK_SIZE",
    "CORPORA",
    "Corpus",
    "big_stream",
    "build",
    "chunked",
    "fields_stream",
    "gemini_response",
    "gemini_stream",
    "long_line_stream",
    "small_stream",
]

CHUNK_SIZE = 4096  # a typical socket read / httpx iter_bytes() chunk

# Words for the text deltas: mostly English, with the non-ASCII text Gemini streams carry raw (Polish and
# French diacritics, typographic punctuation, some CJK and an emoji), plus markdown as the model writes it.
_TEXT = (
    "the capital of Poland is **Warsaw** (Polish: *Warszawa*), located in east-central Poland on the Vistula "
    "river; its metropolitan area has over 3 million people. Kraków Łódź Gdańsk Wrocław Poznań Zakopane "
    "zażółć gęślą jaźń — “reconstruction” after 1944 – the Old Town café résumé naïve déjà-vu Œuvre "
    "façade Ångström München Straße 東京 北京 日本語 한국어 🙂 is a UNESCO World Heritage Site and a dynamic "
    "modern European hub with museums, parks, palaces, universities, markets and a lively music scene."
)
_WORDS = _TEXT.split()
_BULLETS = ("\n\n", "\n*   **", ":** ", "\n", " ")


def gemini_response(index: int, rng: random.Random, *, text_bytes: int = 340) -> dict[str, Any]:
    """One ``GenerateContentResponse`` chunk as Gemini streams it: a text delta plus usage metadata.

    ``text_bytes`` is the approximate UTF-8 size of the text delta (the rest of the JSON adds ~360 bytes).
    """
    parts: list[str] = []
    size = 0
    while size < text_bytes:
        word = rng.choice(_WORDS)
        sep = rng.choice(_BULLETS) if rng.random() < 0.08 else " "
        parts.append(word + sep)
        size += len(word.encode()) + len(sep)
    if rng.random() < 0.1:
        parts.append('"quoted" ')
    candidates_tokens = 30 + 48 * (index + 1)
    return {
        "candidates": [{"content": {"parts": [{"text": "".join(parts)}], "role": "model"}, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 30,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": candidates_tokens + 60,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 30}],
            "thoughtsTokenCount": 30,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "4SawaZC7Oojp7M8P7KjSyAc",
    }


def gemini_stream(events: int = 20_000, *, seed: int = 0, text_bytes: int = 340) -> bytes:
    """``events`` Gemini-shaped events, framed exactly as the server does: ``data: <json>\\r\\n\\r\\n``.

    The JSON is on one line, with the server's separators (``", "`` never, ``": "`` after keys) and raw
    (unescaped) non-ASCII UTF-8, as in the real captures. About 700 bytes per event by default.
    """
    rng = random.Random(seed)
    out = []
    for i in range(events):
        body = json.dumps(
            gemini_response(i, rng, text_bytes=text_bytes), ensure_ascii=False, separators=(",", ": ")
        )
        out.append(b"data: " + body.encode() + b"\r\n\r\n")
    return b"".join(out)


def small_stream(events: int = 300_000) -> bytes:
    """``data: N\\n\\n`` for N in range(events): per-event cost, nothing else."""
    return b"".join(b"data: %d\n\n" % i for i in range(events))


def fields_stream(blocks: int = 100_000) -> bytes:
    """Blocks of a comment, ``event``, ``id``, ``retry`` and three ``data`` lines (one event per block)."""
    return b"".join(
        b": keep-alive %d\nevent: update\nid: %d\nretry: 3000\n"
        b'data: {"seq": %d,\ndata:  "status": "ok"\ndata: }\n\n' % (i, i, i)
        for i in range(blocks)
    )


def big_stream(events: int = 64, size: int = 256 * 1024, *, seed: int = 0) -> bytes:
    """``events`` single-line events whose data is ``size`` bytes of base64 (an inline image's shape)."""
    rng = random.Random(seed)
    raw_len = size * 3 // 4
    out = []
    for _ in range(events):
        payload = base64.b64encode(rng.randbytes(raw_len))[:size]
        out.append(b"data: " + payload + b"\n\n")
    return b"".join(out)


def long_line_stream(size: int) -> bytes:
    """One event whose single ``data`` line is ``size`` bytes long in total (without its line end)."""
    return b"data: " + b"x" * (size - 6) + b"\n\n"


def chunked(data: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    """``data`` cut into ``size``-byte chunks (the last one shorter), as a socket would deliver it."""
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclass(frozen=True)
class Corpus:
    """A named stream and the number of events a correct parser finds in it."""

    name: str
    description: str
    data: bytes
    events: int


# name -> (description with {n} for the count, builder taking the count, full count, quick count)
_SPECS: dict[str, tuple[str, Callable[[int], bytes], int, int]] = {
    "gemini": (
        "{n:,} Gemini-shaped events, ~700-byte one-line JSON with non-ASCII text, CRLF",
        gemini_stream,
        20_000,
        2_000,
    ),
    "small": ("`data: N\\n\\n` x {n:,}", small_stream, 300_000, 30_000),
    "fields": ("comment, event, id, retry and 3 data lines, x {n:,}", fields_stream, 100_000, 10_000),
    "big": ("{n} single-line events of 256 KiB", big_stream, 64, 8),
}
CORPORA = tuple(_SPECS)


def build(name: str, *, quick: bool = False) -> Corpus:
    """The corpus called ``name`` (one of ``CORPORA``); ``quick`` gives a ~10x smaller one for smoke runs."""
    description, make, full, small = _SPECS[name]
    n = small if quick else full
    return Corpus(name, description.format(n=n), make(n), n)
