"""Gemini layer: typed ``GenerateContentResponse`` objects, decoded from (and back to) the API's JSON.

Each object is a slots dataclass with snake_case attributes, in the field order of the API's protos (which
is the order the API writes its JSON keys in). ``from_dict`` takes the dict that ``orjson.loads`` gives;
``to_dict`` gives back exactly the API's camelCase JSON: keys the API sent that we do not model are kept in
``extra`` and written back, and a decoded object remembers its key order, so
``from_dict(d).to_dict() == d`` with the same key order (``bench/bench_gemini.py`` and the wire tests rely
on it). Byte strings (``thoughtSignature``, ``inlineData.data``) stay base64 text as on the wire.

Decoding is one generic loop over the keys present (not over all declared fields): Gemini parts carry one
or two of their dozen fields, so this is what keeps a typed response cheap to build.
"""

from __future__ import annotations

import dataclasses
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
    "ModalityTokenCount",
    "Part",
    "PromptFeedback",
    "SafetyRating",
    "SearchEntryPoint",
    "Segment",
    "UsageMetadata",
    "WebChunk",
]

_M = TypeVar("_M", bound="_Message")


@dataclass(slots=True)
class _Message:
    """Base of every typed object: the unknown keys and the key order that make ``to_dict`` exact."""

    # Keys the API sent that this class does not model, with their raw JSON values (camelCase).
    extra: dict[str, Any] | None = field(default=None, kw_only=True, repr=False)
    # Key order of the dict this object was decoded from; None for objects built in code.
    _order: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)

    # (attribute, key, kind) in field order; kind 0 plain, 1 object, 2 list of objects.
    _OUT: ClassVar[tuple[tuple[str, str, int], ...]]

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


def _register(cls: type[_Message], **nested: Any) -> None:
    """Fill ``_OUT`` of ``cls`` and generate its ``from_dict``.

    ``nested`` maps a field to its class, or to ``[class]`` for a list. The generated decoder is straight-line
    code, one ``d.get`` per field, like the ``__init__`` that ``dataclasses`` itself generates: a loop over a
    field table cost 3x more per response (measured with bench/bench_gemini.py).
    """
    known = set()
    out = []
    lines = ["def from_dict(cls, d):", "    get = d.get", "    obj = new(cls)"]
    namespace: dict[str, Any] = {"new": object.__new__, "not_a_list": _not_a_list}
    for f in dataclasses.fields(cls):
        if f.name in ("extra", "_order"):
            continue
        key = _camel(f.name)
        known.add(key)
        kind_of = nested.get(f.name)
        if kind_of is None:
            out.append((f.name, key, 0))
            lines.append(f"    obj.{f.name} = get({key!r})")
            continue
        lines.append(f"    v = get({key!r})")
        if isinstance(kind_of, list):
            namespace[f"d_{f.name}"] = kind_of[0].from_dict
            out.append((f.name, key, 2))
            lines.append(
                f"    obj.{f.name} = None if v is None else [d_{f.name}(x) for x in v] if type(v) is list "
                f"else not_a_list({key!r}, v)"
            )
        else:
            namespace[f"d_{f.name}"] = kind_of.from_dict
            out.append((f.name, key, 1))
            lines.append(f"    obj.{f.name} = None if v is None else d_{f.name}(v)")
    namespace["known"] = frozenset(known)
    namespace["issuperset"] = namespace["known"].issuperset
    lines += [
        "    obj.extra = None if issuperset(d) else {k: v for k, v in d.items() if k not in known}",
        "    obj._order = tuple(d)",
        "    return obj",
    ]
    exec("\n".join(lines), namespace)  # noqa: S102 - our own generated source, no input involved
    cls._OUT = tuple(out)
    from_dict = namespace["from_dict"]
    from_dict.__doc__ = _Message.from_dict.__doc__
    cls.from_dict = classmethod(from_dict)  # type: ignore[assignment,method-assign]


# -- parts -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FunctionCall(_Message):
    """A call the model asks for: ``name``, ``args`` (JSON object) and, from Gemini 3 on, an ``id``."""

    name: str | None = None
    args: dict[str, Any] | None = None
    id: str | None = None


@dataclass(slots=True)
class FunctionResponse(_Message):
    """The result of a function call, as sent back to the model."""

    name: str | None = None
    response: dict[str, Any] | None = None
    id: str | None = None


@dataclass(slots=True)
class ExecutableCode(_Message):
    """Code the model wrote for the code-execution tool (``language`` e.g. "PYTHON")."""

    language: str | None = None
    code: str | None = None


@dataclass(slots=True)
class CodeExecutionResult(_Message):
    """The outcome ("OUTCOME_OK", "OUTCOME_FAILED", ...) and output of running ``ExecutableCode``."""

    outcome: str | None = None
    output: str | None = None


@dataclass(slots=True)
class Blob(_Message):
    """Inline bytes: ``data`` is base64 text as on the wire."""

    mime_type: str | None = None
    data: str | None = None


@dataclass(slots=True)
class FileData(_Message):
    """A reference to an uploaded file."""

    mime_type: str | None = None
    file_uri: str | None = None


@dataclass(slots=True)
class Part(_Message):
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
class Content(_Message):
    """The ``parts`` of one turn and its ``role`` ("model")."""

    parts: list[Part] | None = None
    role: str | None = None


# -- candidate metadata --------------------------------------------------------------------------------------


@dataclass(slots=True)
class SafetyRating(_Message):
    """One harm category's rating."""

    category: str | None = None
    probability: str | None = None
    blocked: bool | None = None


@dataclass(slots=True)
class CitationSource(_Message):
    """A source the answer cites, with the character range of the answer it covers."""

    start_index: int | None = None
    end_index: int | None = None
    uri: str | None = None
    license: str | None = None


@dataclass(slots=True)
class CitationMetadata(_Message):
    """The citations of a candidate."""

    citation_sources: list[CitationSource] | None = None


@dataclass(slots=True)
class WebChunk(_Message):
    """A web page that grounded the answer."""

    uri: str | None = None
    title: str | None = None


@dataclass(slots=True)
class GroundingChunk(_Message):
    """One grounding source (``web`` for Google Search grounding)."""

    web: WebChunk | None = None
    retrieved_context: dict[str, Any] | None = None


@dataclass(slots=True)
class Segment(_Message):
    """A stretch of the answer text."""

    part_index: int | None = None
    start_index: int | None = None
    end_index: int | None = None
    text: str | None = None


@dataclass(slots=True)
class GroundingSupport(_Message):
    """Which grounding chunks support which segment of the answer."""

    segment: Segment | None = None
    grounding_chunk_indices: list[int] | None = None
    confidence_scores: list[float] | None = None


@dataclass(slots=True)
class SearchEntryPoint(_Message):
    """The Google Search suggestions widget to show with a grounded answer."""

    rendered_content: str | None = None
    sdk_blob: str | None = None


@dataclass(slots=True)
class GroundingMetadata(_Message):
    """Search queries, sources and supports of a grounded answer."""

    search_entry_point: SearchEntryPoint | None = None
    grounding_chunks: list[GroundingChunk] | None = None
    grounding_supports: list[GroundingSupport] | None = None
    retrieval_metadata: dict[str, Any] | None = None
    web_search_queries: list[str] | None = None


@dataclass(slots=True)
class Candidate(_Message):
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
class PromptFeedback(_Message):
    """Feedback on the prompt; ``block_reason`` is set when it was blocked (then there are no candidates)."""

    block_reason: str | None = None
    safety_ratings: list[SafetyRating] | None = None
    block_reason_message: str | None = None


@dataclass(slots=True)
class ModalityTokenCount(_Message):
    """Tokens of one modality ("TEXT", "IMAGE", "AUDIO", "VIDEO", "DOCUMENT")."""

    modality: str | None = None
    token_count: int | None = None


@dataclass(slots=True)
class UsageMetadata(_Message):
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
class GenerateContentResponse(_Message):
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

    # The conveniences skip values of the wrong JSON type (the objects do not validate types).

    @property
    def text(self) -> str | None:
        """The text of the first candidate's non-thought parts, joined; None if it has none."""
        texts = [part.text for part in self._parts() if type(part.text) is str and not part.thought]
        return "".join(texts) if texts else None

    @property
    def thoughts(self) -> str | None:
        """The thought-summary text of the first candidate, joined; None if it has none."""
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
_leaf: type[_Message]
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
_register(Content, parts=[Part])
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
