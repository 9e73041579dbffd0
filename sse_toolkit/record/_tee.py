"""Record layer: the tee (``CMD | sse-record --out FILE``): stdin to stdout unchanged and live, recorded.

Each ``read1`` of the input (what the pipe holds at that moment, at most 64 KiB) is written and flushed at
once, then kept as one chunk with its time offset in seconds since the tee started (the command on the
left started at about the same time, so offsets read like "since the request was sent").

``curl -i`` input: the heads are recognised with :class:`HeadSplitter`; the final head gives the status,
reason and headers (redacted), and ``head_t``; only the body goes into the chunks. The output still gets
every byte, heads included. A body shorter than the head's ``Content-Length`` is recorded as a break
(``end=reset``); otherwise a tee cannot see a break (curl decodes the chunking), so EOF counts as complete.
An interrupt (Ctrl-C, SIGTERM turned into ``KeyboardInterrupt`` by the CLI) keeps what came, as a break.

Writing as it comes (``FixtureWriter``): the ``response`` line once the body starts, then each chunk's line
as soon as it is redacted, the ``end`` line last; a ``kill -9`` leaves every chunk written so far, which
loading keeps as a broken stream. Redaction is done over a window: the new chunk with the
``REDACT_WINDOW`` bytes before it, so that a secret (or a ``--redact`` match) split across reads is
found; when it reaches into chunks already written, the file is cut back to the first of them and they
are written again. A chunk whose end could be the beginning of a known secret (a cookie from the head) is
held back until the next read shows whether it is. At the end the whole body is redacted once more (a
pattern match longer than the window) and the file corrected the same way, then synced and checked for
leaks. Signals are held off while a piece is being recorded, so an interrupt never lands half-way. Reading
a descriptor in the main thread on POSIX, the tee waits in ``select`` for the input or a signal's wakeup
byte (``signal.set_wakeup_fd``) before each read: a signal that came in the instant before a read blocked
would otherwise have its handler wait for input that may never come (the stream still open).
A write that fails does not stop the copy to stdout: the recording goes on in memory, the whole file is
written at the end, and ``FixtureError`` is raised then all the same, saying so.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

from ..fixture._errors import FixtureError
from ..fixture._jsonl import FixtureWriter, dump_chunk, dump_end, dump_head, remove_leftovers
from ..fixture._model import Chunk, End, Exchange, Fixture
from ..fixture._redact import Redactor, apply_spans
from ..parser._exceptions import SSEProtocolError
from ..parser._http_head import HeadSplitter
from ._proxy import HOP_BY_HOP

__all__ = ["REDACT_WINDOW", "record_tee"]

_READ_SIZE = 64 * 1024
# How far back from a new chunk redaction looks for a secret or pattern match that began before it.
REDACT_WINDOW = 16 * 1024


def record_tee(
    src: IO[bytes],
    dst: IO[bytes] | None,
    out: str | os.PathLike[str],
    redact: Redactor | None = None,
    source: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Fixture:
    """Copy ``src`` to ``dst`` live (``None``: copy nowhere), recording into ``out`` as it goes.

    Returns the fixture written (one exchange, no request). ``dst`` going away (``| head``) does not stop
    the recording. ``log`` is told of temporary files an earlier crash left (removed). Raises
    ``SSEProtocolError`` if the input ends inside a ``curl -i`` head, ``SecretLeakError`` if a redacted
    value is found in the written file (which is then removed), and ``FixtureError`` (or the ``OSError``)
    if a write failed.
    """
    name = os.fspath(out)
    for note in remove_leftovers(name):
        if log is not None:
            log(f"sse-record: {note}")
    recording = _Recording(name, redact if redact is not None else Redactor(), source)
    with _interruptible_reads(src) as read:
        return _tee(read, dst, recording)


def _tee(read: Callable[[int], bytes], dst: IO[bytes] | None, recording: _Recording) -> Fixture:
    # Every read is appended to ``raw`` before anything else happens to it, so that an interrupt (raised
    # between any two bytecodes) never loses a piece that was already passed on.
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
            with _signals_held():
                recording.take(raw)
    except KeyboardInterrupt:
        end = End.RESET
    with _signals_held():
        return recording.finish(raw, end)


@contextlib.contextmanager
def _interruptible_reads(src: IO[bytes]) -> Iterator[Callable[[int], bytes]]:
    """``src``'s ``read1``, waiting first in ``select`` for its descriptor or for a signal's wakeup byte, so
    that a signal caught just before the read would block gets its handler run at once (a signal while
    waiting interrupts ``select``). As it is where that cannot be done: off the main thread, off POSIX,
    without a descriptor, or when the wakeup descriptor is someone else's (an event loop's)."""
    read = getattr(src, "read1", src.read)
    try:
        fd = src.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        fd = -1
    if fd < 0 or os.name != "posix" or threading.current_thread() is not threading.main_thread():
        yield read
        return
    wake_r, wake_w = os.pipe()
    try:
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        if previous != -1:
            signal.set_wakeup_fd(previous)
            yield read
            return

        def wait_then_read(size: int) -> bytes:
            while True:
                ready, _, _ = select.select([fd, wake_r], [], [])
                if wake_r in ready:
                    # A signal came: its handler runs as select returns (SIGINT and SIGTERM raise).
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                if fd in ready:
                    return read(size)

        try:
            yield wait_then_read
        finally:
            signal.set_wakeup_fd(-1)
    finally:
        os.close(wake_r)
        os.close(wake_w)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM off (they are delivered when the block ends): bookkeeping never half-done."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = mask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


class _Recording:
    """The one exchange of a tee, recorded as it comes (see the module doc)."""

    def __init__(self, out: str, redactor: Redactor, source: str | None) -> None:
        self.out = out
        self.redactor = redactor
        self.marker = redactor.marker.encode("ascii")
        self.writer = FixtureWriter(out, source, durable=False)
        self.splitter = HeadSplitter()
        self.taken = 0  # entries of ``raw`` seen
        self.head_t: float | None = None
        self.head_error: SSEProtocolError | None = None
        self.chunks: list[Chunk] = []  # the body as read, unredacted
        self.starts: list[int] = []  # body offset of each chunk
        self.size = 0  # body bytes so far
        self.spans: list[tuple[int, int]] = []  # what redaction removes: body offsets, sorted, merged
        self.wanted: list[tuple[int, bytes]] = []  # the redacted chunks, last worked out: (index, data)
        self.head: tuple[bytes, int] | None = None  # the written head line and its offset
        self.lines: list[tuple[int, int, bytes]] = []  # written chunk lines: (chunk index, offset, data)
        self.failure: OSError | None = None  # the first write that failed (live writing stops there)

    # -- as it comes --------------------------------------------------------------------------------------
    def take(self, raw: list[tuple[bytes, float]]) -> None:
        """Record the entries of ``raw`` not seen yet."""
        first_new = len(self.chunks)
        while self.taken < len(raw):
            data, t = raw[self.taken]
            self.taken += 1
            if self.head_error is not None or not data:
                continue
            try:
                body = self.splitter.feed(data)
            except SSEProtocolError as exc:  # a head over the size limit: raised at the end
                self.head_error = exc
                continue
            if self.head_t is None and self.splitter.in_body and self.splitter.heads:
                self.head_t = t
            if body:
                self.starts.append(self.size)
                self.chunks.append(Chunk(body, t))
                self.size += len(body)
        if len(self.chunks) > first_new and self.size >= 2 and self.failure is None:
            self._write(self.starts[first_new], final=False)

    # -- at the end ---------------------------------------------------------------------------------------
    def finish(self, raw: list[tuple[bytes, float]], end: End) -> Fixture:
        self.take(raw)
        if self.head_error is not None:
            raise self.head_error
        try:
            if rest := self.splitter.close():
                self.starts.append(self.size)
                self.chunks.append(Chunk(rest, raw[-1][1]))
                self.size += len(rest)
        except SSEProtocolError:
            if end == End.COMPLETE:
                raise
            # cut inside a head: there is no body to keep
        exchange = self._exchange(end)
        self._write(0, final=True)
        if self.failure is None:
            try:
                self.writer.write(dump_end(exchange.end))
                self.writer.sync()
            except OSError as exc:
                self.failure = exc
        exchange.chunks = [Chunk(data, self.chunks[index].t) for index, data in self.wanted]
        fixture = Fixture([exchange], source=self.writer.source)
        if self.failure is not None:
            self.writer.close()
            self._write_whole(fixture)
        written = self.writer.read()
        self.writer.close()
        try:
            self.redactor.check_bytes(written, self.out)
        except FixtureError:
            with contextlib.suppress(OSError):
                os.unlink(self.out)
            raise
        return fixture

    def _write_whole(self, fixture: Fixture) -> None:
        """A write failed during the recording: write the file whole now, and raise either way."""
        reason = self.failure.strerror if self.failure is not None else None
        try:
            self.redactor.save_checked(self.out, fixture)
        except OSError as exc:
            raise FixtureError(
                f"cannot write the recording: {exc.strerror or exc} (a write during the recording failed "
                f"first: {reason})",
                self.out,
            ) from exc
        raise FixtureError(
            f"a write failed during the recording ({reason}); the whole recording was written at the end",
            self.out,
        )

    # -- the file -----------------------------------------------------------------------------------------
    def _exchange(self, end: End) -> Exchange:
        """The exchange as it stands: status, redacted headers, ``end`` (no chunks)."""
        exchange = Exchange(request=None, chunks=[], end=end)
        head = self.splitter.head
        if head is not None:
            exchange.status, exchange.reason, exchange.head_t = head.status, head.reason, self.head_t
            exchange.headers = [
                (k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP | {"content-length"}
            ]
            length = head.header("Content-Length")
            if length is not None and length.isascii() and length.isdigit() and self.size < int(length):
                exchange.end = End.RESET
            encoding = (head.header("Content-Encoding") or "").lower()
            first = b"".join(chunk.data for chunk in self.chunks[:2])[:2]
            if encoding in ("gzip", "x-gzip") and first != b"\x1f\x8b":
                # curl --compressed decoded the body but printed the header: the recording holds plain bytes.
                exchange.headers = [(k, v) for k, v in exchange.headers if k.lower() != "content-encoding"]
        exchange.headers = self.redactor.headers(exchange.headers)
        return exchange

    def _write(self, window_from: int, final: bool) -> None:
        """Redact from ``window_from`` (a body offset; the window reaches back before it) and bring the
        file in line: rewrite what changed, write what is new, hold back a possible secret's beginning."""
        first, limit = 0, 0
        self.wanted = []
        if self.chunks:
            begin = self._index_of(max(0, window_from - (0 if final else REDACT_WINDOW)))
            offset = self.starts[begin]
            joined = b"".join(chunk.data for chunk in self.chunks[begin:])
            self._add_spans([(start + offset, end + offset) for start, end in self.redactor.spans(joined)])
            # Start at a chunk no span reaches into from before, so that each marker lands where it began.
            first = begin
            while (straddling := self._span_across(self.starts[first])) is not None:
                first = self._index_of(straddling)
            base = self.starts[first]
            spans = self.spans[bisect.bisect_left(self.spans, (base, base)) :]
            pieces = apply_spans(
                [chunk.data for chunk in self.chunks[first:]],
                [(s - base, e - base) for s, e in spans],
                self.marker,
            )
            self.wanted = [(first + n, piece) for n, piece in enumerate(pieces) if piece]
            limit = len(self.chunks)
            if not final and (held := self.redactor.secret_begins_at_end(joined)) is not None:
                limit = self._index_of(held + offset)
        try:
            self._write_head(final)
            self._sync_lines(first, limit)
        except OSError as exc:
            self.failure = self.failure or exc

    def _add_spans(self, found: list[tuple[int, int]]) -> None:
        if not found:
            return
        low = found[0][0]
        keep = bisect.bisect_left(self.spans, (low, low))
        if keep and self.spans[keep - 1][1] > low:
            keep -= 1
        self.spans[keep:] = _merge(self.spans[keep:] + found)

    def _span_across(self, offset: int) -> int | None:
        """The start of the span that begins before ``offset`` and goes past it, if any."""
        index = bisect.bisect_left(self.spans, (offset, offset)) - 1
        if index >= 0 and self.spans[index][0] < offset < self.spans[index][1]:
            return self.spans[index][0]
        return None

    def _write_head(self, final: bool) -> None:
        if self.head is not None and not final:
            return
        line = dump_head(self._exchange(End.COMPLETE))
        if self.head is None:
            self.head = (line, self.writer.write(line))
        elif final and line != self.head[0]:  # a secret learnt later sits in a header: all again
            self.writer.truncate(self.head[1])
            self.lines.clear()
            self.head = (line, self.writer.write(line))

    def _sync_lines(self, first: int, limit: int) -> None:
        """Make the chunk lines from chunk ``first`` on what ``wanted`` says (up to chunk ``limit``)."""
        on_disk = bisect.bisect_left(self.lines, (first, -1, b""))
        same = on_disk
        for wanted, (index, _, data) in zip(self.wanted, self.lines[on_disk:], strict=False):
            if wanted != (index, data):
                break
            same += 1
        if same < len(self.lines):
            self.writer.truncate(self.lines[same][1])
            del self.lines[same:]
        for index, piece in self.wanted[same - on_disk :]:
            if index >= limit:
                break
            line = dump_chunk(Chunk(piece, self.chunks[index].t), f"chunk {index}")
            self.lines.append((index, self.writer.write(line), piece))

    def _index_of(self, offset: int) -> int:
        """The chunk holding body ``offset`` (the last chunk for the end or beyond)."""
        return max(0, bisect.bisect_right(self.starts, offset) - 1)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > start:
            merged.append((start, end))
    return merged
