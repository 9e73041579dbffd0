"""Replay layer: the catalog, every fixture a replay server serves, loaded once and worked out at load.

For each exchange (:class:`ServedExchange`) the catalog works out when the fixtures load what any request
for it needs: the body's format, the form as recorded at the server's speed (pieces, event ends, where the
first finishReason ends), the form re-framed in the other stream format, the ``:generateContent`` and
``:countTokens`` answers, the whole answer text, whether the recording ends with a mid-stream error, the
recorded headers as they are served, and what its recorded request asked (model, method, body as JSON).
Requests only read it; the one thing that moves is each fixture's cursor (which exchange comes next).

A plain SSE fixture big enough to be streamed from disk (see ``load_fixture``) is judged by its first
64 KiB, since reading 1 GiB at start would not do; its forms are planned when a request asks for them, the
file read as it is sent (re-framing or merging it reads it whole).

Each exchange knows which API it answers (:class:`Api`): the Gemini API (also served on the Vertex AI
routes) when it was recorded from a Gemini model path or its body carries Gemini response objects; the
OpenAI-compatible endpoint when it was recorded from ``{version}/openai/chat/completions`` or its body
carries ``chat.completion`` objects; neither (generic SSE) otherwise. Matching a request to a fixture
follows the rules in the ``_app`` module doc (:meth:`Catalog.match`, :meth:`Catalog.for_path`,
:meth:`Catalog.recorded_for`). Every delay is scaled by the fixture layer's pace, bounded there: a recorded
time beyond a day at the server's speed is a ``ReplayError`` naming the fixture, the exchange and the chunk.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Union, runtime_checkable

import orjson

from ..fixture._errors import FixtureError
from ..fixture._load import load_fixture, loads_fixture, preview, split_body
from ..fixture._model import End, Exchange, Fixture
from ..fixture._pace import check_speed, head_delay, iter_schedule, schedule
from ..gemini._format import BodyFormat, sniff_format
from ..server._loop import ReplayError
from ._convert import (
    Decoded,
    Planned,
    UnaryAnswer,
    count_tokens,
    decode,
    event_ends,
    finish_offset,
    full_text,
    merged_answer,
    object_times,
    reframe,
)
from ._openai import (
    ChatRequestError,
    OpenAIRoute,
    bare_model,
    gemini_request,
    parse_openai_path,
    request_key,
)
from ._verdict import RequestKind

__all__ = [
    "GEMINI_MODEL_PATH",
    "MODELS_PREFIX",
    "Api",
    "Asked",
    "Catalog",
    "CatalogEntry",
    "GeminiForm",
    "ReplaySource",
    "ServedExchange",
    "fixture_files",
    "gemini_target",
]

ReplaySource = Union[str, "os.PathLike[str]", bytes, Fixture, Exchange, Any]


@runtime_checkable
class _Scripted(Protocol):
    """A scripted stream (``GeminiScript``): anything that makes a fixture."""

    def to_fixture(self) -> Fixture: ...


_VERSION = r"v\d+(?:alpha|beta)?\d*"  # v1, v1beta, v1beta1, v1alpha ...
# What comes before ``/models/{model}`` on a model path: the API version (left out by clients given the bare
# server URL as a base, such as litellm's ``api_base``), then for Vertex AI the publisher, after a project
# and location except in express mode: ``/v1beta1/projects/p/locations/l/publishers/google``.
MODELS_PREFIX = (
    rf"(?:/(?P<version>{_VERSION})(?P<vertex>(?:/projects/[^/]+/locations/[^/]+)?/publishers/[^/]+)?)?"
)
# A model path without the method: ``/v1beta/models/gemini-2.0-flash`` (the version, the model id), or a
# Vertex AI one (``/v1/publishers/google/models/gemini-2.0-flash``).
GEMINI_MODEL_PATH = MODELS_PREFIX + r"/models/(?P<model>[^/:]+)"
_GEMINI = re.compile(f"^{GEMINI_MODEL_PATH}(?::(?P<method>[A-Za-z]+))?$")


class Api(Enum):
    """Which API an exchange answers (and a model request asks)."""

    GEMINI = "gemini"  # :generateContent / :streamGenerateContent, on the Gemini API and Vertex AI paths
    OPENAI = "openai"  # {version}/openai/chat/completions, the OpenAI-compatible endpoint


# Recorded response headers that replay must not repeat: framing is redone, and CORS is the server's own.
_DROP_RECORDED = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "content-encoding",
        "date",
        "alt-svc",
        "server-timing",
        "set-cookie",
        "access-control-allow-origin",
        "access-control-allow-credentials",
    }
)
_FIXTURE_SKIP = re.compile(r"(^\.|^README|\.md$|\.rst$|\.py$|~$)", re.IGNORECASE)
_KNOWN_KEYS = ("candidates", "usageMetadata", "promptFeedback", "modelVersion", "responseId")
_CHAT_OBJECTS = ("chat.completion.chunk", "chat.completion")
_STREAMS = (BodyFormat.SSE, BodyFormat.JSON_ARRAY)
_NOT_JSON = object()  # a recorded request body that is not JSON: compared byte for byte
_UNSET = object()  # a value not worked out yet


def gemini_target(path: str) -> tuple[str, str | None] | None:
    """``(model, method)`` of a Gemini API or Vertex AI model path (method None when the path names none),
    else None."""
    m = _GEMINI.match(path)
    return None if m is None else (m["model"], m["method"])


def _split(body: bytes, fmt: BodyFormat) -> list[bytes]:
    return split_body(body, "application/json" if fmt is BodyFormat.JSON_ARRAY else "text/event-stream")


def _json_or_not(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _keys(gemini: Any) -> tuple[bytes | None, bytes | None]:
    """The conversation keys of a Gemini request body: with the system instruction, and turns only."""
    if not isinstance(gemini, dict):
        return None, None
    return request_key(gemini), request_key(gemini, system=False)


class Asked:
    """What a model request asks, as matching compares it with the recorded requests: its ``api``,
    ``model`` and ``kind`` (``STREAM``, ``UNARY`` or ``COUNT``), its ``body`` as sent, and (worked out on
    first use) that body as JSON and its conversation keys. ``gemini``: the same request in Gemini's shape,
    when the caller has it already (a chat request)."""

    __slots__ = ("_doc", "_gemini", "_keys", "api", "body", "kind", "model")

    def __init__(
        self, api: Api, model: str, kind: RequestKind, body: bytes = b"", gemini: dict[str, Any] | None = None
    ) -> None:
        self.api = api
        self.model = model
        self.kind = kind
        self.body = body
        self._gemini = gemini
        self._doc: Any = _UNSET  # worked out on first use: most requests are matched without them
        self._keys: tuple[bytes | None, bytes | None] | None = None

    @property
    def doc(self) -> Any:
        """The body as JSON (``_NOT_JSON`` when it is not)."""
        if self._doc is _UNSET:
            self._doc = _json_or_not(self.body) if self.body else _NOT_JSON
        return self._doc

    @property
    def keys(self) -> tuple[bytes | None, bytes | None]:
        """The conversation keys (with the system instruction, turns only); None when there is none."""
        if self._keys is None:
            self._keys = _keys(self._gemini if self._gemini is not None else self.doc)
        return self._keys


class GeminiForm(NamedTuple):
    """A Gemini exchange decoded for conversion: its response objects (and recorded error), when each was
    complete, and when the recorded body ended."""

    decoded: Decoded
    times: list[float]
    last: float


class ServedExchange:
    """One recorded exchange with its served forms, worked out at load (see the module doc)."""

    def __init__(self, exchange: Exchange, speed: float) -> None:
        self.exchange = exchange
        self.speed = speed
        probe = preview(exchange)  # the exchange itself, or the first 64 KiB of one streamed from disk
        self.lazy = probe is not exchange
        body = probe.body
        self.format = sniff_format(body[:4096], exchange.header("content-type") or "")
        self.head_t = head_delay(exchange, speed)
        self._kept_headers = [(k, v) for k, v in exchange.headers if k.lower() not in _DROP_RECORDED]
        self._has_type = any(k.lower() == "content-type" for k, _ in self._kept_headers)
        pieces = _split(body, self.format)
        decoded = decode(pieces, self.format)  # of the first 64 KiB when streamed from disk
        self.recorded_error = decoded.error is not None
        chat = [obj for obj in decoded.objects if obj.get("object") in _CHAT_OBJECTS]
        self.response_models = [  # the model each response object names
            str(name).removeprefix("models/")
            for obj in decoded.objects
            if isinstance(name := obj.get("model" if chat else "modelVersion"), str)
        ]
        looks_gemini = self.recorded_error or any(
            any(k in obj for k in _KNOWN_KEYS) for obj in decoded.objects
        )
        self.failing = exchange.status != 200 or exchange.end != End.COMPLETE or self.recorded_error
        # What the recorded request asked: its API, model and method, and its body (as JSON, as keys).
        request = exchange.request
        self.recorded_request = request is not None
        self.recorded_path = request.path if request is not None else None
        self.recorded_body = request.body if request is not None else b""
        self.recorded_doc = _json_or_not(self.recorded_body) if self.recorded_body else _NOT_JSON
        self.recorded_model: str | None = None
        self.recorded_kind: RequestKind | None = None
        self.recorded_keys: tuple[bytes | None, bytes | None] = (None, None)
        self.api: Api | None = None  # None: a generic SSE exchange
        if request is not None:
            self._read_request(request.path)
        elif chat:
            self.api = Api.OPENAI
        elif looks_gemini:
            self.api = Api.GEMINI
        # The forms, for all but a body streamed from disk (planned per request: see the module doc).
        self._recorded: Planned | None = None
        self._reframed: Planned | None = None
        self._unary: UnaryAnswer | None = None
        self._count: UnaryAnswer | None = None
        self._text: str | None = None
        self._gemini: GeminiForm | None = None
        if not self.lazy:
            self._plan = schedule(exchange, speed)
            # A tuple: the same pieces for every request, which the server's writer frames once.
            self._recorded = Planned(
                tuple(self._plan), event_ends(pieces, self.format), finish_offset(body), exchange.end
            )

    def _read_request(self, path: str) -> None:
        target = gemini_target(path)
        if target is not None:
            self.api = Api.GEMINI
            self.recorded_model, method = target
            self.recorded_kind = RequestKind.of_method(method) if method else None
            self.recorded_keys = _keys(self.recorded_doc)
            return
        route = parse_openai_path(path)
        doc = self.recorded_doc
        if route is not None and route.route is OpenAIRoute.CHAT_COMPLETIONS and isinstance(doc, dict):
            self.api = Api.OPENAI
            if isinstance(doc.get("model"), str):
                self.recorded_model = bare_model(doc["model"])
            self.recorded_kind = RequestKind.STREAM if doc.get("stream") is True else RequestKind.UNARY
            try:
                self.recorded_keys = _keys(gemini_request(doc))
            except ChatRequestError:
                pass  # a chat body the converter cannot read: matched by model and method only

    @property
    def gemini(self) -> bool:
        """Whether this exchange answers model requests (the Gemini API or the OpenAI-compatible one), not
        generic SSE paths."""
        return self.api is not None

    def work_out_gemini(self) -> None:
        """Work out the Gemini forms (re-framed stream, unary answers, answer text, the decoded objects and
        their times for the compatibility routes): for Gemini exchanges, at load."""
        if self.lazy or self.api is not Api.GEMINI:
            if self.api is Api.OPENAI and not self.lazy:
                self._text = _chat_text(self.exchange.body, self.format)
            return
        body = self.exchange.body
        pieces = _split(body, self.format)
        decoded = decode(pieces, self.format)
        if self.exchange.status == 200 and self.format in _STREAMS:
            other = BodyFormat.JSON_ARRAY if self.format is BodyFormat.SSE else BodyFormat.SSE
            form = reframe(decoded, pieces, self._plan, other, self.exchange.end)
            self._reframed = Planned(tuple(form.pieces), form.event_ends, form.finish_at, form.end)
        self._unary = merged_answer(decoded, body)
        self._count = count_tokens(decoded)
        self._text = full_text(decoded)
        self._gemini = GeminiForm(decoded, *object_times(decoded, pieces, self._plan))

    # -- what requests read --------------------------------------------------------------------------
    def headers_for(self, fallback: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The headers to send with the body as recorded: the recorded ones (without framing, dates and
        CORS) with ``fallback``'s Content-Type when none was recorded; ``fallback`` when none were."""
        if not self.exchange.headers:
            return list(fallback)
        if self._has_type:
            return list(self._kept_headers)
        return [fallback[0], *self._kept_headers]

    def as_recorded(self) -> Planned:
        """The body as recorded, at the server's speed (for a body streamed from disk: read as it is
        sent, its event ends not known in advance)."""
        if self._recorded is not None:
            return self._recorded
        return Planned(iter_schedule(self.exchange, self.speed), None, None, self.exchange.end)

    def reframed(self) -> Planned:
        """The body re-framed in the other stream format (a 200 SSE or JSON-array body)."""
        if self._reframed is not None:
            return self._reframed
        body, plan = self.exchange.body, schedule(self.exchange, self.speed)  # streamed from disk: read whole
        other = BodyFormat.JSON_ARRAY if self.format is BodyFormat.SSE else BodyFormat.SSE
        pieces = _split(body, self.format)
        return reframe(decode(pieces, self.format), pieces, plan, other, self.exchange.end)

    def unary(self, kind: RequestKind) -> UnaryAnswer:
        """The ``:countTokens`` (``RequestKind.COUNT``) or ``:generateContent`` answer."""
        count = kind is RequestKind.COUNT
        answer = self._count if count else self._unary
        if answer is not None:
            return answer
        body = self.exchange.body  # streamed from disk: read whole
        decoded = decode(_split(body, self.format), self.format)
        return count_tokens(decoded) if count else merged_answer(decoded, body)

    def objects(self) -> list[dict[str, Any]]:
        """The JSON objects the body carries, in order (response objects, or ``chat.completion`` ones)."""
        return decode(_split(self.exchange.body, self.format), self.format).objects

    def gemini_form(self) -> GeminiForm:
        """The response objects with their times, for the compatibility routes to convert."""
        if self._gemini is not None:
            return self._gemini
        body, plan = self.exchange.body, schedule(self.exchange, self.speed)  # streamed from disk: read whole
        pieces = _split(body, self.format)
        decoded = decode(pieces, self.format)
        return GeminiForm(decoded, *object_times(decoded, pieces, plan))

    def answer(self) -> str | None:
        """The whole answer (the first candidate's non-thought text, or the first choice's text of a
        compatibility recording), for the verdict's ``result_text``."""
        if not self.lazy:
            return self._text
        if self.api is Api.OPENAI:
            return _chat_text(self.exchange.body, self.format)
        return full_text(decode(_split(self.exchange.body, self.format), self.format))


def _chat_text(body: bytes, fmt: BodyFormat) -> str | None:
    """The first choice's whole text in a recorded compatibility answer (a stream or one completion)."""
    decoded = decode(_split(body, fmt), fmt)
    if not decoded.objects:
        return None
    texts = []
    for obj in decoded.objects:
        for choice in obj.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                part = (choice.get("delta") or choice.get("message") or {}).get("content")
                texts.append(part if isinstance(part, str) else "")
    return "".join(texts)


class CatalogEntry:
    """One fixture: its exchanges as served, and what it tells about itself for matching."""

    def __init__(self, name: str, fixture: Fixture, speed: float) -> None:
        if not fixture.exchanges:
            raise ReplayError(f"{name}: the fixture holds no exchange")
        self.name = name
        self.fixture = fixture
        served = []
        for number, exchange in enumerate(fixture.exchanges, 1):
            try:
                served.append(ServedExchange(exchange, speed))
            except FixtureError as exc:
                where = f" exchange {number}:" if len(fixture.exchanges) > 1 else ""
                raise ReplayError(f"{name}:{where} {exc.detail}") from None
        self.served = served
        self.apis = frozenset(s.api for s in served if s.api is not None)
        self._any_api = Api.GEMINI in self.apis  # a Gemini fixture serves every API (asked per request)
        self.gemini = bool(self.apis)  # answers model requests (else: generic SSE)
        models = [s.recorded_model for s in served if s.recorded_model is not None]
        self.named_by_request = bool(models)
        if not models and self.gemini:
            models = [m for s in served for m in s.response_models]
        self.models: list[str] = list(dict.fromkeys(models))  # model ids it names, e.g. "gemini-2.0-flash"
        self.file_name = Path(name).name  # a request may name the fixture as its model: "cats.sse"
        self.stem = self.file_name.split(".")[0]  # or without extensions: "cats"
        self.errors_only = all(s.failing for s in served)  # never a stand-in for another model
        self.clean = not any(s.failing for s in served)  # preferred among equal matches
        self.recorded_paths = frozenset(s.recorded_path for s in served if s.recorded_path is not None)
        for s in served:
            s.work_out_gemini()
        self._cursor = 0
        self._lock = threading.Lock()

    def serves(self, api: Api) -> bool:
        """Whether requests of ``api`` may get this fixture: a Gemini fixture is served on the Gemini API
        and Vertex AI routes and, converted, on the compatibility routes; a compatibility recording only on
        the compatibility routes."""
        return self._any_api or api in self.apis

    def next_exchange(self) -> ServedExchange:
        """The exchange the next request gets: in order, the last one repeating."""
        with self._lock:
            index = self._cursor
            self._cursor += 1
        served = self.served
        return served[index] if index < len(served) else served[-1]

    def rewind(self) -> None:
        """Start again from the first exchange."""
        with self._lock:
            self._cursor = 0

    def describe(self) -> dict[str, Any]:
        """What a 404 lists about this fixture."""
        kind = "gemini" if Api.GEMINI in self.apis else "openai" if self.apis else "sse"
        out: dict[str, Any] = {"fixture": self.name, "kind": kind}
        out["name"] = self.stem
        if self.models:
            out["models"] = self.models
        if self.recorded_paths:
            out["recorded"] = sorted(self.recorded_paths)
        return out


class Catalog:
    """Everything a replay server serves, worked out once (see the module doc).

    ``source``: a path (fixture file or directory), fixture bytes, a ``Fixture``, an ``Exchange``, a
    scripted stream (anything with ``to_fixture()``), or a list of these. ``speed``: see ``ReplayServer``.
    """

    def __init__(self, source: ReplaySource | Sequence[ReplaySource], speed: float = 1.0) -> None:
        self.speed = check_speed(speed)
        self.entries = _load(source, self.speed)
        self._gemini = [e for e in self.entries if e.gemini]
        self._plain = [e for e in self.entries if not e.gemini]
        self.models: list[str] = sorted({m for e in self._gemini for m in e.models})

    def rewind(self) -> None:
        """Every fixture starts again from its first exchange."""
        for entry in self.entries:
            entry.rewind()

    def match(self, asked: Asked) -> CatalogEntry | None:
        """The fixture for a model request (rules: the ``_app`` module doc), or None."""
        if len(self.entries) == 1:
            only = self.entries[0]
            return only if only.serves(asked.api) else None
        model = asked.model
        serving = [e for e in self._gemini if e.serves(asked.api)]
        candidates = (
            [e for e in serving if model in e.models or model in (e.stem, e.file_name)]
            or [e for e in serving if any(m.startswith(model + "-") for m in e.models)]
            or [e for e in serving if not e.models and not e.errors_only]
        )
        if len(candidates) <= 1:
            return candidates[0] if candidates else None

        def score(served: ServedExchange) -> int:
            value = 0
            if asked.body and served.recorded_body and served.api is asked.api:
                if asked.doc is _NOT_JSON or served.recorded_doc is _NOT_JSON:
                    value += 8 if asked.body == served.recorded_body else 0
                elif asked.doc == served.recorded_doc:
                    value += 8
            full, turns = asked.keys
            if full is not None and full == served.recorded_keys[0]:
                value += 4
            if turns is not None and turns == served.recorded_keys[1]:
                value += 2
            return value + (served.recorded_kind == asked.kind)

        def rank(entry: CatalogEntry) -> tuple[int, bool, bool]:
            best = max((score(s) for s in entry.served if s.recorded_request), default=0)
            # then a recording of the API asked, then a stream that ends well before an error or a break
            return best, asked.api in entry.apis, entry.clean

        return max(candidates, key=rank)  # max keeps the first of equal ranks

    def recorded_for(self, path: str, body: bytes) -> CatalogEntry | None:
        """A fixture recorded for exactly ``path`` (an endpoint the app does not answer itself, such as
        ``embeddings``), the one recorded with the same body first; None when there is none."""
        chosen = [e for e in self.entries if path in e.recorded_paths]
        same = [
            e for e in chosen if any(s.recorded_body == body for s in e.served if s.recorded_path == path)
        ]
        found = same or chosen
        return found[0] if found else None

    def for_path(self, path: str) -> CatalogEntry | None:
        """The fixture for a generic (non-Gemini) path (rules: the ``_app`` module doc), or None."""
        last = path.rstrip("/").rsplit("/", 1)[-1]
        plain = self._plain
        chosen = (
            [e for e in self.entries if path in e.recorded_paths]
            or [e for e in plain if last and last in (e.stem, e.file_name)]
            or (plain if len(plain) == 1 else [])
            or (self.entries if len(self.entries) == 1 else [])
        )
        return chosen[0] if chosen else None

    def describe(self) -> list[dict[str, Any]]:
        """What a 404 lists: every fixture, with its models and recorded paths."""
        return [e.describe() for e in self.entries]


def fixture_files(directory: Path) -> list[Path]:
    """The fixture files of ``directory`` as a server of it serves them, by name: not hidden files, READMEs,
    Markdown, reStructuredText or Python (a build script beside the fixtures), nor a symlink that leads
    out of the directory."""
    inside = directory.resolve()
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and not _FIXTURE_SKIP.search(p.name) and p.resolve().is_relative_to(inside)
    )


def _load_path(path: Path, speed: float) -> list[CatalogEntry]:
    if path.is_dir():
        files = fixture_files(path)
        if not files:
            raise ReplayError(f"{path}: no fixture files in this directory")
        return [CatalogEntry(str(p), load_fixture(p), speed) for p in files]
    return [CatalogEntry(str(path), load_fixture(path), speed)]


def _load(source: ReplaySource | Sequence[ReplaySource], speed: float) -> list[CatalogEntry]:
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    entries: list[CatalogEntry] = []
    for number, item in enumerate(items, 1):
        if isinstance(item, (str, os.PathLike)):
            entries.extend(_load_path(Path(item), speed))
        elif isinstance(item, (bytes, bytearray)):
            name = f"<bytes {number}>"
            entries.append(CatalogEntry(name, loads_fixture(bytes(item), name), speed))
        elif isinstance(item, Fixture):
            entries.append(CatalogEntry(item.source or f"<fixture {number}>", item, speed))
        elif isinstance(item, Exchange):
            entries.append(CatalogEntry(f"<exchange {number}>", Fixture([item]), speed))
        elif isinstance(item, _Scripted):
            fixture = item.to_fixture()
            entries.append(
                CatalogEntry(fixture.source or f"<{type(item).__name__} {number}>", fixture, speed)
            )
        else:
            raise ReplayError(
                f"cannot serve a {type(item).__name__}: give a path, bytes, Fixture or Exchange"
            )
    if not entries:
        raise ReplayError("nothing to serve: no fixture given")
    return entries
