"""Shared by the benchmarks: how to drive the peers from byte chunks, without a network."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import ClassVar


class BytesResponse:
    """What ``httpx_sse.EventSource`` uses of an ``httpx.Response``: ``headers`` and ``iter_text()``.

    ``iter_text`` is httpx's own loop (``Response.iter_text`` with ``chunk_size=None``): an incremental
    UTF-8 decoder with ``errors="replace"`` over the byte chunks, empty strings dropped, then a flush.
    """

    headers: ClassVar[dict[str, str]] = {"content-type": "text/event-stream"}

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    def iter_text(self) -> Iterator[str]:
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        for chunk in self._chunks:
            if text := decode(chunk):
                yield text
        if text := decode(b"", True):
            yield text
