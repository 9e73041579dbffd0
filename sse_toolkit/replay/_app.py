"""Replay layer: the Gemini REST API (with its Vertex AI and OpenAI-compatible faces) as a replay app: the
routing table, the control endpoints, keys and CORS.

Each request is looked up in :data:`ROUTES`, a table of ``(methods, path pattern, journal kind, handler,
API)`` rows tried in order (a new endpoint is a new row), journaled, checked for its key, and answered from
the catalog (``_catalog``: the fixtures worked out at load), with faults applied (``_faults``). A row's API
says how its errors look: the Gemini API's ``{"error": {...}}``, or the compatibility layer's
``[{"error": {...}}]``.

Routes (as the real APIs; ``{version}`` is ``v1``, ``v1beta``, ``v1beta1``, ``v1alpha``, ...):
  * ``POST|GET /{version}/models/{model}:streamGenerateContent?alt=sse`` -> the recorded SSE bytes exactly,
    in their recorded chunks and timing; ``text/event-stream``, ``Content-Disposition: attachment``.
    Without ``alt=sse`` (also ``$alt=json;enum-encoding=int``) -> the same responses as one streamed JSON
    array, ``application/json; charset=UTF-8``. A fixture recorded in the other format is converted event
    by event, each element sent when its event was. GET is allowed so that ``EventSource`` can connect.
  * ``POST /{version}/models/{model}:generateContent`` -> the stream merged into the final response,
    pretty-printed as the API prints unary answers; a stream that failed mid-way answers its error.
  * ``POST /{version}/models/{model}:countTokens`` -> ``{"totalTokens": N}`` with N the
    ``promptTokenCount`` of the last ``usageMetadata`` in the fixture (plus its ``promptTokensDetails``).
  * ``GET /{version}/models`` -> the models the fixtures name; ``GET /{version}/models/{model}`` -> one
    (200 for every model a generation request would get a fixture for), with ``inputTokenLimit`` and
    ``outputTokenLimit`` from ``_models``.
  * Vertex AI: the same methods on ``/{version}/projects/{p}/locations/{l}/publishers/{publisher}/models/
    {model}:{method}`` and, in express mode, ``/{version}/publishers/{publisher}/models/{model}:{method}``,
    answered as above; ``GET .../publishers/{publisher}/models/{model}`` -> the publisher model resource.
  * The version may be left out (``/models/{model}:{method}``): clients given the bare server URL as their
    API base (litellm's ``api_base``) send that.
  * OpenAI-compatible (``{version}/openai/``, and Vertex AI's ``.../endpoints/openapi/``):
    ``POST chat/completions`` -> the Gemini fixture converted (``_openai``): ``chat.completion.chunk``
    events at the recorded times and ``data: [DONE]`` with ``"stream": true`` (``usage`` on the last chunk
    with ``stream_options.include_usage``), else one ``chat.completion``; a fixture recorded from that
    endpoint is served as recorded. ``GET models``, ``GET models/{id}`` -> the models in OpenAI's shape.
    ``POST embeddings`` -> a fixture recorded from that endpoint, else 404 (no fixture holds vectors).
  * any other method of a model (``:embedContent`` ...) -> a fixture recorded for that exact path, else 404.
  * ``OPTIONS`` anything -> CORS preflight; every response carries ``Access-Control-Allow-Origin``.
  * any other path -> a non-Gemini fixture served as a plain ``text/event-stream`` (generic SSE).
A fixture recorded with a request to the same kind of endpoint (or with an error status) is served as
recorded, byte for byte.

Matching (several fixtures, e.g. a directory):
  1. With a single fixture, every model request gets it, whatever model it names.
  2. Otherwise a fixture is a candidate when it names the requested model: in its recorded request (path,
     or the ``model`` of a recorded chat request), else (plain bodies) as a ``modelVersion`` (``model``)
     in its body; and any fixture whose file name, with or without its extensions, is the requested
     model (``models/cats.sse:streamGenerateContent`` picks ``cats.sse``). Failing that, a ``modelVersion``
     with a suffix (``gemini-2.0-flash-001``) matches ``gemini-2.0-flash``; failing that, fixtures that
     name no model at all (and are not only errors). The compatibility routes take Gemini fixtures and
     recordings of their own endpoint; the Gemini and Vertex AI routes only Gemini fixtures.
  3. Among candidates, the closest recorded request wins: the same body (as JSON), else the same
     conversation (system instruction and turns, whatever the generation settings: a chat request is
     compared in Gemini's shape, so the quickstart's prompt as a chat message finds the quickstart's
     recording), else the same turns; then the same method (``:streamGenerateContent`` or
     ``"stream": true`` ...); then a recording of the API asked; then a fixture without errors or breaks;
     then the first by file name.
  4. A fixture with several exchanges serves them in order, one per request; the last one repeats.
  5. No candidate: 404 with a JSON body naming the request and listing what is available.
  Generic paths: a fixture recorded for that path, else the non-Gemini fixture whose file name (with or
  without its extensions) is the last path segment, else the only non-Gemini fixture (or the only
  fixture).

Scenarios and the journal (see ``_scenario``, ``_journal`` and ``_verdict``): ``ReplayServer.script(*steps)``
queues what successive requests get (each request that gets a fixture takes the next step; the last
repeats); every request is journaled in ``ReplayServer.requests``, a chat request under ``stream`` or
``unary`` as its body asks. Reserved paths, for clients in any language (never journaled, never matched
against fixtures):
  * ``POST /_sse/script`` with a JSON list of steps (or ``{"steps": [...]}``) sets the script; ``GET``
    shows it;
  * ``GET /_sse/journal`` -> ``{"requests": [...]}``, each entry as ``JournalEntry.to_dict()``;
  * ``GET /_sse/verdict?strict=1&result_text=...`` (or ``POST`` a JSON object with ``strict``,
    ``result_text``, ``max_attempts``) -> ``{"findings": [...], "requests": N, "passed": bool}``;
  * ``POST /_sse/reset`` forgets the journal, the script, queued faults and where each fixture was.
Precedence of faults for one request: the ``x-sse-replay-faults`` header, then faults queued with
``add_faults``, then the script's next step, then the server's ``faults``. A malformed header, or one whose
delays go beyond the one-day bound, gets a 400 naming the header and the field. On the compatibility
routes a status fault answers the compatibility layer's error list, and a mid-stream error is the event
``data: {"error": {...}}`` (no ``[DONE]`` follows).

Keys: the key is taken from ``?key=``, ``x-goog-api-key`` or the credentials of ``Authorization: Bearer``
(Vertex AI's access token, the openai SDK's key). With ``require_key`` set, a missing key gets the API's
403 PERMISSION_DENIED body and (when ``require_key`` is a string) a different key the 400
INVALID_ARGUMENT / API_KEY_INVALID body.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..gemini._format import BodyFormat
from ..gemini._wire import error_body
from ..parser._exceptions import SSEUsageError
from ..server._loop import ReplayError, ReplayRequest, Reply
from ._catalog import (
    GEMINI_MODEL_PATH,
    MODELS_PREFIX,
    Api,
    Asked,
    Catalog,
    CatalogEntry,
    ServedExchange,
)
from ._convert import (
    Planned,
    chat_error_event,
    chat_stream,
    chat_unary,
    materialized,
    pretty,
)
from ._faults import FAULTS_HEADER, Faults, error_reply_body, inject, parse_faults, retry_after_header
from ._journal import Journal, whole_body
from ._models import model_info
from ._openai import (
    OPENAI_PREFIX,
    bare_model,
    chat_error_from_gemini,
    chunks_from_completion,
    completion_from_chunks,
    encode_chat_stream,
    model_object,
    models_list,
    parse_chat_request,
)
from ._scenario import Scenario, parse_steps
from ._verdict import Ending, JournalEntry, RequestKind, Severity, format_findings, verdict

__all__ = [
    "CONTROL",
    "JSON_HEADERS",
    "ROUTES",
    "SSE_HEADERS",
    "Answer",
    "Call",
    "GeminiReplayApp",
    "Route",
    "find_route",
]

SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Content-Disposition", "attachment"),
    ("Vary", "Origin, X-Origin, Referer"),
    ("X-Content-Type-Options", "nosniff"),
]
JSON_HEADERS = [
    ("Content-Type", "application/json; charset=UTF-8"),
    ("Vary", "Origin, X-Origin, Referer"),
    ("X-Content-Type-Options", "nosniff"),
]
# The compatibility stream: no Content-Disposition (the openai SDK reads the body as it comes either way).
_CHAT_SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Vary", "Origin, X-Origin, Referer"),
    ("X-Content-Type-Options", "nosniff"),
]
_GENERIC_HEADERS = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
CONTROL = "/_sse/"  # reserved paths: script, journal, verdict, reset
# Read on every generation request by name: in Python 3.11 reading a member off its enum class goes through
# EnumType's __getattr__ hook (a bound method made and dropped per read).
_SSE, _JSON_ARRAY = BodyFormat.SSE, BodyFormat.JSON_ARRAY
_GEMINI_API, _kind_of_method = Api.GEMINI, RequestKind.of_method
_STREAMS = (_SSE, _JSON_ARRAY)


class Answer:
    """What a handler answers: the ``reply`` to send and, for the journal, what its body holds (``sent``:
    event ends and where the finishReason ends; None when counted as it streams from disk)."""

    # A plain class, as Call: one of each is made per request, and mypyc compiles a class's own __init__
    # (a NamedTuple's is made at run time, and runs interpreted).
    def __init__(self, reply: Reply, sent: Planned | None) -> None:
        self.reply, self.sent = reply, sent


class Call:
    """One request as a handler gets it: the ``request``, its route's path ``match``, its journal
    ``entry``, and the ``api`` whose error shape its answers take (None: a generic path)."""

    def __init__(
        self, request: ReplayRequest, match: re.Match[str], entry: JournalEntry, api: Api | None = Api.GEMINI
    ) -> None:
        self.request, self.match, self.entry, self.api = request, match, entry, api


def _json_answer(status: int, body: bytes, extra: Sequence[tuple[str, str]] = ()) -> Answer:
    return Answer(Reply(status, [*JSON_HEADERS, *extra], [(0.0, body)], stream=False), whole_body(body))


def _shaped(api: Api | None, body: bytes) -> bytes:
    """A Gemini API error body as the route's API writes it: as it is, or (compatibility routes) the
    compatibility layer's ``[{"error": {code, message, status}}]``."""
    if api is not Api.OPENAI:
        return body
    try:
        return pretty(chat_error_from_gemini(body))
    except SSEUsageError:
        return body


def _error_answer(api: Api | None, status: int, body: bytes, extra: Sequence[tuple[str, str]] = ()) -> Answer:
    return _json_answer(status, _shaped(api, body), extra)


def _key_of(request: ReplayRequest) -> str | None:
    """The key a request carries: ``?key=``, ``x-goog-api-key``, or a bearer token (None: none)."""
    key = request.param("key") or request.header("x-goog-api-key")
    if key:
        return key
    scheme, _, credentials = (request.header("authorization") or "").strip().partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _key_problem(request: ReplayRequest, require_key: Any, api: Api | None) -> Answer | None:
    if require_key is None or require_key is False:
        return None
    key = _key_of(request)
    if not key:
        return _error_answer(
            api,
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
        return _error_answer(
            api,
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
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": message,
                    },
                ],
            ),
        )
    return None


_EXPOSE = ("Access-Control-Expose-Headers", "Content-Disposition, Retry-After")
_CORS_ANY = (("Access-Control-Allow-Origin", "*"), _EXPOSE)  # a request without Origin (not a browser's)


def _cors(request: ReplayRequest) -> Sequence[tuple[str, str]]:
    origin = request.header("origin")
    if not origin:
        return _CORS_ANY
    return (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"), _EXPOSE)


def _vertex_model_doc(publisher: str, model: str) -> dict[str, Any]:
    """Vertex AI's publisher model resource (what google-genai's ``models.get`` reads on Vertex AI)."""
    return {
        "name": f"publishers/{publisher}/models/{model}",
        "displayName": model,
        "description": f"Replayed from a fixture by sse-replay (limits: {model_info(model).source}).",
        "versionId": "default",
        "launchStage": "GA",
    }


class GeminiReplayApp:
    """The request handler: routes a request, picks a fixture from the catalog and plans the response
    (see the module doc). ``journal`` holds what each request got; ``scenario`` the steps queued."""

    cpu_only = True  # never waits for the network: the server calls it from its one loop

    def __init__(self, catalog: Catalog, faults: Faults | None = None, require_key: Any = None) -> None:
        self.catalog = catalog
        self.speed = catalog.speed
        self.faults = faults or Faults()
        self.require_key: Any = require_key  # a user's option, any truth value (compiled, a union is checked)
        self.scenario = Scenario()
        self.journal = Journal()
        self._queued: list[Faults] = []
        self._lock = threading.Lock()

    @property
    def entries(self) -> list[CatalogEntry]:
        """The fixtures served, as the catalog loaded them."""
        return self.catalog.entries

    def queue_faults(self, faults: Faults, count: int = 1) -> None:
        """Apply ``faults`` to the next ``count`` requests that get a fixture."""
        with self._lock:
            self._queued.extend([faults] * count)

    def reset(self) -> None:
        """Forget the journal, the scenario, queued faults and each fixture's position."""
        with self._lock:
            self._queued.clear()
        self.journal.clear()
        self.scenario.clear()
        self.catalog.rewind()

    def serves_model(self, model: str, api: Api = Api.GEMINI) -> bool:
        """Whether a generation request for ``model`` would get a fixture (what ``GET models/{model}``
        answers 200 for)."""
        return self.catalog.match(Asked(api, model, RequestKind.UNARY)) is not None

    # -- entry point ---------------------------------------------------------------------------------
    def __call__(self, request: ReplayRequest) -> Reply:
        cors = _cors(request)
        if request.path.startswith(CONTROL):
            reply = self._control(request)
            reply.headers = [*reply.headers, *cors]
            return reply
        route, match = find_route(request.method, request.path)
        model = match["model"] if "model" in match.re.groupindex else None
        entry = self.journal.record(request, route.kind, bare_model(model) if model else None)
        if request.method == "OPTIONS":
            asked = request.header("access-control-request-headers")
            headers = [
                *cors,
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                (
                    "Access-Control-Allow-Headers",
                    asked or "content-type, x-goog-api-key, x-goog-api-client, authorization",
                ),
                ("Access-Control-Max-Age", "3600"),
            ]
            reply = Reply(204, headers, stream=False)
            self.journal.track(entry, reply, whole_body(b""))
            return reply
        try:
            answer = _key_problem(request, self.require_key, route.api) or route.handler(
                self, Call(request, match, entry, route.api)
            )
        except SSEUsageError as exc:  # a malformed x-sse-replay-faults header, a bad chat request ...
            body = error_body(400, "INVALID_ARGUMENT", f"sse-replay: {exc}")
            answer = _error_answer(route.api, 400, body)
        except BaseException:
            entry.end, entry.status = Ending.CLIENT_GONE, 500
            raise
        reply = answer.reply
        reply.headers = [*reply.headers, *cors]
        self.journal.track(entry, reply, answer.sent)
        return reply

    def _faults_for(self, request: ReplayRequest, journal: JournalEntry) -> Faults:
        spec = request.header(FAULTS_HEADER)
        if spec is not None:
            try:
                return parse_faults(spec)
            except SSEUsageError as exc:
                raise SSEUsageError(f"{FAULTS_HEADER}: {exc}") from None
        if self._queued:  # looked at again under the lock: another thread may take the last one
            with self._lock:
                if self._queued:
                    return self._queued.pop(0)
        step = self.scenario.next()
        if step is not None:
            journal.step, journal.step_text = step.index, step.describe()
            return step.faults
        return self.faults

    # -- the Gemini API and Vertex AI endpoints ------------------------------------------------------
    def models_list(self, call: Call) -> Answer:
        """``GET /{version}/models``."""
        return _json_answer(200, pretty({"models": [model_info(m).to_dict() for m in self.catalog.models]}))

    def model_info(self, call: Call) -> Answer:
        """``GET /{version}/models/{model}`` (Vertex AI: ``GET .../publishers/{publisher}/models/{model}``):
        200 for every model a generation request would get a fixture for."""
        model = call.match["model"]
        if self.serves_model(model):
            vertex = call.match["vertex"]
            if vertex:
                return _json_answer(200, pretty(_vertex_model_doc(vertex.rsplit("/", 1)[-1], model)))
            return _json_answer(200, pretty(model_info(model).to_dict()))
        return _json_answer(
            404, error_body(404, "NOT_FOUND", f"models/{model} is not found in the replayed fixtures.")
        )

    def not_replayed(self, call: Call) -> Answer:
        """A method this app does not answer itself (``:embedContent``, ``embeddings`` ...): a fixture
        recorded for exactly this path, as recorded; else 404."""
        chosen = self.catalog.recorded_for(call.request.path, call.request.body)
        if chosen is not None:
            return self._recorded(call, chosen)
        method = call.match.groupdict().get("method") or call.request.path.rsplit("/", 1)[-1]
        return self._not_found(
            call,
            f"{method!r} is not replayed: it is served only from a fixture recorded for this path "
            "(record one with sse-record), and none was",
        )

    def stream(self, call: Call) -> Answer:
        """``:streamGenerateContent``: SSE with ``alt=sse``, else a streamed JSON array."""
        picked = self._pick(call, self._asked(call))
        if isinstance(picked, Answer):
            return picked
        served, faults = picked
        request = call.request
        alt = request.param("alt") or request.param("$alt") or ""
        answer = self._stream(served, _SSE if alt == "sse" else _JSON_ARRAY, faults)
        call.entry.mid_stream_error = faults.error_after is not None or served.recorded_error
        return answer

    def unary(self, call: Call) -> Answer:
        """``:generateContent`` and ``:countTokens``: one JSON answer."""
        picked = self._pick(call, self._asked(call))
        if isinstance(picked, Answer):
            return picked
        served, faults = picked
        answer = self._unary(served, RequestKind.of_method(call.match["method"]))
        answer.reply.head_t = (answer.reply.head_t or 0.0) + faults.latency
        return answer

    def generic(self, call: Call) -> Answer:
        """Any other path: a non-Gemini fixture as plain SSE."""
        chosen = self.catalog.for_path(call.request.path)
        if chosen is None:
            return self._not_found(call, "no fixture for this path")
        return self._recorded(call, chosen, _GENERIC_HEADERS)

    # -- the OpenAI-compatible endpoints -------------------------------------------------------------
    def chat(self, call: Call) -> Answer:
        """``POST {version}/openai/chat/completions``: streamed or unary as the body asks."""
        if call.request.method != "POST":
            return self._not_found(call, "chat/completions takes POST")
        chat = parse_chat_request(call.request.body)  # a ChatRequestError is answered 400
        call.entry.model = chat.model
        if chat.stream:
            call.entry.kind = RequestKind.STREAM
        kind = RequestKind.STREAM if chat.stream else RequestKind.UNARY
        picked = self._pick(call, Asked(Api.OPENAI, chat.model, kind, call.request.body, chat.gemini))
        if isinstance(picked, Answer):
            return picked
        served, faults = picked
        head_t = served.head_t + faults.latency or None
        if served.exchange.status != 200:  # a recorded error status (a 429 ...): that error, converted
            answer = _error_answer(Api.OPENAI, served.exchange.status, served.exchange.body)
            answer.reply.head_t = head_t
            return answer
        created = int(call.entry.wall)
        if not chat.stream:  # one JSON answer
            if served.api is Api.OPENAI:
                planned, headers = self._chat_recorded(served, False, False)
                reply = Reply(200, headers, planned.pieces, stream=False, head_t=head_t)
                return Answer(reply, planned)
            unary = chat_unary(served.gemini_form().decoded, model=chat.model, created=created)
            answer = _json_answer(unary.status, unary.body)
            answer.reply.head_t = head_t
            return answer
        if served.api is Api.OPENAI:
            planned, headers = self._chat_recorded(served, True, chat.include_usage)
        else:
            form = served.gemini_form()
            planned = chat_stream(
                form.decoded,
                form.times,
                form.last,
                served.exchange.end,
                model=chat.model,
                created=created,
                include_usage=chat.include_usage,
            )
            headers = list(_CHAT_SSE_HEADERS)
        if faults.active:
            planned = inject(materialized(planned), faults, chat_error_event)
        call.entry.mid_stream_error = faults.error_after is not None or served.recorded_error
        return Answer(Reply(200, headers, planned.pieces, end=planned.end, head_t=head_t), planned)

    def _chat_recorded(
        self, served: ServedExchange, stream: bool, include_usage: bool
    ) -> tuple[Planned, list[tuple[str, str]]]:
        """A recording of the compatibility endpoint: as recorded when it was asked the same way (streamed
        or not), else converted between a stream and one completion."""
        recorded_stream = served.format is BodyFormat.SSE
        if recorded_stream == stream:
            fallback = _CHAT_SSE_HEADERS if stream else JSON_HEADERS
            return served.as_recorded(), served.headers_for(fallback)
        objects = served.objects()
        last = served.as_recorded()
        t = max((piece[0] for piece in materialized(last).pieces), default=0.0)
        if stream:
            events = encode_chat_stream(
                c for o in objects for c in chunks_from_completion(o, include_usage=include_usage)
            )
            body = b"".join(events)
            return Planned([(t, body)], [len(events[0])] if events else []), list(_CHAT_SSE_HEADERS)
        body = orjson.dumps(completion_from_chunks(objects), option=orjson.OPT_SORT_KEYS)
        return Planned([(t, body)], [len(body)]), list(JSON_HEADERS)

    def openai_models(self, call: Call) -> Answer:
        """``GET {version}/openai/models``."""
        return _json_answer(200, orjson.dumps(models_list(self.catalog.models)))

    def openai_model(self, call: Call) -> Answer:
        """``GET {version}/openai/models/{id}``: 200 for every model a chat request would get a fixture
        for."""
        model = bare_model(call.match["model"])
        if self.serves_model(model, Api.OPENAI):
            return _json_answer(200, orjson.dumps(model_object(model)))
        body = error_body(404, "NOT_FOUND", f"models/{model} is not found in the replayed fixtures.")
        return _error_answer(Api.OPENAI, 404, body)

    # -- answers -------------------------------------------------------------------------------------
    def _asked(self, call: Call) -> Asked:
        return Asked(
            _GEMINI_API, call.match["model"], _kind_of_method(call.match["method"]), call.request.body
        )

    def _pick(self, call: Call, asked: Asked) -> tuple[ServedExchange, Faults] | Answer:
        """The exchange and faults for a model request, or the answer when it gets no fixture (404) or a
        status fault."""
        entry = self.catalog.match(asked)
        if entry is None:
            return self._not_found(call, f"no fixture for model {asked.model!r}")
        faults = self._faults_for(call.request, call.entry)
        served = entry.next_exchange()
        call.entry.answer_source = served.answer  # only if a verdict asks
        if faults.status is not None:
            if faults.status == 429:
                call.entry.retry_delay = float(faults.retry_after)
            return self._status_fault(faults, call.api)
        return served, faults

    def _recorded(
        self,
        call: Call,
        chosen: CatalogEntry,
        fallback: Sequence[tuple[str, str]] = JSON_HEADERS,
    ) -> Answer:
        """The next exchange of ``chosen`` as recorded (faults applied)."""
        faults = self._faults_for(call.request, call.entry)
        if faults.status is not None:
            return self._status_fault(faults, call.api)
        served = chosen.next_exchange()
        form = served.as_recorded()
        if faults.active:
            form = inject(materialized(form), faults)
        headers = served.headers_for(fallback)
        head_t = faults.latency or None
        return Answer(Reply(served.exchange.status, headers, form.pieces, end=form.end, head_t=head_t), form)

    def _status_fault(self, faults: Faults, api: Api | None) -> Answer:
        status = faults.status or 500
        extra = [("Retry-After", retry_after_header(faults.retry_after))] if status == 429 else []
        answer = _error_answer(api, status, error_reply_body(status, faults.retry_after), extra)
        answer.reply.head_t = faults.latency
        return answer

    def _stream(self, served: ServedExchange, want: BodyFormat, faults: Faults) -> Answer:
        exchange = served.exchange
        fallback = SSE_HEADERS if want is _SSE else JSON_HEADERS
        if exchange.status != 200 or served.format is want or served.format not in _STREAMS:
            form = served.as_recorded()  # the exact bytes in their recorded chunks and timing
            headers = served.headers_for(fallback)
        else:
            form = served.reframed()
            headers = list(fallback)
        if faults.active:
            form = inject(materialized(form), faults)
        head_t = served.head_t + faults.latency or None
        return Answer(Reply(exchange.status, headers, form.pieces, end=form.end, head_t=head_t), form)

    def _unary(self, served: ServedExchange, kind: RequestKind) -> Answer:
        exchange = served.exchange
        if exchange.status != 200 or served.recorded_kind is kind:
            body = exchange.body
            reply = Reply(exchange.status, served.headers_for(JSON_HEADERS), [(0.0, body)], stream=False)
            return Answer(reply, whole_body(body))
        answer = served.unary(kind)
        if answer.problem is not None:
            raise ReplayError(answer.problem)
        return _json_answer(answer.status, answer.body)

    def _not_found(self, call: Call, why: str) -> Answer:
        request = call.request
        error = {
            "code": 404,
            "message": f"sse-replay: {why}: {request.method} {request.path}",
            "status": "NOT_FOUND",
            "request": {"method": request.method, "path": request.path, "query": request.query},
            "available": self.catalog.describe(),
        }
        # The compatibility layer's errors are a list (its own fields kept: they say what is available).
        body = [{"error": error}] if call.api is Api.OPENAI else {"error": error}
        return _json_answer(404, pretty(body))

    # -- the control endpoints (/_sse/...) -----------------------------------------------------------
    def _control(self, request: ReplayRequest) -> Reply:
        what = request.path[len(CONTROL) :].strip("/")
        for methods, name, handler in _CONTROL_ROUTES:
            if name == what and request.method in methods:
                try:
                    return handler(self, request).reply
                except (ReplayError, orjson.JSONDecodeError, ValueError, TypeError) as exc:
                    body = error_body(400, "INVALID_ARGUMENT", f"sse-replay: {request.path}: {exc}")
                    return _json_answer(400, body).reply
        return _json_answer(
            404,
            error_body(
                404,
                "NOT_FOUND",
                f"sse-replay: {request.method} {request.path} is not a control endpoint (GET /_sse/journal, "
                "GET|POST /_sse/script, GET|POST /_sse/verdict, POST /_sse/reset)",
            ),
        ).reply

    def show_journal(self, request: ReplayRequest) -> Answer:
        """``GET /_sse/journal``."""
        return _json_answer(200, pretty({"requests": [e.to_dict() for e in self.journal.entries()]}))

    def show_script(self, request: ReplayRequest) -> Answer:
        """``GET /_sse/script``."""
        return _json_answer(200, pretty({"steps": [s.spec for s in self.scenario.steps]}))

    def set_script(self, request: ReplayRequest) -> Answer:
        """``POST|PUT /_sse/script``: a JSON list of steps, or ``{"steps": [...]}``."""
        value = orjson.loads(request.body or b"null")
        if isinstance(value, dict) and set(value) == {"steps"}:
            value = value["steps"]
        if not isinstance(value, list):
            raise ReplayError(f"expected a JSON list of steps, got {type(value).__name__}")
        steps = parse_steps(value)
        self.scenario.set(steps)
        return _json_answer(200, pretty({"steps": len(steps)}))

    def reset_all(self, request: ReplayRequest) -> Answer:
        """``POST /_sse/reset``."""
        self.reset()
        return _json_answer(200, pretty({"reset": True}))

    def show_verdict(self, request: ReplayRequest) -> Answer:
        """``GET|POST /_sse/verdict``: options from the query, or a posted JSON object."""
        options: dict[str, Any] = dict(request.params)
        if request.method == "POST" and request.body.strip():
            options.update(orjson.loads(request.body))
        strict = str(options.get("strict", "")).lower() in ("1", "true", "yes")
        result = options.get("result_text")
        max_attempts = int(options.get("max_attempts") or 5)
        journal = [e for e in self.journal.entries() if e.end is not Ending.PENDING]
        findings = verdict(journal, strict=strict, result_text=result, max_attempts=max_attempts)
        return _json_answer(
            200,
            pretty(
                {
                    "requests": len(journal),
                    "passed": not any(f.severity is Severity.ERROR for f in findings),
                    "findings": [f.to_dict() for f in findings],
                    "report": format_findings(findings, len(journal)),
                }
            ),
        )


@dataclass(frozen=True)
class Route:
    """One row of the routing table: a request whose method is in ``methods`` (None: any) and whose path
    matches ``pattern`` is answered by ``handler``; the journal files it under ``kind`` (and the ``model``
    group of the match, if any); ``api`` is the API whose error shape its answers take (None: generic)."""

    methods: frozenset[str] | None
    pattern: re.Pattern[str]
    kind: RequestKind
    handler: Callable[[GeminiReplayApp, Call], Answer]
    api: Api | None = Api.GEMINI


def _method(name: str) -> re.Pattern[str]:
    return re.compile(f"^{GEMINI_MODEL_PATH}:(?P<method>{name})$")


def _openai(tail: str) -> re.Pattern[str]:
    return re.compile(f"^{OPENAI_PREFIX}/{tail}/?$")


# Tried in order; the last row matches every path. An OPTIONS request is journaled under the kind of the
# row its path matches and answered as a CORS preflight. The Gemini API rows serve Vertex AI too: their
# paths take Vertex AI's prefix (``MODELS_PREFIX``).
_ANY = None
_GET = frozenset({"GET"})
_MODELS_PATH = re.compile(f"^{MODELS_PREFIX}/models/?$")
_MODEL_PATH = re.compile(f"^{GEMINI_MODEL_PATH}$")
ROUTES: tuple[Route, ...] = (
    Route(_ANY, _MODELS_PATH, RequestKind.MODELS, GeminiReplayApp.models_list),
    Route(_GET, _MODEL_PATH, RequestKind.MODELS, GeminiReplayApp.model_info),
    Route(_ANY, _MODEL_PATH, RequestKind.MODELS, GeminiReplayApp.not_replayed),
    *(
        Route(_ANY, _method(kind.method), kind, handler)
        for kind, handler in (
            (RequestKind.STREAM, GeminiReplayApp.stream),
            (RequestKind.UNARY, GeminiReplayApp.unary),
            (RequestKind.COUNT, GeminiReplayApp.unary),
        )
    ),
    Route(_ANY, _method("[A-Za-z]+"), RequestKind.OTHER, GeminiReplayApp.not_replayed),
    # The OpenAI-compatible endpoint; a chat request is journaled as ``stream`` when its body asks.
    Route(_ANY, _openai("chat/completions"), RequestKind.UNARY, GeminiReplayApp.chat, Api.OPENAI),
    Route(_GET, _openai("models"), RequestKind.MODELS, GeminiReplayApp.openai_models, Api.OPENAI),
    Route(
        _GET, _openai("models/(?P<model>.+?)"), RequestKind.MODELS, GeminiReplayApp.openai_model, Api.OPENAI
    ),
    Route(_ANY, _openai(".*"), RequestKind.OTHER, GeminiReplayApp.not_replayed, Api.OPENAI),
    Route(_ANY, re.compile(""), RequestKind.SSE, GeminiReplayApp.generic, None),
)

ControlHandler = Callable[[GeminiReplayApp, ReplayRequest], Answer]
# The control endpoints under CONTROL: (methods, name, handler). Never journaled.
_CONTROL_ROUTES: tuple[tuple[frozenset[str], str, ControlHandler], ...] = (
    (frozenset({"GET"}), "journal", GeminiReplayApp.show_journal),
    (frozenset({"GET"}), "script", GeminiReplayApp.show_script),
    (frozenset({"POST", "PUT"}), "script", GeminiReplayApp.set_script),
    (frozenset({"POST"}), "reset", GeminiReplayApp.reset_all),
    (frozenset({"GET", "POST"}), "verdict", GeminiReplayApp.show_verdict),
)


# Routes found, by method and path: a test suite asks the same few paths again and again, and trying the
# rows' patterns in turn costs several matches. Bounded: paths up to _FOUND_PATH characters (the API's are
# far shorter), _FOUND_MAX of them, emptied when full (a hostile client's million distinct paths hold a
# megabyte at most).
_found: dict[tuple[str, str], tuple[Route, re.Match[str]]] = {}
_FOUND_MAX = 1024
_FOUND_PATH = 512


def find_route(method: str, path: str) -> tuple[Route, re.Match[str]]:
    """The first row of :data:`ROUTES` for ``method`` and ``path``, and its match."""
    found = _found.get((method, path))
    if found is not None:
        return found
    for route in ROUTES:
        if route.methods is None or method in route.methods:
            match = route.pattern.match(path)
            if match is not None:
                if len(path) <= _FOUND_PATH:
                    if len(_found) >= _FOUND_MAX:
                        _found.clear()
                    _found[method, path] = route, match
                return route, match
    raise AssertionError("the last route matches every path")  # pragma: no cover
