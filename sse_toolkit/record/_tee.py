"""Record layer: the tee (``CMD | sse-record --out FILE``): stdin to stdout unchanged and live, recorded.

Each ``read1`` of the input (what the pipe holds at that moment, at most 64 KiB) is written and flushed at
once, then kept as one chunk with its time offset in seconds since the tee started (the command on the
left started at about the same time, so offsets read like "since the request was sent").

``curl -i`` input: the heads are recognised with :class:`HeadSplitter`; the final head gives the status,
reason and headers (redacted), and ``head_t``; only the body goes into the chunks. The output still gets
every byte, heads included. A body shorter than the head's ``Content-Length`` is recorded as a break
(``end=reset``); otherwise a tee cannot see a break (curl decodes the chunking), so EOF counts as complete.
An interrupt (Ctrl-C, SIGTERM turned into ``KeyboardInterrupt`` by the CLI) keeps what came, as a break.
"""

from __future__ import annotations

import os
import time
from typing import IO

from ..parser._exceptions import SSEProtocolError
from ..fixture._model import End, Chunk, Exchange, Fixture
from ..fixture._redact import Redactor
from ..parser._http_head import HeadSplitter
from ._proxy import HOP_BY_HOP

__all__ = ["record_tee"]

_READ_SIZE = 64 * 1024


def record_tee(
    src: IO[bytes],
    dst: IO[bytes] | None,
    out: str | os.PathLike[str],
    redact: Redactor | None = None,
    source: str | None = None,
) -> Fixture:
    """Copy ``src`` to ``dst`` live (``None``: copy nowhere), then write the recording to ``out``.

    Returns the fixture written (one exchange, no request). ``dst`` going away (``| head``) does not stop
    the recording. Raises ``SSEProtocolError`` if the input ends inside a ``curl -i`` head, and
    ``SecretLeakError`` if a redacted value is found in the written file.
    """
    redactor = redact if redact is not None else Redactor()
    read = getattr(src, "read1", src.read)
    # Every read is appended to ``raw`` before anything else happens to it, so that an interrupt (raised
    # between any two bytecodes) never loses a piece that was already passed on; heads are split after.
    raw: list[tuple[bytes, float]] = []
    end = End.COMPLETE
    start = time.monotonic()
    try:
        while True:
            raw.append((read(_READ_SIZE), time.monotonic() - start))
            data = raw[-1][0]
            if not data:
                break
            if dst is not None:
                try:
                    dst.write(data)
                    dst.flush()
                except BrokenPipeError:
                    dst = None  # the reader left; keep recording
    except KeyboardInterrupt:
        end = End.RESET
    splitter = HeadSplitter()
    chunks: list[Chunk] = []
    head_t: float | None = None
    for data, t in raw:
        body = splitter.feed(data)
        if head_t is None and splitter.in_body and splitter.heads:
            head_t = t
        if body:
            chunks.append(Chunk(body, t))
    try:
        if rest := splitter.close():
            chunks.append(Chunk(rest, raw[-1][1]))
    except SSEProtocolError:
        if end == End.COMPLETE:
            raise
        # cut inside a head: there is no body to keep
    exchange = Exchange(request=None, chunks=chunks, end=end)
    head = splitter.head
    if head is not None:
        exchange.status, exchange.reason, exchange.head_t = head.status, head.reason, head_t
        exchange.headers = [(k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP | {"content-length"}]
        length = head.header("Content-Length")
        if length is not None and length.isdigit() and len(exchange.body) < int(length):
            exchange.end = End.RESET
        encoding = (head.header("Content-Encoding") or "").lower()
        if encoding in ("gzip", "x-gzip") and not exchange.body.startswith(b"\x1f\x8b"):
            # curl --compressed decoded the body but printed the header: the recording holds plain bytes.
            exchange.headers = [(k, v) for k, v in exchange.headers if k.lower() != "content-encoding"]
    fixture = redactor.fixture(Fixture([exchange], source=source))
    redactor.save_checked(out, fixture)
    return fixture
