"""Gemini layer: typed ``GenerateContentResponse`` objects, declared as the API's JSON has them.

Each object is a slots dataclass with snake_case attributes, in the field order of the API's protos (which
is the order the API writes its JSON keys in). ``from_dict`` takes the dict that ``orjson.loads`` gives and
``to_dict`` gives back exactly the API's camelCase JSON (see _message.py); byte strings
(``thoughtSignature``, ``inlineData.data``) stay base64 text as on the wire.

The stream decoder decodes lazily: the JSON types of the whole tree are checked at once (so a malformed
event fails where it arrives, as ``from_dict`` would), single nested objects (usage, content, ...) are built
at once, and the lists of objects only when first read. ``text`` and ``thoughts`` read the kept dict while
the candidates are unbuilt (so untouched): a consumer that reads ``response.text`` and the usage pays for
one orjson dict and two small objects. The decoders are generated per class by ``register`` (_codegen.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._codegen import register
from ._message import BUILT, Message, clear_raw_on_assign

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


# -- parts ---------------------------------------------------------------------------------------------------


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


# -- response ------------------------------------------------------------------------------------------------


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
        if candidates is BUILT:
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
        parts: list[Any] | None = None
        if raw is not None:
            # What a stream's consumer reads per event: subscripts for the usual shape (the types were
            # checked at decoding), the careful walk of _raw_parts for the rest.
            try:
                parts = raw["candidates"][0]["content"]["parts"]
            except (KeyError, IndexError, TypeError):  # a key absent, no candidate, or candidates built
                parts = self._raw_parts()
        if parts is None:
            texts = [part.text for part in self._parts() if type(part.text) is str and not part.thought]
        elif len(parts) == 1:
            part = parts[0]
            text = part.get("text")
            return text if type(text) is str and ("thought" not in part or not part["thought"]) else None
        else:
            texts = [
                part["text"] for part in parts if type(part.get("text")) is str and not part.get("thought")
            ]
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
    register(_leaf)
register(
    Part,
    inline_data=Blob,
    function_call=FunctionCall,
    function_response=FunctionResponse,
    file_data=FileData,
    executable_code=ExecutableCode,
    code_execution_result=CodeExecutionResult,
)
register(Content, common=("parts",), parts=[Part])
for _leaf in (SafetyRating, CitationSource, WebChunk, Segment, SearchEntryPoint, ModalityTokenCount):
    register(_leaf)
register(CitationMetadata, citation_sources=[CitationSource])
register(GroundingChunk, web=WebChunk)
register(GroundingSupport, segment=Segment)
register(
    GroundingMetadata,
    search_entry_point=SearchEntryPoint,
    grounding_chunks=[GroundingChunk],
    grounding_supports=[GroundingSupport],
)
register(
    Candidate,
    common=("content",),
    content=Content,
    safety_ratings=[SafetyRating],
    citation_metadata=CitationMetadata,
    grounding_metadata=GroundingMetadata,
)
register(PromptFeedback, safety_ratings=[SafetyRating])
register(
    UsageMetadata,
    prompt_tokens_details=[ModalityTokenCount],
    cache_tokens_details=[ModalityTokenCount],
    candidates_tokens_details=[ModalityTokenCount],
    tool_use_prompt_tokens_details=[ModalityTokenCount],
)
register(
    GenerateContentResponse,
    candidates=[Candidate],
    prompt_feedback=PromptFeedback,
    usage_metadata=UsageMetadata,
)
del _leaf

# ``text`` and ``thoughts`` read the kept dict while the candidates are unbuilt: assigning them must end that.
clear_raw_on_assign(GenerateContentResponse, "candidates", "candidates")
