"""Replay layer: the Gemini REST API as a replay app (routing, fixture matching, format conversion) and
:class:`ReplayServer`, the loopback server that serves fixtures with it.

Routes (as the real API; ``{version}`` is ``v1``, ``v1beta``, ``v1alpha``, ...):
  * ``POST|GET /{version}/models/{model}:streamGenerateContent?alt=sse`` -> the recorded SSE bytes exactly,
    in their recorded chunks and timing; ``text/event-stream``, ``Content-Disposition: attachment``.
    Without ``alt=sse`` (also ``$alt=json;enum-encoding=int``) -> the same responses as one streamed JSON
    array, ``application/json; charset=UTF-8``. A fixture recorded in the other format is converted event
    by event, each element sent when its event was. GET is allowed so that ``EventSource`` can connect.
  * ``POST /{version}/models/{model}:generateContent`` -> the stream merged into the final response,
    pretty-printed as the API prints unary answers; a stream that failed mid-way answers its error.
  * ``POST /{version}/models/{model}:countTokens`` -> ``{"totalTokens": N}`` with N the
    ``promptTokenCount`` of the last ``usageMetadata`` in the fixture (plus its ``promptTokensDetails``).
  * ``GET /{version}/models`` -> the models the fixtures name; ``GET /{version}/models/{model}`` -> one.
  * ``OPTIONS`` anything -> CORS preflight; every response carries ``Access-Control-Allow-Origin``.
  * any other path -> a non-Gemini fixture served as a plain ``text/event-stream`` (generic SSE).
A fixture recorded with a request to the same kind of endpoint (or with an error status) is served as
recorded, byte for byte.

Matching (several fixtures, e.g. a directory):
  1. With a single fixture, every Gemini request gets it, whatever model it names.
  2. Otherwise a fixture is a candidate when it names the requested model: in its recorded request path,
     else (plain bodies) as a ``modelVersion`` in its body; and any fixture whose file name without
     extensions equals the requested model (``models/cats:streamGenerateContent`` picks ``cats.sse``).
     Failing that, a ``modelVersion`` with a suffix (``gemini-2.0-flash-001``) matches
     ``gemini-2.0-flash``; failing that, fixtures that name no model at all (and are not only errors).
  3. Among candidates, the best recorded request wins: same body (as JSON) first, then the same method
     (``:streamGenerateContent`` ...), then a fixture without errors or breaks; then the first by file name.
  4. A fixture with several exchanges serves them in order, one per request; the last one repeats.
  5. No candidate: 404 with a JSON body naming the request and listing what is available.
  Generic paths: a fixture recorded for that path, else the non-Gemini fixture whose file name is the last
  path segment, else the only non-Gemini fixture (or the only fixture).

Scenarios and the journal (see ``_replay_script`` and ``_replay_verdict``): ``ReplayServer.script(*steps)``
queues what successive requests get (each request that gets a fixture takes the next step; the last
repeats); every request is journaled in ``ReplayServer.requests``. Reserved paths, for clients in any
language (never journaled, never matched against fixtures):
  * ``POST /_sse/script`` with a JSON list of steps (or ``{"steps": [...]}``) sets the script; ``GET`` shows it;
  * ``GET /_sse/journal`` -> ``{"requests": [...]}``, each entry as ``JournalEntry.to_dict()``;
  * ``GET /_sse/verdict?strict=1&result_text=...`` (or ``POST`` a JSON object with ``strict``,
    ``result_text``, ``max_attempts``) -> ``{"findings": [...], "requests": N, "passed": bool}``;
  * ``POST /_sse/reset`` forgets the journal, the script, queued faults and where each fixture was.
Precedence of faults for one request: the ``x-sse-replay-faults`` header, then faults queued with
``add_faults``, then the script's next step, then the server's ``faults``.

Keys: the key is taken from ``?key=`` or ``x-goog-api-key``. With ``require_key`` set, a missing key gets
the API's 403 PERMISSION_DENIED body and (when ``require_key`` is a string) a different key the 400
INVALID_ARGUMENT / API_KEY_INVALID body.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import orjson

from ..parser._exceptions import SSEUsageError
from ..fixture._io import load_fixture, loads_fixture, preview, split_body
from ..fixture._model import End, Exchange, Fixture
from ..fixture._pace import iter_schedule, schedule
from ..fixture._redact import Redactor
from ..gemini._errors import GeminiError
from ..gemini._merge import merge_responses
from ..gemini._stream import iter_responses
from ..gemini._wire import dumps_pretty, encode_json_array, encode_sse_event, error_body
from ..parser._http_head import find_header
from ._faults import (
    Faults,
    error_reply_body,
    inject,
    parse_faults,
    retry_after_header,
)
from ._scenario import Script, Step, parse_steps
from ..server._loop import LoopbackServer, ReplayError, ReplayRequest, Reply
from ._verdict import (
    END_CLIENT_GONE,
    END_ERROR,
    END_RESET,
    END_TRUNCATED,
    Finding,
    JournalEntry,
    format_findings,
    verdict,
)
from ._verdict import (
    END_COMPLETE as JOURNAL_COMPLETE,
)

__all__ = ["FAULTS_HEADER", "ReplayServer", "ReplaySource", "load_catalog"]

FAULTS_HEADER = "x-sse-replay-faults"  # per-request faults, e.g. "status=503" or "rechunk=1, seed=4"

_GEMINI = re.compile(r"^/(?P<version>v\d+(?:alpha|beta)?\d*)/(?P<model>models/[^/:]+)(?::(?P<method>[A-Za-z]+))?$")
_MODELS = re.compile(r"^/(?P<version>v\d+(?:alpha|beta)?\d*)/models/?$")
_STREAM, _UNARY, _COUNT = "streamGenerateContent", "generateContent", "countTokens"
SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Content-Disposition", "attachment"),
    ("Vary", "Origin, X-Origin, Referer"),
    ("X-Content-Type-Options", "nosniff"),
]
_JSON_HEADERS = [
    ("Content-Type", "application/json; charset=UTF-8"),
    ("Vary", "Origin, X-Origin, Referer"),
    ("X-Content-Type-Options", "nosniff"),
]
# Recorded response headers that replay must not repeat: framing is redone, and CORS is the server's own.
_DROP_RECORDED = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding", "date", "alt-svc",
     "server-timing", "set-cookie", "access-control-allow-origin", "access-control-allow-credentials"}
)
_CONTROL = "/_sse/"  # reserved paths: script, journal, verdict, reset
_TRACK_BYTES = 1024 * 1024  # the journal keeps at most this much of a response to count its events
_MAX_JOURNAL = 10_000  # entries kept; a long-running `--serve` drops the oldest half beyond this
_FIXTURE_SKIP = re.compile(r"(^\.|^README|\.md$|\.rst$|\.py$|~$)", re.IGNORECASE)

ReplaySource = Union[str, "os.PathLike[str]", bytes, Fixture, Exchange, Any]


# ---------------------------------------------------------------------------------------------------------
# The catalog: fixtures with what they tell about themselves


def _body_kind(exchange: Exchange) -> str:
    """``sse``, ``json`` (array) or ``one`` (a single JSON document or anything else)."""
    start = preview(exchange).body.lstrip(b" \t\r\n\xef\xbb\xbf")  # a big file: its first 64 KiB
    if start.startswith(b"data:"):
        return "sse"
    if start.startswith(b"["):
        return "json"
    content_type = (exchange.header("content-type") or "").lower()
    return "sse" if "event-stream" in content_type else "one"


def _responses(exchange: Exchange) -> tuple[list[dict[str, Any]], list[int], bytes | None]:
    """The response objects of a Gemini body, the index of the body piece each one completes in, and the
    raw mid-stream error (or None). Pieces are ``split_body`` pieces of the recorded body."""
    kind = _body_kind(exchange)
    pieces = split_body(exchange.body, "application/json" if kind == "json" else "text/event-stream")
    objects: list[dict[str, Any]] = []
    where: list[int] = []
    error: bytes | None = None
    for index, piece in enumerate(pieces):
        text = piece.strip(b" \t\r\n,[]") if kind == "json" else piece.strip()
        if kind == "sse" and text.startswith(b"data:"):
            text = b"\n".join(line[5:].lstrip(b" ") for line in text.splitlines() if line.startswith(b"data:"))
        if not text:
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and "error" in value:
            error = piece.strip(b",[] \t\r\n") + b"\n" if kind == "json" else piece
            break
        if isinstance(value, dict):
            objects.append(value)
            where.append(index)
    return objects, where, error


def _event_ends(body: bytes, kind: str) -> list[int]:
    """Body offsets just after each event (SSE) or array element (JSON), for faults that count events.

    Remembered for the last few bodies (up to 256 KiB each): every request for a fixture sends, and the
    journal counts, the same bytes; splitting them again costs ~1 ms of CPU per request."""
    small = len(body) <= _ENDS_CACHE_BODY
    if small:
        cached = _ends_cache.get((kind, body))
        if cached is not None:
            return list(cached)
    pieces = split_body(body, "application/json" if kind == "json" else "text/event-stream")
    ends, offset = [], 0
    for piece in pieces:
        offset += len(piece)
        if kind == "json" or piece.endswith((b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r\n", b"\r\n\n")):
            ends.append(offset)
    if small:
        with _ends_lock:
            _ends_cache[(kind, body)] = tuple(ends)
            while len(_ends_cache) > _ENDS_CACHE_SIZE:
                del _ends_cache[next(iter(_ends_cache))]  # the oldest
    return ends


_ENDS_CACHE_BODY = 256 * 1024
_ENDS_CACHE_SIZE = 32  # at most 8 MiB of bodies kept
_ends_cache: dict[tuple[str, bytes], tuple[int, ...]] = {}
_ends_lock = threading.Lock()


def _is_gemini(exchange: Exchange) -> bool:
    request = exchange.request
    if request is not None and request.path:
        return bool(_GEMINI.match(request.path))
    objects, _, error = _responses(exchange)
    known = ("candidates", "usageMetadata", "promptFeedback", "modelVersion", "responseId")
    return error is not None or any(any(k in obj for k in known) for obj in objects)


@dataclass
class _Entry:
    name: str
    fixture: Fixture
    gemini: bool
    models: list[str]  # model ids it names, e.g. "gemini-2.0-flash"
    named_by_request: bool
    stem: str  # the file name without extensions: a request may name the fixture as its model
    errors_only: bool  # every exchange is an error: never a stand-in for another model
    clean: bool  # no exchange is an error or a break: preferred among equal matches
    cursor: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_exchange(self) -> Exchange:
        with self.lock:
            index = min(self.cursor, len(self.fixture.exchanges) - 1)
            self.cursor += 1
        return self.fixture.exchanges[index]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fixture": self.name, "kind": "gemini" if self.gemini else "sse"}
        out["name"] = self.stem
        if self.models:
            out["models"] = self.models
        paths = sorted({e.request.path for e in self.fixture.exchanges if e.request is not None})
        if paths:
            out["recorded"] = paths
        return out


def _entry(name: str, fixture: Fixture) -> _Entry:
    if not fixture.exchanges:
        raise ReplayError(f"{name}: the fixture holds no exchange")
    # A fixture streamed from disk is judged by its first 64 KiB (reading 1 GiB at start would not do).
    probe = [preview(e) for e in fixture.exchanges]
    gemini = any(_is_gemini(e) for e in probe)
    models: list[str] = []
    by_request = False
    for exchange in probe:
        if exchange.request is not None and (m := _GEMINI.match(exchange.request.path)):
            models.append(m["model"].split("/", 1)[1])
            by_request = True
    if not by_request and gemini:
        for exchange in probe:
            for obj in _responses(exchange)[0]:
                if isinstance(obj.get("modelVersion"), str):
                    models.append(obj["modelVersion"].removeprefix("models/"))
    failing = [e.status != 200 or e.end != End.COMPLETE or _responses(e)[2] is not None for e in probe]
    errors_only = all(failing)
    stem = Path(name).name.split(".")[0]
    return _Entry(name, fixture, gemini, list(dict.fromkeys(models)), by_request, stem, errors_only, not any(failing))


def _load_path(path: Path) -> list[_Entry]:
    if path.is_dir():
        inside = path.resolve()  # a symlink that leads out of the directory is never served
        files = sorted(
            p for p in path.iterdir()
            if p.is_file() and not _FIXTURE_SKIP.search(p.name) and p.resolve().is_relative_to(inside)
        )
        if not files:
            raise ReplayError(f"{path}: no fixture files in this directory")
        return [_entry(str(p), load_fixture(p)) for p in files]
    return [_entry(str(path), load_fixture(path))]


def load_catalog(source: ReplaySource | Sequence[ReplaySource]) -> list[_Entry]:
    """Everything the server can serve: a path (fixture file or directory), fixture bytes, a ``Fixture``,
    an ``Exchange``, a scripted stream (anything with ``to_fixture()``), or a list of these."""
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    entries: list[_Entry] = []
    for number, item in enumerate(items, 1):
        if isinstance(item, (str, os.PathLike)):
            entries.extend(_load_path(Path(item)))
        elif isinstance(item, (bytes, bytearray)):
            entries.append(_entry(f"<bytes {number}>", loads_fixture(bytes(item), f"<bytes {number}>")))
        elif isinstance(item, Fixture):
            entries.append(_entry(item.source or f"<fixture {number}>", item))
        elif isinstance(item, Exchange):
            entries.append(_entry(f"<exchange {number}>", Fixture([item])))
        elif callable(getattr(item, "to_fixture", None)):
            fixture = item.to_fixture()  # type: ignore[union-attr]
            entries.append(_entry(fixture.source or f"<{type(item).__name__} {number}>", fixture))
        else:
            raise ReplayError(f"cannot serve a {type(item).__name__}: give a path, bytes, Fixture or Exchange")
    if not entries:
        raise ReplayError("nothing to serve: no fixture given")
    return entries


# ---------------------------------------------------------------------------------------------------------
# The app


def _api_error(status: int, body: bytes, extra: list[tuple[str, str]] = ()) -> Reply:  # type: ignore[assignment]
    return Reply(status, [*_JSON_HEADERS, *extra], [(0.0, body)], stream=False)


def _pretty(value: Any) -> bytes:
    # Unary answers come pretty-printed with 2-space indents, like the API's error bodies.
    return dumps_pretty(value) + b"\n"


def _key_problem(request: ReplayRequest, require_key: str | bool | None) -> Reply | None:
    if require_key is None or require_key is False:
        return None
    key = request.params.get("key") or request.header("x-goog-api-key")
    if not key:
        return _api_error(
            403,
            error_body(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            ),
        )
    if isinstance(require_key, str) and require_key and key != require_key:
        message = "API key not valid. Please pass a valid API key."
        return _api_error(
            400,
            error_body(
                400,
                "INVALID_ARGUMENT",
                message,
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
                ],
            ),
        )
    return None


def _cors(request: ReplayRequest) -> list[tuple[str, str]]:
    origin = request.header("origin")
    headers = [("Access-Control-Allow-Origin", origin or "*")]
    if origin:
        headers.append(("Vary", "Origin"))
    headers.append(("Access-Control-Expose-Headers", "Content-Disposition, Retry-After"))
    return headers


def _same_json(a: bytes, b: bytes) -> bool:
    try:
        return bool(orjson.loads(a) == orjson.loads(b))
    except orjson.JSONDecodeError:
        return a == b


class GeminiReplayApp:
    """The request handler: routes a request, picks a fixture and plans the response (see module doc)."""

    cpu_only = True  # never waits for the network: the server calls it from its one loop

    def __init__(
        self,
        entries: list[_Entry],
        speed: float = 1.0,
        faults: Faults | None = None,
        require_key: str | bool | None = None,
    ) -> None:
        schedule(Exchange(), speed)  # validates speed once, with the fixture layer's message
        self.entries = entries
        self.speed = speed
        self.faults = faults or Faults()
        self.require_key = require_key
        self._queued: list[Faults] = []
        self._lock = threading.Lock()
        self.script = Script()
        self.journal: list[JournalEntry] = []
        self._count = 0
        self._redactor = Redactor()
        self._texts: dict[Any, str | None] = {}  # per exchange: its whole answer, its recorded error
        self._kinds: dict[int, str] = {}  # per exchange: its body kind
        self._headers: dict[tuple[int, tuple[str, str]], list[tuple[str, str]]] = {}  # per exchange: as sent
        # The journal's redacted query and headers, by what a request sent (and how many secrets are known):
        # a client sends the same headers with every request, and redacting them is most of a journal entry.
        self._redacted: dict[tuple[Any, ...], tuple[str, list[tuple[str, str]]]] = {}

    def queue_faults(self, faults: Faults, count: int = 1) -> None:
        with self._lock:
            self._queued.extend([faults] * count)

    def reset(self) -> None:
        """Forget the journal, the script, queued faults and each fixture's position."""
        with self._lock:
            self._queued.clear()
            self.journal.clear()
            self._count = 0
        self.script.clear()
        for entry in self.entries:
            with entry.lock:
                entry.cursor = 0

    def _faults_for(self, request: ReplayRequest, journal: JournalEntry | None = None) -> Faults:
        spec = request.header(FAULTS_HEADER)
        if spec is not None:
            return parse_faults(spec)
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
        step = self.script.next()
        if step is not None:
            if journal is not None:
                journal.step, journal.step_text = step.index, step.describe()
            return step.faults
        return self.faults

    # -- journal -------------------------------------------------------------------------------------
    def _journal(self, request: ReplayRequest) -> JournalEntry:
        m = _GEMINI.match(request.path)
        kind = "sse"
        if _MODELS.match(request.path) or (m is not None and m["method"] is None):
            kind = "models"
        elif m is not None:
            kind = {_STREAM: "stream", _UNARY: "unary", _COUNT: "count"}.get(m["method"], "other")
        with self._lock:
            query, headers = self._redact(request)
            entry = JournalEntry(
                index=self._count, t=time.monotonic(), wall=time.time(), method=request.method,
                path=request.path, query=query, headers=headers, body=request.body,
                model=m["model"].split("/", 1)[1] if m is not None else None, kind=kind, request=request,
            )
            self._count += 1
            self.journal.append(entry)
            if len(self.journal) > _MAX_JOURNAL:
                del self.journal[: _MAX_JOURNAL // 2]
        return entry

    def _redact(self, request: ReplayRequest) -> tuple[str, list[tuple[str, str]]]:
        """The request's query and headers as the journal keeps them (called holding the lock)."""
        key = (request.query, tuple(request.headers), len(self._redactor.secrets))
        done = self._redacted.get(key)
        if done is None:
            done = (self._redactor.query(request.query), self._redactor.headers(request.headers))
            if len(self._redacted) >= 256:
                self._redacted.clear()
            self._redacted[key] = done
        return done[0], list(done[1])

    def _recorded_error(self, exchange: Exchange) -> bool:
        """Whether the recording ends with the raw mid-stream error (a fixture streamed from disk: judged
        by its first 64 KiB, as the catalog does, so that serving it never reads it whole)."""
        key = ("error", id(exchange))
        if key not in self._texts:
            self._texts[key] = "1" if _responses(preview(exchange))[2] is not None else ""
        return bool(self._texts[key])

    def _full_text(self, exchange: Exchange) -> str | None:
        """The whole answer of a Gemini exchange: the text of the first candidate's non-thought parts."""
        key = id(exchange)
        if key not in self._texts:
            objects, _, _ = _responses(exchange)
            parts = [
                part.get("text", "")
                for obj in objects
                for candidate in (obj.get("candidates") or [])[:1]
                for part in ((candidate.get("content") or {}).get("parts") or [])
                if isinstance(part, dict) and not part.get("thought")
            ]
            self._texts[key] = "".join(p for p in parts if isinstance(p, str)) if objects else None
        return self._texts[key]

    def _track(self, entry: JournalEntry, reply: Reply) -> None:
        """Count what goes out: the server asks for a piece only once the one before is sent."""
        entry.status = reply.status
        chunks = reply.chunks
        want = "json" if "json" in (find_header(reply.headers, "content-type") or "") else "sse"

        def tracked() -> Any:
            sent = bytearray()
            ended = False
            # Past _TRACK_BYTES (a big fixture streamed from disk) only counts are kept: a piece is an event.
            total, more_events, last = 0, 0, b""
            try:
                for t, data in chunks:
                    yield t, data
                    total += len(data)
                    if total <= _TRACK_BYTES:
                        sent.extend(data)
                    else:
                        more_events, last = more_events + 1, data
                    entry.bytes = total
                ended = True
            finally:
                entry.done_t = time.monotonic()
                body = bytes(sent)
                if reply.status < 400:
                    entry.events = (len(_event_ends(body, want)) if body.strip() else 0) + more_events
                    entry.finished = b'"finishReason"' in body or b'"finishReason"' in last
                if not ended:
                    entry.end = END_CLIENT_GONE
                elif reply.end != End.COMPLETE:
                    entry.end = End.RESET
                elif entry.mid_stream_error and reply.status < 400:
                    entry.end = END_ERROR
                elif entry.kind == "stream" and reply.status < 400 and not entry.finished:
                    entry.end = END_TRUNCATED
                else:
                    entry.end = JOURNAL_COMPLETE

        reply.chunks = tracked()

    def _control(self, request: ReplayRequest) -> Reply:
        what = request.path[len(_CONTROL):].strip("/")
        try:
            if what == "journal" and request.method == "GET":
                return _api_error(200, _pretty({"requests": [e.to_dict() for e in list(self.journal)]}))
            if what == "script" and request.method == "GET":
                return _api_error(200, _pretty({"steps": [s.spec for s in self.script.steps]}))
            if what == "script" and request.method in ("POST", "PUT"):
                value = orjson.loads(request.body or b"null")
                if isinstance(value, dict) and set(value) == {"steps"}:
                    value = value["steps"]
                if not isinstance(value, list):
                    raise ReplayError(f"expected a JSON list of steps, got {type(value).__name__}")
                steps = parse_steps(value)
                self.script.set(steps)
                return _api_error(200, _pretty({"steps": len(steps)}))
            if what == "reset" and request.method == "POST":
                self.reset()
                return _api_error(200, _pretty({"reset": True}))
            if what == "verdict" and request.method in ("GET", "POST"):
                options: dict[str, Any] = dict(request.params)
                if request.method == "POST" and request.body.strip():
                    options.update(orjson.loads(request.body))
                strict = str(options.get("strict", "")).lower() in ("1", "true", "yes")
                result = options.get("result_text")
                max_attempts = int(options.get("max_attempts") or 5)
                journal = [e for e in list(self.journal) if e.end != "pending"]
                findings = verdict(journal, strict=strict, result_text=result, max_attempts=max_attempts)
                return _api_error(200, _pretty({
                    "requests": len(journal),
                    "passed": not any(f.severity == "error" for f in findings),
                    "findings": [f.to_dict() for f in findings],
                    "report": format_findings(findings, len(journal)),
                }))
        except (ReplayError, orjson.JSONDecodeError, ValueError, TypeError) as exc:
            return _api_error(400, error_body(400, "INVALID_ARGUMENT", f"sse-replay: {request.path}: {exc}"))
        return _api_error(404, error_body(
            404, "NOT_FOUND",
            f"sse-replay: {request.method} {request.path} is not a control endpoint (GET /_sse/journal, "
            "GET|POST /_sse/script, GET|POST /_sse/verdict, POST /_sse/reset)",
        ))

    # -- entry point ---------------------------------------------------------------------------------
    def __call__(self, request: ReplayRequest) -> Reply:
        cors = _cors(request)
        if request.path.startswith(_CONTROL):
            reply = self._control(request)
            reply.headers = [*reply.headers, *cors]
            return reply
        entry = self._journal(request)
        if request.method == "OPTIONS":
            asked = request.header("access-control-request-headers")
            headers = [
                *cors,
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", asked or "content-type, x-goog-api-key, x-goog-api-client"),
                ("Access-Control-Max-Age", "3600"),
            ]
            reply = Reply(204, headers, stream=False)
            self._track(entry, reply)
            return reply
        try:
            reply = _key_problem(request, self.require_key) or self._route(request, entry)
        except SSEUsageError as exc:  # e.g. a malformed x-sse-replay-faults header: the caller's mistake
            reply = _api_error(400, error_body(400, "INVALID_ARGUMENT", f"sse-replay: {exc}"))
        except BaseException:
            entry.end, entry.status = END_CLIENT_GONE, 500
            raise
        reply.headers = [*reply.headers, *cors]
        self._track(entry, reply)
        return reply

    def _route(self, request: ReplayRequest, journal: JournalEntry | None = None) -> Reply:
        if m := _MODELS.match(request.path):
            return self._models_list()
        m = _GEMINI.match(request.path)
        if m is None:
            return self._generic(request, journal)
        model = m["model"].split("/", 1)[1]
        method = m["method"]
        if method is None and request.method == "GET":
            return self._model_info(model)
        if method not in (_STREAM, _UNARY, _COUNT):
            return self._not_found(request, f"method {method!r} is not replayed")
        entry = self._match(request, model, method)
        if entry is None:
            return self._not_found(request, f"no fixture for model {model!r}")
        faults = self._faults_for(request, journal)
        exchange = entry.next_exchange()
        if journal is not None:
            journal.answer_source = functools.partial(self._full_text, exchange)  # only if a verdict asks
        if faults.status is not None:
            if journal is not None and faults.status == 429:
                journal.retry_delay = float(faults.retry_after)
            return self._status_fault(faults)
        if method == _STREAM:
            alt = request.params.get("alt") or request.params.get("$alt") or ""
            reply = self._stream(exchange, "sse" if alt == "sse" else "json", faults)
            if journal is not None:
                journal.mid_stream_error = faults.error_after is not None or self._recorded_error(exchange)
            return reply
        reply = self._unary(exchange, method)
        reply.head_t = (reply.head_t or 0.0) + faults.latency
        return reply

    # -- matching ------------------------------------------------------------------------------------
    def _match(self, request: ReplayRequest, model: str, method: str) -> _Entry | None:
        gemini = [e for e in self.entries if e.gemini]
        if len(self.entries) == 1:
            return self.entries[0] if gemini else None
        candidates = (
            [e for e in gemini if model in e.models or model == e.stem]
            or [e for e in gemini if any(m.startswith(model + "-") for m in e.models)]
            or [e for e in gemini if not e.models and not e.errors_only]
        )
        if not candidates:
            return None

        def score(entry: _Entry) -> tuple[int, bool]:
            best = 0
            for exchange in entry.fixture.exchanges:
                recorded = exchange.request
                if recorded is None:
                    continue
                value = 0
                if request.body and recorded.body and _same_json(request.body, recorded.body):
                    value += 2
                rm = _GEMINI.match(recorded.path)
                if rm is not None and rm["method"] == method:
                    value += 1
                best = max(best, value)
            return best, entry.clean  # then a stream that ends well before an error or a break

        return max(candidates, key=score)  # max keeps the first of equal scores

    # -- answers -------------------------------------------------------------------------------------
    def _status_fault(self, faults: Faults) -> Reply:
        extra = [("Retry-After", retry_after_header(faults.retry_after))] if faults.status == 429 else []
        reply = _api_error(faults.status or 500, error_reply_body(faults.status or 500, faults.retry_after), extra)
        reply.head_t = faults.latency
        return reply

    def _recorded_headers(self, exchange: Exchange, fallback: list[tuple[str, str]]) -> list[tuple[str, str]]:
        key = (id(exchange), fallback[0])  # the app keeps every exchange alive: ids stay unique
        kept = self._headers.get(key)
        if kept is None:
            kept = [(k, v) for k, v in exchange.headers if k.lower() not in _DROP_RECORDED]
            if not any(k.lower() == "content-type" for k, _ in kept):
                kept = [*fallback[:1], *kept]
            self._headers[key] = kept
        return list(kept)

    def _kind(self, exchange: Exchange) -> str:
        """``_body_kind`` of one of the served exchanges, worked out once (it joins the whole body)."""
        kind = self._kinds.get(id(exchange))  # the app keeps every exchange alive: ids stay unique
        if kind is None:
            kind = self._kinds[id(exchange)] = _body_kind(exchange)
        return kind

    def _stream(self, exchange: Exchange, want: str, faults: Faults) -> Reply:
        kind = self._kind(exchange)
        head_t = exchange.head_t / self.speed if exchange.head_t and self.speed else 0.0
        if exchange.status != 200 or kind == want or kind == "one":
            # As recorded: the exact bytes in their recorded chunks and timing.
            fallback = SSE_HEADERS if want == "sse" else _JSON_HEADERS
            headers = self._recorded_headers(exchange, fallback) if exchange.headers else list(fallback)
            pieces: Iterable[tuple[float, bytes]] = iter_schedule(exchange, self.speed)  # lazy: a big file stays on disk
            ends = _event_ends(exchange.body, kind) if faults.active else []
            end = exchange.end
        else:
            headers = list(SSE_HEADERS if want == "sse" else _JSON_HEADERS)
            pieces, ends, end = self._convert(exchange, want)
        pieces, end = inject(list(pieces), ends, faults, end) if faults.active else (pieces, end)
        return Reply(exchange.status, headers, pieces, end=end, head_t=head_t + faults.latency or None)

    def _convert(self, exchange: Exchange, want: str) -> tuple[list[tuple[float, bytes]], list[int], str]:
        """Re-frame a recording in the other format; each new piece goes out when its event did."""
        kind = self._kind(exchange)
        objects, where, error = _responses(exchange)
        # When was each split_body piece of the body complete? At the recorded chunk holding its last byte.
        plan = schedule(exchange, self.speed)
        piece_times: list[float] = []
        bounds = [len(p) for p in split_body(exchange.body, "application/json" if kind == "json" else "text/event-stream")]
        offset, i, consumed = 0, 0, 0
        for length in bounds:
            offset += length
            while i < len(plan) - 1 and consumed + len(plan[i][1]) < offset:
                consumed += len(plan[i][1])
                i += 1
            piece_times.append(plan[i][0] if plan else 0.0)
        times = [piece_times[w] for w in where]
        if want == "sse":
            encoded = [encode_sse_event(obj) for obj in objects]
        else:
            encoded = encode_json_array(objects)
        pieces = [(times[min(n, len(times) - 1)] if times else 0.0, data) for n, data in enumerate(encoded)]
        ends, total = [], 0
        for _, data in pieces:
            total += len(data)
            ends.append(total)
        if error is not None:
            pieces.append((piece_times[-1] if piece_times else 0.0, error))
        return pieces, ends, exchange.end

    def _unary(self, exchange: Exchange, method: str) -> Reply:
        recorded = exchange.request
        rm = _GEMINI.match(recorded.path) if recorded is not None else None
        if exchange.status != 200 or (rm is not None and rm["method"] == method):
            headers = self._recorded_headers(exchange, _JSON_HEADERS) if exchange.headers else list(_JSON_HEADERS)
            return Reply(exchange.status, headers, [(0.0, exchange.body)], stream=False)
        objects, _, error = _responses(exchange)
        if error is not None:
            try:
                code = int(orjson.loads(error)["error"]["code"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                code = 500
            return _api_error(code, error)
        if method == _COUNT:
            usage: dict[str, Any] = {}
            for obj in objects:
                usage = obj.get("usageMetadata") or usage
            answer: dict[str, Any] = {"totalTokens": int(usage.get("promptTokenCount", 0))}
            if usage.get("cachedContentTokenCount"):
                answer["cachedContentTokenCount"] = usage["cachedContentTokenCount"]
            if usage.get("promptTokensDetails"):
                answer["promptTokensDetails"] = usage["promptTokensDetails"]
            return _api_error(200, _pretty(answer))
        try:
            merged = merge_responses(iter_responses([exchange.body]))
        except GeminiError as exc:
            raise ReplayError(f"cannot merge the recorded stream for :generateContent: {exc}") from exc
        return _api_error(200, _pretty(merged.to_dict()))

    def _models(self) -> list[str]:
        return sorted({m for e in self.entries if e.gemini for m in e.models})

    def _model_doc(self, model: str) -> dict[str, Any]:
        return {
            "name": f"models/{model}",
            "displayName": model,
            "description": "Replayed from a fixture by sse-replay.",
            "supportedGenerationMethods": [_UNARY, _COUNT, _STREAM],
        }

    def _models_list(self) -> Reply:
        return _api_error(200, _pretty({"models": [self._model_doc(m) for m in self._models()]}))

    def _model_info(self, model: str) -> Reply:
        if model in self._models() or len(self.entries) == 1:
            return _api_error(200, _pretty(self._model_doc(model)))
        return _api_error(404, error_body(404, "NOT_FOUND", f"models/{model} is not found in the replayed fixtures."))

    def _generic(self, request: ReplayRequest, journal: JournalEntry | None = None) -> Reply:
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        plain = [e for e in self.entries if not e.gemini]
        chosen = (
            [e for e in self.entries if any(x.request and x.request.path == request.path for x in e.fixture.exchanges)]
            or [e for e in plain if last and e.stem == last]
            or (plain if len(plain) == 1 else [])
            or (self.entries if len(self.entries) == 1 else [])
        )
        if not chosen:
            return self._not_found(request, "no fixture for this path")
        faults = self._faults_for(request, journal)
        if faults.status is not None:
            return self._status_fault(faults)
        exchange = chosen[0].next_exchange()
        headers = self._recorded_headers(exchange, [("Content-Type", "text/event-stream")])
        if not exchange.headers:
            headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        pieces: Iterable[tuple[float, bytes]] = iter_schedule(exchange, self.speed)
        end = exchange.end
        if faults.active:
            pieces, end = inject(list(pieces), _event_ends(exchange.body, self._kind(exchange)), faults, end)
        return Reply(exchange.status, headers, pieces, end=end, head_t=faults.latency or None)

    def _not_found(self, request: ReplayRequest, why: str) -> Reply:
        body = {
            "error": {
                "code": 404,
                "message": f"sse-replay: {why}: {request.method} {request.path}",
                "status": "NOT_FOUND",
                "request": {"method": request.method, "path": request.path, "query": request.query},
                "available": [e.describe() for e in self.entries],
            }
        }
        return _api_error(404, _pretty(body))


class ReplayServer(LoopbackServer):
    """A loopback server that replays fixtures as the Gemini API (and generic SSE) would send them.

    ``source``: a fixture file, a directory of fixtures, fixture bytes, a ``Fixture``, an ``Exchange``, a
    scripted stream (``GeminiScript``) or a list of these. ``speed``: 1 = recorded pace, 2 = twice as fast,
    0 = no delays. ``faults``: :class:`Faults` applied to every request (``add_faults`` queues one-off
    faults; a request header ``x-sse-replay-faults: status=503`` sets them per request). ``require_key``:
    ``True`` demands some key, a string demands that key.

    >>> with ReplayServer("fixtures/cats.sse") as server:  # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(
        self,
        source: ReplaySource | Sequence[ReplaySource],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        faults: Faults | None = None,
        require_key: str | bool | None = None,
        script: Sequence[Any] | None = None,
        **fault_options: Any,
    ) -> None:
        if fault_options:
            if faults is not None:
                raise ReplayError("give either faults=Faults(...) or fault keywords, not both")
            faults = Faults(**fault_options)
        self.app = GeminiReplayApp(load_catalog(source), speed, faults, require_key)
        super().__init__(self.app, host=host, port=port)
        # What the last assert_resilient() was told: the pytest --sse-verdict-report table judges with it.
        self.verdict_options: dict[str, Any] = {}
        if script is not None:
            self.script(*script)

    # The app keeps the journal (what each request got); LoopbackServer's plain request log is not used.
    @property  # type: ignore[override]
    def requests(self) -> list[JournalEntry]:
        """The journal: every request (but ``/_sse/`` ones) as a :class:`JournalEntry`, oldest first."""
        return list(self.app.journal)

    @requests.setter
    def requests(self, value: Any) -> None:
        pass  # LoopbackServer.__init__ sets its own list; the journal replaces it

    def _log_request(self, request: ReplayRequest) -> None:
        pass

    def script(self, *steps: Any) -> None:
        """Queue what successive requests get: ``"ok"`` or dicts such as ``{"status": 429, "retry_after":
        0.5}``, ``{"truncate_after": 3}`` (see ``_replay_script``); in order, the last repeats. Replaces
        any script set before. A bad step raises ReplayError naming its index."""
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        if steps and all(isinstance(s, Step) for s in steps):
            self.app.script.set(list(steps))
        else:
            self.app.script.set(parse_steps(steps))

    def reset(self) -> None:
        """Forget the journal, the script, queued faults and each fixture's position (as ``POST /_sse/reset``)."""
        self.app.reset()

    def verdict(
        self, *, strict: bool = False, result_text: str | None = None, max_attempts: int = 5
    ) -> list[Finding]:
        """Findings about the client from the journal (see ``_replay_verdict``): empty when it behaved."""
        journal = [e for e in self.requests if e.end != "pending"]
        return verdict(journal, strict=strict, result_text=result_text, max_attempts=max_attempts)

    def assert_resilient(
        self, strict: bool = False, result_text: str | None = None, *, max_attempts: int = 5
    ) -> None:
        """Raise AssertionError listing the findings of severity ``error`` (and the warnings beside them).

        ``strict=True`` turns "gave up after one retryable failure" into an error; ``result_text`` is what
        the application returned, checked against the whole answer of the fixture.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        self.verdict_options = {"strict": strict, "result_text": result_text, "max_attempts": max_attempts}
        findings = self.verdict(**self.verdict_options)
        if any(f.severity == "error" for f in findings):
            raise AssertionError(format_findings(findings, len(self.requests)))

    def add_faults(self, faults: Faults | None = None, count: int = 1, **fault_options: Any) -> None:
        """Apply ``faults`` (or ``Faults(**fault_options)``) to the next ``count`` requests only."""
        self.app.queue_faults(faults or Faults(**fault_options), count)

    @property
    def models(self) -> list[str]:
        """The model names the fixtures name (what ``GET /v1beta/models`` lists)."""
        return self.app._models()

