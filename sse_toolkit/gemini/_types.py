"""Gemini layer: typed ``GenerateContentResponse`` objects, decoded from (and back to) the API's JSON.

Each object is a slots dataclass with snake_case attributes, in the field order of the API's protos (which
is the order the API writes its JSON keys in). ``from_dict`` takes the dict that ``orjson.loads`` gives;
``to_dict`` gives back exactly the API's camelCase JSON: keys the API sent that we do not model are kept in
``extra`` and written back, and a decoded object remembers its key order, so
``from_dict(d).to_dict() == d`` with the same key order (``bench/bench_gemini.py`` and the wire tests rely
on it). Byte strings (``thoughtSignature``, ``inlineData.data``) stay base64 text as on the wire.

``from_dict`` builds the whole tree at once. The stream decoder uses ``_lazy_from_dict`` on the dicts that
orjson just made for it (nobody else holds them): it checks the JSON types of the whole tree at once (so a
malformed event fails where it arrives, exactly as ``from_dict`` would), builds the object and its single
nested objects (usage, content, ...), and leaves the lists of objects (candidates, parts, token details, ...)
as unset slots that ``__getattr__`` builds from the kept dict on first access and caches. ``text`` and
``thoughts`` read the kept dict while the candidates are unbuilt (so untouched). Equality, repr, ``to_dict``,
copy and pickle read attributes, so they see the same values either way. A consumer that reads
``response.text`` and the usage pays for one orjson dict and two small objects instead of ~6
(bench/bench_gemini.py: building them was most of the cost).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Blob",
    "Candidate",
    "CitationMetadata",
    "CitationSource",
    "CodeExecutionResult",
    "Content",
    "ExecutableCode",
    "FileData",
    "FunctionCall",
    "FunctionResponse",
    "GenerateContentResponse",
    "GroundingChunk",
    "GroundingMetadata",
    "GroundingSupport",
    "Message",
    "ModalityTokenCount",
    "Part",
    "PromptFeedback",
    "SafetyRating",
    "SearchEntryPoint",
    "Segment",
    "UsageMetadata",
    "WebChunk",
]

_M = TypeVar("_M", bound="Message")
# Marks a list in a lazily decoded object's kept dict as built (its slot holds the objects now).
_BUILT: Any = object()


@dataclass(slots=True)
class Message:
    """Base of every typed object: the unknown keys and the key order that make ``to_dict`` exact."""

    # Keys the API sent that this class does not model, with their raw JSON values (camelCase).
    extra: dict[str, Any] | None = field(default=None, kw_only=True, repr=False)
    # Key order of the dict this object was decoded from; None for objects built in code.
    _order: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)
    # Lazily decoded objects with lists: the dict they came from. A list is replaced there by ``_BUILT`` once
    # built (keeping the key order). None for objects built in code or by ``from_dict``, and those without lists.
    _raw: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    # (attribute, key, kind) in field order; kind 0 plain, 1 object, 2 list of objects.
    _OUT: ClassVar[tuple[tuple[str, str, int], ...]]
    # Lists of objects, built on first access in a lazily decoded object: attribute -> (key, item builder).
    _LAZY: ClassVar[dict[str, tuple[str, Callable[[dict[str, Any]], Any]]]] = {}
    _KNOWN: ClassVar[frozenset[str]] = frozenset()
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def __getattr__(self, name: str) -> Any:
        # Only called for a slot that is not set: in a lazily decoded object, a list of objects, ``extra``
        # or ``_order``, made now from the kept dict and cached in the slot.
        raw = self._raw if name != "_raw" else None  # an object not set up yet (copy, pickle) has no _raw
        if raw is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if name == "_order":
            value: Any = tuple(raw)
        elif name == "extra":
            known = self._KNOWN
            value = None if known.issuperset(raw) else {k: v for k, v in raw.items() if k not in known}
        else:
            spec = self._LAZY.get(name)
            if spec is None or raw.get(spec[0]) is _BUILT:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            key, build = spec
            value = raw.get(key)
            if value is not None:
                raw[key] = _BUILT
                value = [build(item) for item in value]
        object.__setattr__(self, name, value)
        return value

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # copy and pickle: build what is still lazy, so that no two objects share the kept dict.
        state = {name: getattr(self, name) for name in self._FIELDS}
        state["_raw"] = None
        return None, state

    @staticmethod
    def _lazy_from_dict(d: dict[str, Any]) -> Any:
        """Decode a dict that only the caller holds (it is kept and changed); type errors as ``from_dict``."""
        raise NotImplementedError  # replaced per class by _register with generated code

    @classmethod
    def from_dict(cls: type[_M], d: dict[str, Any]) -> _M:
        """Decode the API's JSON object (camelCase keys, as ``orjson.loads`` returns it).

        Scalars are taken as they are; where an object or an array belongs, a value of another JSON type
        raises ``TypeError`` or ``AttributeError`` (``iter_responses`` turns them into GeminiDecodeError).
        """
        raise NotImplementedError  # replaced per class by _register with generated code

    def to_dict(self) -> dict[str, Any]:
        """The API's camelCase JSON object: known fields that are set, then ``extra``, in the original order."""
        out: dict[str, Any] = {}
        order = self._order
        for attr, key, kind in self._OUT:
            value = getattr(self, attr)
            if value is None:
                if order is not None and key in order:
                    out[key] = None  # an explicit null the API sent (it never does; a hand-written file may)
                continue
            if kind == 1:
                value = value.to_dict()
            elif kind == 2:
                value = [item.to_dict() for item in value]
            out[key] = value
        if self.extra:
            out.update(self.extra)
        if order is not None and tuple(out) != order:
            # Put keys back where the API had them; keys set since decoding go last.
            ordered = {key: out.pop(key) for key in order if key in out}
            ordered.update(out)
            out = ordered
        return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _not_a_list(key: str, value: Any) -> Any:
    raise TypeError(f"{key!r} must be a JSON array, got {type(value).__name__}")


def _not_an_object(key: str, value: Any) -> Any:
    raise TypeError(f"{key!r}: expected a JSON object, got {type(value).__name__}")


def _check_lines(cls: type[Message], var: str, pad: str, namespace: dict[str, Any], depth: int) -> list[str]:
    """Source that checks the JSON types of the tree under dict ``var`` (a ``cls`` object), inlined.

    Where an object or an array belongs, another JSON type raises ``TypeError``, as ``from_dict`` would fail on
    it. One function for the whole tree: a call per level cost more than the checks themselves. Keys that are
    usually there are looked up one by one; the others are skipped together by one C-speed test.
    """
    lines: list[str] = []
    rare = [spec for spec in cls._NESTED if not spec[3]]  # type: ignore[attr-defined]
    common = [spec for spec in cls._NESTED if spec[3]]  # type: ignore[attr-defined]
    if rare:
        skip = f"skip_{cls.__name__}"
        namespace[skip] = frozenset(key for key, _, _, _ in rare).isdisjoint
        lines.append(f"{pad}if not {skip}({var}):")
        lines += _check_keys(rare, var, pad + "    ", namespace, depth)
    return _check_keys(common, var, pad, namespace, depth) + lines


def _check_keys(specs: list[Any], var: str, pad: str, namespace: dict[str, Any], depth: int) -> list[str]:
    value, item = f"v{depth}", f"x{depth}"
    lines = []
    for key, is_list, item_cls, _ in specs:
        lines += [f"{pad}{value} = {var}.get({key!r})", f"{pad}if {value} is not None:"]
        if is_list:
            lines += [
                f"{pad}    if type({value}) is not list: not_a_list({key!r}, {value})",
                f"{pad}    for {item} in {value}:",
                f"{pad}        if type({item}) is not dict: not_an_object({key!r}, {item})",
                *_check_lines(item_cls, item, pad + "        ", namespace, depth + 1),
            ]
        else:
            lines += [
                f"{pad}    if type({value}) is not dict: not_an_object({key!r}, {value})",
                *_check_lines(item_cls, value, pad + "    ", namespace, depth + 1),
            ]
    return lines


def _register(cls: type[Message], common: tuple[str, ...] = (), **nested: Any) -> None:
    """Fill ``_OUT`` and ``_LAZY`` of ``cls`` and generate its ``from_dict`` and lazy decoders.

    ``nested`` maps a field to its class, or to ``[class]`` for a list; ``common`` names the nested fields
    that are nearly always there (the checker looks those up first). The generated decoders are straight-line
    code, one ``d.get`` per field, like the ``__init__`` that ``dataclasses`` itself generates: a loop over a
    field table cost 3x more per response (measured with bench/bench_gemini.py).

    - ``from_dict``: builds the whole tree.
    - ``_lazy_from_dict``: checks the types of the whole tree, builds this object and its single nested
      objects (their own lazy decoders), and leaves the lists of objects to ``__getattr__``.
    - ``_lazy_build``: the same for a dict already checked (what ``__getattr__`` uses), with no checks.
    """
    known = set()
    out = []
    lazy = {}
    nested_keys = []
    eager = ["def from_dict(cls, d):", "    get = d.get", "    obj = new(cls)"]
    build = ["def lazy_build(d):", "    obj = new(cls)"]
    checked = ["def lazy_from_dict(d):", "    obj = new(cls)"]
    namespace: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "not_a_list": _not_a_list,
        "not_an_object": _not_an_object,
    }
    for f in dataclasses.fields(cls):
        if f.name in ("extra", "_order", "_raw"):
            continue
        key = _camel(f.name)
        known.add(key)
        kind_of = nested.get(f.name)
        if kind_of is None:
            out.append((f.name, key, 0))
            eager.append(f"    obj.{f.name} = get({key!r})")
            # "in" and a subscript are plain bytecodes, cheaper than calling get (measured: ~10% of a build).
            build.append(f"    obj.{f.name} = d[{key!r}] if {key!r} in d else None")
            checked.append(f"    obj.{f.name} = d[{key!r}] if {key!r} in d else None")
            continue
        item_cls = kind_of[0] if isinstance(kind_of, list) else kind_of
        spec = (key, isinstance(kind_of, list), item_cls, f.name in common)
        nested_keys.append(spec)
        namespace[f"d_{f.name}"] = item_cls.from_dict
        namespace[f"b_{f.name}"] = item_cls._lazy_build
        namespace[f"c_{f.name}"] = item_cls._lazy_from_dict
        eager.append(f"    v = get({key!r})")
        build.append(f"    v = d[{key!r}] if {key!r} in d else None")
        checked.append(f"    v = d[{key!r}] if {key!r} in d else None")
        if isinstance(kind_of, list):
            # Lists (candidates, parts, token details, ...) hold the bulk: built on first access. A key that
            # is absent is None at once: no __getattr__ round trip for it.
            out.append((f.name, key, 2))
            lazy[f.name] = (key, item_cls._lazy_build)
            eager.append(
                f"    obj.{f.name} = None if v is None else [d_{f.name}(x) for x in v] if type(v) is list "
                f"else not_a_list({key!r}, v)"
            )
            build.append(f"    if v is None: obj.{f.name} = None")
            checked += [
                f"    if v is None: obj.{f.name} = None",
                "    else:",
                f"        if type(v) is not list: not_a_list({key!r}, v)",
                "        for x0 in v:",
                f"            if type(x0) is not dict: not_an_object({key!r}, x0)",
                *_check_lines(item_cls, "x0", "            ", namespace, 1),
            ]
        else:
            # A single object (usage, content, a function call) is built at once, its own lists lazily:
            # cheaper than the __getattr__ round trip when it is read, as usage and content nearly always are.
            out.append((f.name, key, 1))
            eager.append(f"    obj.{f.name} = None if v is None else d_{f.name}(v)")
            build.append(f"    obj.{f.name} = None if v is None else b_{f.name}(v)")
            checked.append(
                f"    obj.{f.name} = None if v is None else c_{f.name}(v) if type(v) is dict "
                f"else not_an_object({key!r}, v)"
            )
    cls._NESTED = tuple(nested_keys)  # type: ignore[attr-defined]
    namespace["known"] = frozenset(known)
    namespace["issuperset"] = namespace["known"].issuperset
    tail = [
        "    obj.extra = None if issuperset(d) else {k: v for k, v in d.items() if k not in known}",
        "    obj._order = tuple(d)",
    ]
    eager += [*tail, "    obj._raw = None", "    return obj"]
    # An object that keeps its dict (it has lists) makes ``extra`` and ``_order`` from it when they are read.
    lazy_tail = ["    obj._raw = d"] if lazy else [*tail, "    obj._raw = None"]
    build += [*lazy_tail, "    return obj"]
    checked += [*lazy_tail, "    return obj"]
    exec("\n".join(eager + build + checked), namespace)  # noqa: S102 - our own generated source, no input
    cls._OUT = tuple(out)
    cls._LAZY = lazy
    cls._KNOWN = namespace["known"]
    cls._FIELDS = tuple(f.name for f in dataclasses.fields(cls))
    from_dict = namespace["from_dict"]
    from_dict.__doc__ = Message.from_dict.__doc__
    cls.from_dict = classmethod(from_dict)  # type: ignore[assignment,method-assign]
    cls._lazy_from_dict = staticmethod(namespace["lazy_from_dict"])  # type: ignore[method-assign]
    cls._lazy_build = staticmethod(namespace["lazy_build"])  # type: ignore[attr-defined]


# -- parts -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FunctionCall(Message):
    """A call the model asks for: ``name``, ``args`` (JSON object) and, from Gemini 3 on, an ``id``."""

    name: str | None = None
    args: dict[str, Any] | None = None
    id: str | None = None


@dataclass(slots=True)
class FunctionResponse(Message):
    """The result of a function call, as sent back to the model."""

    name: str | None = None
    response: dict[str, Any] | None = None
    id: str | None = None


@dataclass(slots=True)
class ExecutableCode(Message):
    """Code the model wrote for the code-execution tool (``language`` e.g. "PYTHON")."""

    language: str | None = None
    code: str | None = None


@dataclass(slots=True)
class CodeExecutionResult(Message):
    """The outcome ("OUTCOME_OK", "OUTCOME_FAILED", ...) and output of running ``ExecutableCode``."""

    outcome: str | None = None
    output: str | None = None


@dataclass(slots=True)
class Blob(Message):
    """Inline bytes: ``data`` is base64 text as on the wire."""

    mime_type: str | None = None
    data: str | None = None


@dataclass(slots=True)
class FileData(Message):
    """A reference to an uploaded file."""

    mime_type: str | None = None
    file_uri: str | None = None


@dataclass(slots=True)
class Part(Message):
    """One part of a ``Content``: text (``thought=True`` for a thought summary) or one of the other kinds."""

    text: str | None = None
    inline_data: Blob | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    file_data: FileData | None = None
    executable_code: ExecutableCode | None = None
    code_execution_result: CodeExecutionResult | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    video_metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class Content(Message):
    """The ``parts`` of one turn and its ``role`` ("model")."""

    parts: list[Part] | None = None
    role: str | None = None


# -- candidate metadata --------------------------------------------------------------------------------------


@dataclass(slots=True)
class SafetyRating(Message):
    """One harm category's rating."""

    category: str | None = None
    probability: str | None = None
    blocked: bool | None = None


@dataclass(slots=True)
class CitationSource(Message):
    """A source the answer cites, with the character range of the answer it covers."""

    start_index: int | None = None
    end_index: int | None = None
    uri: str | None = None
    license: str | None = None


@dataclass(slots=True)
class CitationMetadata(Message):
    """The citations of a candidate."""

    citation_sources: list[CitationSource] | None = None


@dataclass(slots=True)
class WebChunk(Message):
    """A web page that grounded the answer."""

    uri: str | None = None
    title: str | None = None


@dataclass(slots=True)
class GroundingChunk(Message):
    """One grounding source (``web`` for Google Search grounding)."""

    web: WebChunk | None = None
    retrieved_context: dict[str, Any] | None = None


@dataclass(slots=True)
class Segment(Message):
    """A stretch of the answer text."""

    part_index: int | None = None
    start_index: int | None = None
    end_index: int | None = None
    text: str | None = None


@dataclass(slots=True)
class GroundingSupport(Message):
    """Which grounding chunks support which segment of the answer."""

    segment: Segment | None = None
    grounding_chunk_indices: list[int] | None = None
    confidence_scores: list[float] | None = None


@dataclass(slots=True)
class SearchEntryPoint(Message):
    """The Google Search suggestions widget to show with a grounded answer."""

    rendered_content: str | None = None
    sdk_blob: str | None = None


@dataclass(slots=True)
class GroundingMetadata(Message):
    """Search queries, sources and supports of a grounded answer."""

    search_entry_point: SearchEntryPoint | None = None
    grounding_chunks: list[GroundingChunk] | None = None
    grounding_supports: list[GroundingSupport] | None = None
    retrieval_metadata: dict[str, Any] | None = None
    web_search_queries: list[str] | None = None


@dataclass(slots=True)
class Candidate(Message):
    """One candidate answer. In a stream, ``content`` holds this event's delta; ``finish_reason`` ends it."""

    content: Content | None = None
    finish_reason: str | None = None
    index: int | None = None
    finish_message: str | None = None
    safety_ratings: list[SafetyRating] | None = None
    citation_metadata: CitationMetadata | None = None
    token_count: int | None = None
    grounding_attributions: list[Any] | None = None
    grounding_metadata: GroundingMetadata | None = None
    avg_logprobs: float | None = None
    logprobs_result: dict[str, Any] | None = None
    url_context_metadata: dict[str, Any] | None = None


# -- response --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PromptFeedback(Message):
    """Feedback on the prompt; ``block_reason`` is set when it was blocked (then there are no candidates)."""

    block_reason: str | None = None
    safety_ratings: list[SafetyRating] | None = None
    block_reason_message: str | None = None


@dataclass(slots=True)
class ModalityTokenCount(Message):
    """Tokens of one modality ("TEXT", "IMAGE", "AUDIO", "VIDEO", "DOCUMENT")."""

    modality: str | None = None
    token_count: int | None = None


@dataclass(slots=True)
class UsageMetadata(Message):
    """Token counts. In a stream every event carries the running totals; the last one counts."""

    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    total_token_count: int | None = None
    cached_content_token_count: int | None = None
    prompt_tokens_details: list[ModalityTokenCount] | None = None
    cache_tokens_details: list[ModalityTokenCount] | None = None
    candidates_tokens_details: list[ModalityTokenCount] | None = None
    tool_use_prompt_token_count: int | None = None
    tool_use_prompt_tokens_details: list[ModalityTokenCount] | None = None
    thoughts_token_count: int | None = None
    service_tier: str | None = None


@dataclass(slots=True)
class GenerateContentResponse(Message):
    """One ``generateContent`` response, or one event of ``streamGenerateContent``.

    Conveniences as in google-genai: ``text`` (non-thought text of the first candidate), ``thoughts``
    (its thought text), ``function_calls`` (its function calls); each is None when there is none.
    """

    candidates: list[Candidate] | None = None
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None

    def _parts(self) -> list[Part]:
        if not self.candidates:
            return []
        content = self.candidates[0].content
        return (content.parts or []) if content is not None else []

    def _raw_parts(self) -> list[dict[str, Any]] | None:
        """The first candidate's part dicts while the candidates are not built yet (else None: use the
        objects). Unbuilt means untouched: nothing can have changed them, so both give the same answer."""
        raw = self._raw
        if raw is None:
            return None
        candidates = raw.get("candidates")  # checked: a list of dicts, or None
        if candidates is _BUILT:
            return None
        if not candidates:
            return []
        content = candidates[0].get("content")
        return (content.get("parts") or []) if content is not None else []

    # The conveniences skip values of the wrong JSON type (the objects do not validate types).

    @property
    def text(self) -> str | None:
        """The text of the first candidate's non-thought parts, joined; None if it has none."""
        raw = self._raw
        # _raw_parts inlined, with the one-part case first: this is what a stream's consumer reads per event.
        candidates = raw.get("candidates", _BUILT) if raw is not None else _BUILT
        if candidates is _BUILT:
            texts = [part.text for part in self._parts() if type(part.text) is str and not part.thought]
        else:
            content = candidates[0].get("content") if candidates else None
            parts = content.get("parts") if content is not None else None
            if not parts:
                return None
            if len(parts) == 1:
                part = parts[0]
                text = part.get("text")
                return text if type(text) is str and not part.get("thought") else None
            texts = [part["text"] for part in parts if type(part.get("text")) is str and not part.get("thought")]
        return "".join(texts) if texts else None

    @property
    def thoughts(self) -> str | None:
        """The thought-summary text of the first candidate, joined; None if it has none."""
        parts = self._raw_parts()
        if parts is not None:
            texts = [part["text"] for part in parts if type(part.get("text")) is str and part.get("thought")]
        else:
            texts = [part.text for part in self._parts() if type(part.text) is str and part.thought]
        return "".join(texts) if texts else None

    @property
    def function_calls(self) -> list[FunctionCall] | None:
        """The function calls of the first candidate, in order; None if it has none."""
        calls = [part.function_call for part in self._parts() if isinstance(part.function_call, FunctionCall)]
        return calls or None

    @property
    def finish_reason(self) -> str | None:
        """The first candidate's ``finish_reason`` (None while it is still streaming)."""
        return self.candidates[0].finish_reason if self.candidates else None

    @property
    def block_reason(self) -> str | None:
        """``prompt_feedback.block_reason``: set when the prompt was blocked."""
        return self.prompt_feedback.block_reason if self.prompt_feedback is not None else None


# Leaves first: a class's decoder refers to the classes nested in it.
_leaf: type[Message]
for _leaf in (FunctionCall, FunctionResponse, ExecutableCode, CodeExecutionResult, Blob, FileData):
    _register(_leaf)
_register(
    Part,
    inline_data=Blob,
    function_call=FunctionCall,
    function_response=FunctionResponse,
    file_data=FileData,
    executable_code=ExecutableCode,
    code_execution_result=CodeExecutionResult,
)
_register(Content, common=("parts",), parts=[Part])
for _leaf in (SafetyRating, CitationSource, WebChunk, Segment, SearchEntryPoint, ModalityTokenCount):
    _register(_leaf)
_register(CitationMetadata, citation_sources=[CitationSource])
_register(GroundingChunk, web=WebChunk)
_register(GroundingSupport, segment=Segment)
_register(
    GroundingMetadata,
    search_entry_point=SearchEntryPoint,
    grounding_chunks=[GroundingChunk],
    grounding_supports=[GroundingSupport],
)
_register(
    Candidate,
    common=("content",),
    content=Content,
    safety_ratings=[SafetyRating],
    citation_metadata=CitationMetadata,
    grounding_metadata=GroundingMetadata,
)
_register(PromptFeedback, safety_ratings=[SafetyRating])
_register(
    UsageMetadata,
    prompt_tokens_details=[ModalityTokenCount],
    cache_tokens_details=[ModalityTokenCount],
    candidates_tokens_details=[ModalityTokenCount],
    tool_use_prompt_tokens_details=[ModalityTokenCount],
)
_register(GenerateContentResponse, candidates=[Candidate], prompt_feedback=PromptFeedback, usage_metadata=UsageMetadata)
del _leaf


class _CandidatesSlot:
    """``GenerateContentResponse.candidates``: its slot, which also marks the kept dict when it is set.

    ``text`` and ``thoughts`` read the kept dict while the candidates are not built; a value assigned
    without reading them first must end that, or they would answer from the old candidates.
    """

    __slots__ = ("slot",)

    def __init__(self, slot: Any) -> None:
        self.slot = slot

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else self.slot.__get__(obj, owner)

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)
        try:
            raw = _RAW_SLOT.__get__(obj)
        except AttributeError:  # not set up yet: dataclass __init__, copy
            return
        if raw is not None and "candidates" in raw:
            raw["candidates"] = _BUILT

    def __delete__(self, obj: Any) -> None:
        raw = _RAW_SLOT.__get__(obj)
        if raw is not None and raw.get("candidates", _BUILT) is not _BUILT:
            raw["candidates"] = _BUILT  # not built yet: the slot is empty, and stays so
            return
        self.slot.__delete__(obj)


_RAW_SLOT = Message.__dict__["_raw"]
GenerateContentResponse.candidates = _CandidatesSlot(  # type: ignore[assignment,misc]
    GenerateContentResponse.__dict__["candidates"]
)
