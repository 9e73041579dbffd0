"""Fixture layer: redaction, so that no credential of a recording ever reaches disk.

Strategy, in three rules:

Rule 1, fields: the places where credentials live by definition are replaced by ``REDACTED``: the value of
each ``key`` query parameter, the ``x-goog-api-key`` header, the credentials of ``Authorization`` and
``Proxy-Authorization`` (the scheme, e.g. ``Bearer``, is kept), the value of every cookie in ``Cookie`` and
``Set-Cookie`` (cookie names and attributes are kept). User patterns (``--redact REGEX``) are applied to the
request (path, query, headers, body) and the response (headers, body); a pattern with a group replaces only
its first group, so ``"token": "([^"]+)"`` keeps the context.

Rule 2, values: every value removed by rule 1 is remembered, and from then on it is also replaced wherever
else it shows up: in any header, in the request or response body (an error message that echoes a key), raw
or URL-encoded. Values shorter than ``MIN_SECRET_LENGTH`` are only redacted where rule 1 finds them: a
one-letter test key such as ``"x"`` would otherwise blank every ``x`` in a body.

Rule 3, proof: after a fixture is serialised or written, ``check_bytes``/``check_file`` look for every
remembered value in every form (raw, percent-encoded, plus-encoded, JSON-escaped) in the bytes, and in the
loaded fixture's fields, so a body stored as base64 is covered too; a hit raises ``SecretLeakError``.

Replacing text inside the body keeps the chunks and their timing: a replacement lands in the chunk where
the secret started, and chunks left empty are dropped. No I/O here except reading a written file back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from typing import AnyStr
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from ._exceptions import SSEUsageError
from ._fixture_errors import FixtureError
from ._fixture_io import dumps_fixture, loads_fixture, save_fixture
from ._fixture_model import Chunk, Exchange, Fixture, RecordedRequest

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "Redactor",
    "SecretLeakError",
]

REDACTED = "REDACTED"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-goog-api-key", "cookie", "set-cookie"})
SECRET_QUERY_PARAMS = frozenset({"key"})
# Real credentials are long (a Gemini key is 39 characters, a bearer token hundreds); 8 keeps every one of
# them while a test's dummy key ("x", "test") does not blank matching letters all over a recorded body.
MIN_SECRET_LENGTH = 8

_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})


class SecretLeakError(FixtureError):
    """A redacted credential was found in a fixture after writing it (the file is then removed)."""


class Redactor:
    """Redacts requests, responses and whole fixtures, and proves afterwards that nothing leaked.

    One ``Redactor`` lives as long as a recording session: the secrets it has seen (``secrets``) keep being
    scrubbed from later exchanges and are what ``check_bytes``/``check_file`` look for.
    """

    def __init__(self, patterns: Iterable[str | re.Pattern[str]] = (), marker: str = REDACTED) -> None:
        self.marker = marker
        self.secrets: set[str] = set()
        self._needles_for: frozenset[str] = frozenset()
        self._needles_cache: list[str] = []
        self._text_patterns: list[re.Pattern[str]] = []
        self._byte_patterns: list[re.Pattern[bytes]] = []
        for pattern in patterns:
            source = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
            try:
                self._text_patterns.append(re.compile(source))
                self._byte_patterns.append(re.compile(source.encode("utf-8")))
            except re.error as exc:
                raise SSEUsageError(f"redaction pattern {source!r} is not a valid regular expression: {exc}") from None

    # -- rule 1: the fields that hold credentials ---------------------------------------------------------

    def query(self, query: str) -> str:
        """``query`` (raw, without ``?``) with ``key`` values and user patterns redacted."""
        pieces = []
        for piece in query.split("&") if query else []:
            name, equals, value = piece.partition("=")
            if equals and value and unquote_plus(name) in SECRET_QUERY_PARAMS:
                self._remember(value, unquote_plus(value))
                piece = f"{name}={self.marker}"
            pieces.append(piece)
        return self._text("&".join(pieces))

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """``headers`` with credentials and user patterns redacted (names and order kept)."""
        out = []
        for name, value in headers:
            lower = name.lower()
            if lower in _AUTH_HEADERS:
                scheme, space, credentials = value.strip().partition(" ")
                if space and credentials.strip():
                    self._remember(credentials.strip())
                    value = f"{scheme} {self.marker}"
                else:
                    self._remember(value)
                    value = self.marker
            elif lower == "x-goog-api-key":
                self._remember(value.strip())
                value = self.marker
            elif lower == "cookie":
                value = "; ".join(self._cookie(pair) for pair in value.split(";") if pair.strip())
            elif lower == "set-cookie":
                first, semicolon, attributes = value.partition(";")
                value = self._cookie(first) + semicolon + attributes
            out.append((name, self._text(value)))
        return out

    def _cookie(self, pair: str) -> str:
        name, equals, value = pair.strip().partition("=")
        if not equals:  # a bare value: the whole thing is the secret
            self._remember(name)
            return self.marker
        self._remember(value.strip().strip('"'))
        return f"{name}={self.marker}"

    def _remember(self, *values: str) -> None:
        for value in values:
            if value and value != self.marker:
                self.secrets.add(value)

    # -- rule 2: known values everywhere, plus user patterns ------------------------------------------------

    def _text(self, text: str) -> str:
        needles = self._needles()
        if not needles and not self._text_patterns:
            return text
        spans = _pattern_spans(self._text_patterns, text)
        spans += _literal_spans(needles, text)
        return _apply(text, spans, self.marker)

    def _needles(self) -> list[str]:
        """Every form of every secret, longest secret first; worked out again only when the secrets change
        (a replay server redacts each request's headers for its journal: this runs on every request)."""
        key = frozenset(self.secrets)
        if key != self._needles_for:
            self._needles_for = key
            self._needles_cache = [form for secret in self._scrubbed() for form in _forms(secret)]
        return self._needles_cache

    def body(self, data: bytes) -> bytes:
        """A whole body (e.g. a request body) with known secrets and user patterns redacted."""
        return b"".join(chunk.data for chunk in self.chunks([Chunk(data)]))

    def chunks(self, chunks: list[Chunk]) -> list[Chunk]:
        """Response chunks with known secrets and user patterns redacted; chunk times are kept."""
        if not chunks:
            return []
        joined = b"".join(chunk.data for chunk in chunks)
        spans = _pattern_spans(self._byte_patterns, joined)
        spans += _literal_spans(
            [form.encode("utf-8") for form in self._needles()], joined
        )
        for pattern in self._byte_patterns:  # what a user pattern removed from a body is a secret too
            for match in pattern.finditer(joined):
                self._remember(_group_bytes(match).decode("utf-8", "replace"))
        if not spans:
            return list(chunks)
        return _rechunk(chunks, _merge(spans), self.marker.encode("ascii"))

    def _scrubbed(self) -> list[str]:
        # Longest first, so that "Bearer abc…" goes before its own token "abc…".
        return sorted((s for s in self.secrets if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)

    def request(self, request: RecordedRequest) -> RecordedRequest:
        """A redacted copy of ``request``."""
        query = self.query(request.query)
        headers = self.headers(request.headers)
        return RecordedRequest(request.method, self._text(request.path), query, headers, self.body(request.body))

    def exchange(self, exchange: Exchange) -> Exchange:
        """A redacted copy of ``exchange``: its request, response headers and body."""
        request = self.request(exchange.request) if exchange.request is not None else None
        headers = self.headers(exchange.headers)
        chunks = self.chunks(exchange.chunks)
        # Secrets first seen in the response headers (Set-Cookie) are scrubbed from the request as well.
        if request is not None:
            request = RecordedRequest(
                request.method,
                self._text(request.path),
                self._text(request.query),
                [(name, self._text(value)) for name, value in request.headers],
                self.body(request.body),
            )
        return dataclasses.replace(exchange, request=request, headers=headers, chunks=chunks)

    def fixture(self, fixture: Fixture) -> Fixture:
        """A redacted copy of ``fixture`` (every exchange)."""
        exchanges = [self.exchange(exchange) for exchange in fixture.exchanges]
        # A second pass: a secret learnt in exchange 3 may also sit in exchange 1's body.
        exchanges = [self.exchange(exchange) for exchange in exchanges]
        return dataclasses.replace(fixture, exchanges=exchanges)

    # -- rule 3: proof ------------------------------------------------------------------------------------

    def find_leak(self, data: bytes) -> str | None:
        """A description of the first remembered secret found in ``data`` (in any form), or None."""
        for secret in self._scrubbed():
            for form in _forms(secret):
                offset = data.find(form.encode("utf-8"))
                if offset >= 0:
                    shown = secret[:3] + "…" if len(secret) > 3 else "…"
                    return f"a redacted value ({shown}, {len(secret)} characters) at byte offset {offset}"
        return None

    def check_bytes(self, data: bytes, where: str) -> None:
        """Raise ``SecretLeakError`` if a remembered secret is in the serialised fixture ``data``."""
        leak = self.find_leak(data)
        if leak is None:
            try:
                fixture = loads_fixture(data)
            except FixtureError:
                fixture = None
            if fixture is not None:
                leak = self.find_leak(_fields(fixture))
        if leak is not None:
            raise SecretLeakError(f"{where}: {leak}; refusing to keep it")

    def save_checked(self, path: str | os.PathLike[str], fixture: Fixture) -> None:
        """Write an already redacted ``fixture`` atomically, checking the bytes before and the file after."""
        name = os.fspath(path)
        self.check_bytes(dumps_fixture(fixture), name)
        save_fixture(name, fixture)
        self.check_file(name)

    def check_file(self, path: str | os.PathLike[str]) -> None:
        """Check a written fixture; on a leak the file is removed and ``SecretLeakError`` raised."""
        with open(path, "rb") as file:
            data = file.read()
        try:
            self.check_bytes(data, os.fspath(path))
        except SecretLeakError:
            os.unlink(path)
            raise


def _forms(secret: str) -> list[str]:
    """The ways a value can be spelled in a URL, a header or a JSON/text fixture file."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret),
        unquote(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    return sorted((form for form in forms if len(form) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def _fields(fixture: Fixture) -> bytes:
    """Every field of a loaded fixture, decoded, one per line: what the leak check searches."""
    parts: list[bytes] = []
    for exchange in fixture.exchanges:
        if exchange.request is not None:
            request = exchange.request
            parts += [request.path.encode(), request.query.encode(), request.body]
            parts += [f"{name}: {value}".encode() for name, value in request.headers]
        parts += [f"{name}: {value}".encode() for name, value in exchange.headers]
        parts.append(exchange.body)
    return b"\n".join(parts)


def _group_span(match: re.Match[AnyStr]) -> tuple[int, int]:
    return match.span(1) if match.re.groups and match.start(1) >= 0 else match.span()


def _group_bytes(match: re.Match[bytes]) -> bytes:
    start, end = _group_span(match)
    return match.string[start:end]


def _pattern_spans(patterns: list[re.Pattern[AnyStr]], text: AnyStr) -> list[tuple[int, int]]:
    return [
        span for pattern in patterns for match in pattern.finditer(text) if (span := _group_span(match))[1] > span[0]
    ]


def _literal_spans(needles: list[AnyStr], text: AnyStr) -> list[tuple[int, int]]:
    spans = []
    for needle in needles:
        start = text.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = text.find(needle, start + len(needle))
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:  # overlapping, not merely adjacent
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _apply(text: AnyStr, spans: list[tuple[int, int]], marker: str) -> AnyStr:
    if not spans:
        return text
    out = []
    position = 0
    for start, end in _merge(spans):
        out += [text[position:start]]
        position = end
        out.append(marker if isinstance(text, str) else marker.encode("ascii"))
    out.append(text[position:])
    return text[:0].join(out)


def _rechunk(chunks: list[Chunk], spans: list[tuple[int, int]], marker: bytes) -> list[Chunk]:
    """Apply merged ``spans`` of the joined body to ``chunks``: a marker goes where its span starts."""
    pieces: list[list[bytes]] = [[] for _ in chunks]
    bounds = []
    offset = 0
    for chunk in chunks:
        bounds.append((offset, offset + len(chunk.data)))
        offset += len(chunk.data)
    span_index = 0
    for index, (start, end) in enumerate(bounds):
        position = start
        while position < end:
            while span_index < len(spans) and spans[span_index][1] <= position:
                span_index += 1
            if span_index < len(spans) and spans[span_index][0] <= position:
                span_start, span_end = spans[span_index]
                if span_start >= start:  # the secret starts in this chunk: the marker goes here
                    pieces[index].append(marker)
                position = min(end, span_end)
                continue
            stop = min(end, spans[span_index][0]) if span_index < len(spans) else end
            pieces[index].append(chunks[index].data[position - start : stop - start])
            position = stop
    out = []
    for chunk, parts in zip(chunks, pieces):
        data = b"".join(parts)
        if data:
            out.append(Chunk(data, chunk.t))
    return out
