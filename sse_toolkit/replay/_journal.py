"""Replay layer: the journal, what each request asked and what it got, kept within fixed bounds.

Every request a replay app answers (but ``/_sse/`` ones) becomes a :class:`JournalEntry` when it arrives;
what goes out is counted as the server's writer gives it out (``Reply.watcher``: once per step, and in the
step that gives the last piece, before it is written, so a client that has the whole answer finds its
entry done), and how the answer ended is written then or when the client went away.

A server may run for days (``sse-replay --serve``), so nothing here grows with what it has seen:
  * redaction is per request: the secrets removed are the ones this request carries, in the fields the
    fixture layer names (``SECRET_QUERY_PARAMS`` such as ``key``, in any case; ``SECRET_HEADERS``:
    ``x-goog-api-key``, the credentials of ``Authorization``, cookie values), and wherever else in its query
    and headers they show up, as sent or percent-encoded. Nothing is remembered from one request to the
    next, so the cost per request is the same after a million distinct keys as after one (the server
    layer keeps an open connection's last request head, its key among the headers, to read the same head
    again without parsing it; it goes when the connection closes). It is done when
    the journal is read (``entries()``), once per entry, not while the request waits for its answer; an
    entry that leaves the journal unread is never redacted (it held the request as received all along,
    for ``header()`` and ``params``). (The recorder's
    ``Redactor`` also searches every other spelling, compiling patterns per secret: right for a file that
    must never hold a key, too slow for the loop that paces every stream, for a journal kept in memory.)
  * a request body is kept up to ``MAX_BODY`` bytes, then a marker saying how much was dropped;
  * at most ``MAX_ENTRIES`` entries and ``MAX_BYTES`` bytes of them are kept; beyond either, the oldest
    one goes as each new one arrives (indices keep counting, so ``JournalEntry.index`` still says which
    request it was).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote_plus

from ..fixture._model import End
from ..fixture._redact import MIN_SECRET_LENGTH, REDACTED, SECRET_HEADERS, SECRET_QUERY_PARAMS
from ..server._loop import ReplayRequest, Reply
from ._convert import FINISH_MARKERS, Planned, finish_offset, is_event
from ._verdict import Ending, JournalEntry, RequestKind

__all__ = ["MAX_BODY", "MAX_BYTES", "MAX_ENTRIES", "Journal", "whole_body"]

MAX_ENTRIES = 10_000
# Bytes kept in all, counting bodies, queries and headers (each twice: as received and redacted).
MAX_BYTES = 64 * 1024 * 1024
# A request body beyond this is cut, with a marker: a verdict only compares bodies, and a client that posts
# megabytes of prompt sends the same megabytes with every retry.
MAX_BODY = 64 * 1024
_ENTRY_OVERHEAD = 512  # the entry's own fields, roughly
# A body streamed from disk: how far its finishReason is looked for (and in its last piece).
_SCANNED = 1024 * 1024


def whole_body(body: bytes) -> Planned:
    """The journal's view of a body sent whole (a unary answer, an error): one event if it is not blank."""
    return Planned([(0.0, body)], [len(body)] if body.strip() else [], finish_offset(body))


def _redacted(request: ReplayRequest) -> tuple[str, list[tuple[str, str]]]:
    """The request's query and headers with its own secrets redacted (see the module doc)."""
    secrets: list[str] = []
    query = request.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, equals, value = piece.partition("=")
            if equals and value and unquote_plus(name).strip().lower() in SECRET_QUERY_PARAMS:
                secrets += (value, unquote_plus(value))
                piece = f"{name}={REDACTED}"
            pieces.append(piece)
        query = "&".join(pieces)
    headers = list(request.headers)
    for index, (name, value) in enumerate(headers):
        lower = name.lower()
        if lower in SECRET_HEADERS:
            headers[index] = (name, _redacted_field(lower, value, secrets))
    if not secrets:
        return query, headers
    # Each value goes wherever else it shows up too (a Referer with ?key=, an echo in another header).
    needles = {form for s in secrets if len(s) >= MIN_SECRET_LENGTH for form in (s, quote(s, safe=""))}
    for needle in sorted(needles, key=len, reverse=True):
        query = query.replace(needle, REDACTED)
        headers = [(k, v.replace(needle, REDACTED)) for k, v in headers]
    return query, headers


def _redacted_field(name: str, value: str, secrets: list[str]) -> str:
    """A secret header's value with its credentials replaced (kept: an auth scheme, cookie names)."""
    if name == "cookie" or name == "set-cookie":
        first, semicolon, attributes = value.partition(";") if name == "set-cookie" else (value, "", "")
        pairs = []
        for pair in first.split(";"):
            cookie, equals, content = pair.strip().partition("=")
            if cookie or content:
                secrets.append(content.strip().strip('"') if equals else cookie)
                pairs.append(f"{cookie}={REDACTED}" if equals else REDACTED)
        return "; ".join(pairs) + semicolon + attributes
    scheme, space, credentials = value.strip().partition(" ")
    if name != "x-goog-api-key" and space and credentials.strip():  # Authorization: keep the scheme
        secrets.append(credentials.strip())
        return f"{scheme} {REDACTED}"
    secrets.append(value.strip())
    return REDACTED


def _kept_body(body: bytes, limit: int) -> bytes:
    """A body over ``limit`` bytes cut to it, with a marker saying how much was dropped."""
    dropped = len(body) - limit
    return body[:limit] + b"[sse-toolkit: request body cut in the journal, %d of %d bytes dropped]" % (
        dropped,
        len(body),
    )


class Journal:
    """The journal of one app: :meth:`record` an arriving request, :meth:`track` what it is sent.

    Thread-safe: the server's loop writes it while a test reads :meth:`entries`. The bounds are
    attributes (see the module doc) and may be changed on an instance.
    """

    def __init__(
        self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES, max_body: int = MAX_BODY
    ) -> None:
        # Any: a user may set them to any number (1e4 works, as in Python; compiled, an int is checked).
        self.max_entries: Any = max_entries
        self.max_bytes: Any = max_bytes
        self.max_body: Any = max_body
        # Deques: the oldest entry leaves in O(1) as each new one arrives, never a bulk drop inside a request.
        self._entries: deque[JournalEntry] = deque()
        # Entries whose query and headers are not redacted yet, oldest first: that is done when the journal
        # is read (entries()), off the path of the request (a few microseconds it would wait for).
        self._unredacted: deque[JournalEntry] = deque()
        self._sizes: deque[int] = deque()
        self._bytes = 0
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def kept_bytes(self) -> int:
        """About how many bytes the kept entries hold (bodies, queries, headers and a fixed overhead)."""
        return self._bytes

    def entries(self) -> list[JournalEntry]:
        """The kept entries, oldest first (a copy)."""
        with self._lock:
            unredacted = self._unredacted
            while unredacted:
                entry = unredacted.popleft()
                assert entry.request is not None
                entry.query, entry.headers = _redacted(entry.request)
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry; indices start again from 0."""
        with self._lock:
            self._entries.clear()
            self._unredacted.clear()
            self._sizes.clear()
            self._bytes = 0
            self._count = 0

    def record(self, request: ReplayRequest, kind: RequestKind, model: str | None) -> JournalEntry:
        """A new entry for ``request``, which has just arrived (its body kept up to ``max_body`` bytes; its
        query and headers are redacted when the journal is read)."""
        body = request.body
        if len(body) > self.max_body:  # the request as received, without the part of the body not kept
            body = _kept_body(body, self.max_body)
            request = ReplayRequest(request.method, request.path, request.query, request.headers, body)
        size = len(body) + _ENTRY_OVERHEAD + 2 * (len(request.query) + request.fields_size)
        t, wall = time.monotonic(), time.time()
        entries = self._entries
        with self._lock:
            # The query and headers: redacted when the journal is read (see _unredacted).
            entry = JournalEntry(
                self._count, t, wall, request.method, request.path, "", [], body, model, kind
            )
            entry.request = request
            self._count += 1
            entries.append(entry)
            self._unredacted.append(entry)
            self._sizes.append(size)
            self._bytes += size
            while len(entries) > 1 and (len(entries) > self.max_entries or self._bytes > self.max_bytes):
                # the oldest go, one at a time; the newest entry always stays
                if self._unredacted and self._unredacted[0] is entries.popleft():
                    self._unredacted.popleft()  # never read: never redacted
                self._bytes -= self._sizes.popleft()
        return entry

    def track(self, entry: JournalEntry, reply: Reply, sent: Planned | None) -> None:
        """Count what ``reply`` sends into ``entry`` as it goes out. ``sent`` describes its body (event
        ends, where the finishReason ends): the server's writer then tells how far the body got, once per
        step (``Reply.watcher``). With its event ends None (a body streamed from disk) each piece is looked
        at as it is read: each that closes an event counts, and the finishReason is looked for in the first
        MiB and the last piece."""
        entry.status = reply.status
        counted = reply.status < 400
        if sent is not None and sent.event_ends is not None:
            reply.watcher = _Counted(entry, reply, counted, sent.event_ends, sent.finish_at)
        else:
            reply.chunks = _scanned(entry, reply, reply.chunks, counted)


class _Counted:
    """A body whose event ends are known, counted into its entry as the writer reports it."""

    __slots__ = ("counted", "ends", "entry", "finish_at", "reply")

    def __init__(
        self, entry: JournalEntry, reply: Reply, counted: bool, ends: Sequence[int], finish_at: int | None
    ) -> None:
        self.entry, self.reply, self.counted = entry, reply, counted
        self.ends, self.finish_at = ends, finish_at

    def given(self, size: int) -> None:
        self.entry.bytes = size

    def over(self, size: int, whole: bool) -> None:
        entry = self.entry
        entry.bytes = size
        if self.counted:
            entry.events = bisect.bisect_right(self.ends, size)
            entry.finished = self.finish_at is not None and size >= self.finish_at
        _ended(entry, self.reply, whole)


def _scanned(
    entry: JournalEntry, reply: Reply, chunks: Iterable[Any], counted: bool
) -> Iterator[tuple[float | None, bytes]]:
    """``chunks`` (a body streamed from disk), each piece counted into ``entry`` as it is read (its items
    read as Python reads them: see ReplyWriter._items)."""
    total, events, finished = 0, 0, False
    last: Any = b""
    whole = False
    try:
        for t, data in chunks:
            yield t, data
            total += len(data)
            entry.bytes = total
            events += is_event(data)
            if not finished and total <= _SCANNED:
                finished = any(marker in data for marker in FINISH_MARKERS)
            last = data
        whole = True
    finally:
        if counted:
            entry.events = events
            entry.finished = finished or any(marker in last for marker in FINISH_MARKERS)
        _ended(entry, reply, whole)


# Read on every request by name: in Python 3.11 reading a member off its enum class goes through EnumType's
# __getattr__ hook (a bound method made and dropped per read).
_COMPLETE, _STREAM, _ENDED_COMPLETE = End.COMPLETE, RequestKind.STREAM, Ending.COMPLETE


def _ended(entry: JournalEntry, reply: Reply, whole: bool) -> None:
    """How the answer ended, now that it is over (``whole``: its body was read to its end)."""
    entry.done_t = time.monotonic()
    if not whole:
        entry.end = Ending.CLIENT_GONE
    elif reply.end != _COMPLETE:
        entry.end = Ending.RESET
    elif entry.mid_stream_error and reply.status < 400:
        entry.end = Ending.ERROR
    elif entry.kind is _STREAM and reply.status < 400 and not entry.finished:
        entry.end = Ending.TRUNCATED
    else:
        entry.end = _ENDED_COMPLETE
