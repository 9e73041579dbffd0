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

Keys: the key is taken from ``?key=`` or ``x-goog-api-key``. With ``require_key`` set, a missing key gets
the API's 403 PERMISSION_DENIED body and (when ``require_key`` is a string) a different key the 400
INVALID_ARGUMENT / API_KEY_INVALID body.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import orjson

from ._exceptions import SSEUsageError
from ._fixture_io import load_fixture, loads_fixture, split_body
from ._fixture_model import END_COMPLETE, Exchange, Fixture
from ._fixture_pace import schedule
from ._gemini_errors import GeminiError
from ._gemini_merge import merge_responses
from ._gemini_stream import iter_responses
from ._gemini_wire import dumps_pretty, encode_json_array, encode_sse_event, error_body
from ._replay_faults import Faults, error_reply_body, inject, parse_faults
from ._replay_server import LoopbackServer, ReplayError, ReplayRequest, Reply

__all__ = ["FAULTS_HEADER", "ReplayServer", "ReplaySource", "load_catalog"]

FAULTS_HEADER = "x-sse-replay-faults"  # per-request faults, e.g. "status=503" or "rechunk=1, seed=4"

_GEMINI = re.compile(r"^/(?P<version>v\d+(?:alpha|beta)?\d*)/(?P<model>models/[^/:]+)(?::(?P<method>[A-Za-z]+))?$")
_MODELS = re.compile(r"^/(?P<version>v\d+(?:alpha|beta)?\d*)/models/?$")
_STREAM, _UNARY, _COUNT = "streamGenerateContent", "generateContent", "countTokens"
_SSE_HEADERS = [
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
_FIXTURE_SKIP = re.compile(r"(^\.|^README|\.md$|\.rst$|\.py$|~$)", re.IGNORECASE)

ReplaySource = Union[str, "os.PathLike[str]", bytes, Fixture, Exchange, Any]


# ---------------------------------------------------------------------------------------------------------
# The catalog: fixtures with what they tell about themselves


def _body_kind(exchange: Exchange) -> str:
    """``sse``, ``json`` (array) or ``one`` (a single JSON document or anything else)."""
    start = exchange.body.lstrip(b" \t\r\n\xef\xbb\xbf")
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
    """Body offsets just after each event (SSE) or array element (JSON), for faults that count events."""
    pieces = split_body(body, "application/json" if kind == "json" else "text/event-stream")
    ends, offset = [], 0
    for piece in pieces:
        offset += len(piece)
        if kind == "json" or piece.endswith((b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r\n", b"\r\n\n")):
            ends.append(offset)
    return ends


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
    gemini = any(_is_gemini(e) for e in fixture.exchanges)
    models: list[str] = []
    by_request = False
    for exchange in fixture.exchanges:
        if exchange.request is not None and (m := _GEMINI.match(exchange.request.path)):
            models.append(m["model"].split("/", 1)[1])
            by_request = True
    if not by_request and gemini:
        for exchange in fixture.exchanges:
            for obj in _responses(exchange)[0]:
                if isinstance(obj.get("modelVersion"), str):
                    models.append(obj["modelVersion"].removeprefix("models/"))
    failing = [e.status != 200 or e.end != END_COMPLETE or _responses(e)[2] is not None for e in fixture.exchanges]
    errors_only = all(failing)
    stem = Path(name).name.split(".")[0]
    return _Entry(name, fixture, gemini, list(dict.fromkeys(models)), by_request, stem, errors_only, not any(failing))


def _load_path(path: Path) -> list[_Entry]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not _FIXTURE_SKIP.search(p.name))
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

    def queue_faults(self, faults: Faults, count: int = 1) -> None:
        with self._lock:
            self._queued.extend([faults] * count)

    def _faults_for(self, request: ReplayRequest) -> Faults:
        spec = request.header(FAULTS_HEADER)
        if spec is not None:
            return parse_faults(spec)
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
        return self.faults

    # -- entry point ---------------------------------------------------------------------------------
    def __call__(self, request: ReplayRequest) -> Reply:
        cors = _cors(request)
        if request.method == "OPTIONS":
            asked = request.header("access-control-request-headers")
            headers = [
                *cors,
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", asked or "content-type, x-goog-api-key, x-goog-api-client"),
                ("Access-Control-Max-Age", "3600"),
            ]
            return Reply(204, headers, stream=False)
        try:
            reply = _key_problem(request, self.require_key) or self._route(request)
        except SSEUsageError as exc:  # e.g. a malformed x-sse-replay-faults header: the caller's mistake
            reply = _api_error(400, error_body(400, "INVALID_ARGUMENT", f"sse-replay: {exc}"))
        reply.headers = [*reply.headers, *cors]
        return reply

    def _route(self, request: ReplayRequest) -> Reply:
        if m := _MODELS.match(request.path):
            return self._models_list()
        m = _GEMINI.match(request.path)
        if m is None:
            return self._generic(request)
        model = m["model"].split("/", 1)[1]
        method = m["method"]
        if method is None and request.method == "GET":
            return self._model_info(model)
        if method not in (_STREAM, _UNARY, _COUNT):
            return self._not_found(request, f"method {method!r} is not replayed")
        entry = self._match(request, model, method)
        if entry is None:
            return self._not_found(request, f"no fixture for model {model!r}")
        faults = self._faults_for(request)
        exchange = entry.next_exchange()
        if faults.status is not None:
            return self._status_fault(faults)
        if method == _STREAM:
            alt = request.params.get("alt") or request.params.get("$alt") or ""
            return self._stream(exchange, "sse" if alt == "sse" else "json", faults)
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
        extra = [("Retry-After", str(faults.retry_after))] if faults.status == 429 else []
        reply = _api_error(faults.status or 500, error_reply_body(faults.status or 500, faults.retry_after), extra)
        reply.head_t = faults.latency
        return reply

    def _recorded_headers(self, exchange: Exchange, fallback: list[tuple[str, str]]) -> list[tuple[str, str]]:
        kept = [(k, v) for k, v in exchange.headers if k.lower() not in _DROP_RECORDED]
        if not any(k.lower() == "content-type" for k, _ in kept):
            kept = [*fallback[:1], *kept]
        return kept

    def _stream(self, exchange: Exchange, want: str, faults: Faults) -> Reply:
        kind = _body_kind(exchange)
        head_t = exchange.head_t / self.speed if exchange.head_t and self.speed else 0.0
        if exchange.status != 200 or kind == want or kind == "one":
            # As recorded: the exact bytes in their recorded chunks and timing.
            fallback = _SSE_HEADERS if want == "sse" else _JSON_HEADERS
            headers = self._recorded_headers(exchange, fallback) if exchange.headers else list(fallback)
            pieces = schedule(exchange, self.speed)
            ends = _event_ends(exchange.body, kind)
            end = exchange.end
        else:
            headers = list(_SSE_HEADERS if want == "sse" else _JSON_HEADERS)
            pieces, ends, end = self._convert(exchange, want)
        pieces, end = inject(pieces, ends, faults, end) if faults.active else (pieces, end)
        return Reply(exchange.status, headers, pieces, end=end, head_t=head_t + faults.latency or None)

    def _convert(self, exchange: Exchange, want: str) -> tuple[list[tuple[float, bytes]], list[int], str]:
        """Re-frame a recording in the other format; each new piece goes out when its event did."""
        kind = _body_kind(exchange)
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

    def _generic(self, request: ReplayRequest) -> Reply:
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
        faults = self._faults_for(request)
        if faults.status is not None:
            return self._status_fault(faults)
        exchange = chosen[0].next_exchange()
        headers = self._recorded_headers(exchange, [("Content-Type", "text/event-stream")])
        if not exchange.headers:
            headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        pieces = schedule(exchange, self.speed)
        end = exchange.end
        if faults.active:
            pieces, end = inject(pieces, _event_ends(exchange.body, _body_kind(exchange)), faults, end)
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
        **fault_options: Any,
    ) -> None:
        if fault_options:
            if faults is not None:
                raise ReplayError("give either faults=Faults(...) or fault keywords, not both")
            faults = Faults(**fault_options)
        self.app = GeminiReplayApp(load_catalog(source), speed, faults, require_key)
        super().__init__(self.app, host=host, port=port)

    def add_faults(self, faults: Faults | None = None, count: int = 1, **fault_options: Any) -> None:
        """Apply ``faults`` (or ``Faults(**fault_options)``) to the next ``count`` requests only."""
        self.app.queue_faults(faults or Faults(**fault_options), count)

    @property
    def models(self) -> list[str]:
        """The model names the fixtures name (what ``GET /v1beta/models`` lists)."""
        return self.app._models()

