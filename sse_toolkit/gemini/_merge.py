"""Gemini layer: merge the responses of a stream into the one response unary ``generateContent`` returns.

Rules (the stream sends deltas; the captures in tests/data show each case):
- Candidates are matched by ``index`` (a missing index is 0, as gemini-2.0 omits it) and sorted by it.
- Consecutive text parts of the same kind (thought or not) are concatenated into one part; a
  ``thoughtSignature`` that arrives on a later text part (often an empty one) joins the merged part, unless
  it already has one. Text parts with fields we do not model stay separate parts: nothing is lost.
- Every other part (function calls, code, inline data, ...) is kept whole and in order.
- Per candidate the last ``finishReason``, ``finishMessage``, ``safetyRatings``, ``groundingMetadata``,
  ``tokenCount``, ``avgLogprobs``, ``logprobsResult``, ``urlContextMetadata`` and ``role`` count;
  citation sources add up. Per response the last ``usageMetadata``, ``modelVersion``, ``responseId``
  and ``promptFeedback`` count. Unknown keys are merged, the later value winning.

``ResponseMerger`` does this step by step; ``result()`` can be called at any time while streaming and
builds a new response each time (inputs are never modified; leaf objects such as the usage are shared).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._errors import PromptBlockedError, TruncatedStreamError
from ._types import (
    Candidate,
    CitationMetadata,
    Content,
    GenerateContentResponse,
    Part,
    PromptFeedback,
    UsageMetadata,
)

__all__ = ["ResponseMerger", "check_finished", "merge_responses"]

# Candidate fields where the last value that is set counts.
_LAST_WINS = (
    "finish_reason",
    "finish_message",
    "safety_ratings",
    "token_count",
    "grounding_attributions",
    "grounding_metadata",
    "avg_logprobs",
    "logprobs_result",
    "url_context_metadata",
)
_LAST_WINS_KEYS = {key: attr for attr, key, _ in Candidate._OUT if attr in _LAST_WINS}
# Part fields that a mergeable text part may have.
_TEXT_FIELDS = ("text", "thought", "thought_signature")
_TEXT_KEYS = frozenset(key for attr, key, _ in Part._OUT if attr in _TEXT_FIELDS)
_OTHER_PART_FIELDS = tuple(attr for attr, _, _ in Part._OUT if attr not in _TEXT_FIELDS)


class _TextRun:
    """Consecutive text parts of one kind, kept as pieces and joined once when a result is built."""

    __slots__ = ("first", "pieces", "signature", "thought")

    def __init__(self, part: Part) -> None:
        self.pieces = [part.text or ""]
        self.thought = part.thought
        self.signature = part.thought_signature
        self.first = part  # its key order is the merged part's key order

    def part(self) -> Part:
        return Part(
            text="".join(self.pieces),
            thought=self.thought,
            thought_signature=self.signature,
            _order=self.first._order if self.signature is self.first.thought_signature else None,
        )


class _CandidateState:
    __slots__ = (
        "citations",
        "content_extra",
        "content_seen",
        "extra",
        "index",
        "order",
        "parts",
        "role",
        "values",
    )

    def __init__(self, index: int | None) -> None:
        self.index = index
        self.parts: list[Part | _TextRun] = []
        self.role: str | None = None
        self.content_extra: dict[str, Any] | None = None
        self.content_seen = False
        self.values: dict[str, Any] = {}
        self.citations: list[Any] | None = None
        self.extra: dict[str, Any] | None = None
        self.order: tuple[str, ...] | None = None

    def add(self, candidate: Candidate) -> None:
        if candidate.index is not None:
            self.index = candidate.index
        if candidate._order is not None and (self.order is None or len(candidate._order) >= len(self.order)):
            self.order = candidate._order
        content = candidate.content
        if content is not None:
            self.content_seen = True
            if content.role is not None:
                self.role = content.role
            if content.extra:
                self.content_extra = {**(self.content_extra or {}), **content.extra}
            for part in content.parts or ():
                self._add_part(part)
        order = candidate._order
        attrs = (
            _LAST_WINS if order is None else [_LAST_WINS_KEYS[key] for key in order if key in _LAST_WINS_KEYS]
        )
        for attr in attrs:
            value = getattr(candidate, attr)
            if value is not None:
                self.values[attr] = value
        if candidate.citation_metadata is not None:
            self.citations = (self.citations or []) + list(candidate.citation_metadata.citation_sources or ())
        if candidate.extra:
            self.extra = {**(self.extra or {}), **candidate.extra}

    def _add_part(self, part: Part) -> None:
        if part._order is not None:
            # A decoded part: its keys say what it holds (cheaper than reading every field).
            is_text = type(part.text) is str and _TEXT_KEYS.issuperset(part._order)
        else:
            is_text = (
                type(part.text) is str
                and not part.extra
                and all(getattr(part, attr) is None for attr in _OTHER_PART_FIELDS)
            )
        if not is_text:
            self.parts.append(part)
            return
        last = self.parts[-1] if self.parts else None
        if (
            isinstance(last, _TextRun)
            and bool(last.thought) == bool(part.thought)
            and (part.thought_signature is None or last.signature is None)
        ):
            last.pieces.append(part.text or "")
            if part.thought_signature is not None:
                last.signature = part.thought_signature
            if part.thought is not None and last.thought is None:
                last.thought = part.thought
            return
        self.parts.append(_TextRun(part))

    def build(self) -> Candidate:
        content = None
        if self.content_seen:
            parts = [item.part() if isinstance(item, _TextRun) else item for item in self.parts]
            content = Content(parts=parts, role=self.role, extra=self.content_extra)
        citation = CitationMetadata(citation_sources=self.citations) if self.citations is not None else None
        return Candidate(
            content=content,
            index=self.index,
            citation_metadata=citation,
            extra=dict(self.extra) if self.extra else None,
            _order=self.order,
            **self.values,
        )


class ResponseMerger:
    """Merge a stream's responses step by step: ``add(response)`` each, ``result()`` whenever needed.

    ``count`` is the number of responses added so far.
    """

    def __init__(self) -> None:
        self.count = 0
        self._candidates: dict[int, _CandidateState] = {}
        self._usage: UsageMetadata | None = None
        self._model_version: str | None = None
        self._response_id: str | None = None
        self._prompt_feedback: PromptFeedback | None = None
        self._extra: dict[str, Any] | None = None
        self._order: tuple[str, ...] | None = None

    def add(self, response: GenerateContentResponse) -> None:
        """Merge in the next response of the stream."""
        self.count += 1
        for candidate in response.candidates or ():
            key = candidate.index if type(candidate.index) is int else 0  # garbage indexes merge as 0
            state = self._candidates.get(key)
            if state is None:
                state = self._candidates[key] = _CandidateState(candidate.index)
            state.add(candidate)
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata
        if response.model_version is not None:
            self._model_version = response.model_version
        if response.response_id is not None:
            self._response_id = response.response_id
        if response.prompt_feedback is not None:
            self._prompt_feedback = response.prompt_feedback
        if response.extra:
            self._extra = {**(self._extra or {}), **response.extra}
        if response._order is not None and (self._order is None or len(response._order) >= len(self._order)):
            self._order = response._order

    def result(self) -> GenerateContentResponse:
        """The merged response so far, as a new object (shaped like unary ``generateContent``'s answer)."""
        candidates = [self._candidates[key].build() for key in sorted(self._candidates)]
        return GenerateContentResponse(
            candidates=candidates or None,
            prompt_feedback=self._prompt_feedback,
            usage_metadata=self._usage,
            model_version=self._model_version,
            response_id=self._response_id,
            extra=dict(self._extra) if self._extra else None,
            _order=self._order,
        )


def merge_responses(
    responses: Iterable[GenerateContentResponse], *, strict: bool = False
) -> GenerateContentResponse:
    """Merge a whole stream (any iterable of responses, e.g. ``iter_responses(...)``) into one response.

    With ``strict=True`` a blocked prompt or a missing ``finishReason`` raises, as ``check_finished`` does.
    """
    merger = ResponseMerger()
    for response in responses:
        merger.add(response)
    result = merger.result()
    if strict:
        check_finished(result)
    return result


def check_finished(response: GenerateContentResponse) -> GenerateContentResponse:
    """Return a merged ``response`` that is complete; raise if the prompt was blocked or it was cut short.

    ``PromptBlockedError`` when ``promptFeedback.blockReason`` is set; ``TruncatedStreamError`` when there
    is no candidate, or a candidate has no ``finishReason`` (the stream ended early).
    """
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        raise PromptBlockedError(feedback.block_reason, response, feedback.block_reason_message)
    if not response.candidates:
        raise TruncatedStreamError("stream truncated: it ended before any candidate arrived", response)
    unfinished = [
        str(candidate.index if candidate.index is not None else 0)
        for candidate in response.candidates
        if not candidate.finish_reason
    ]
    if unfinished:
        which = "candidate" if len(unfinished) == 1 else "candidates"
        raise TruncatedStreamError(
            f"stream truncated: it ended without a finishReason for {which} {', '.join(unfinished)}", response
        )
    return response
