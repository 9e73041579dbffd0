"""Gemini layer: events or JSON-array bytes -> typed responses, merging, API errors, the OpenAI-compatible
chunk shape and the google-genai bridge. No I/O."""

from __future__ import annotations

from ._errors import ClientError, GeminiAPIError, GeminiDecodeError, GeminiError, MissingDependencyError, PromptBlockedError, ServerError, TruncatedStreamError
from ._genai import to_genai
from ._merge import ResponseMerger, check_finished, merge_responses
from ._openai import ChatChunkDecoder, ChatResult, aiter_chat_chunks, chunk_text, iter_chat_chunks, merge_chat_chunks
from ._stream import ResponseDecoder, aiter_responses, iter_responses
from ._types import Blob, Candidate, CitationMetadata, CitationSource, CodeExecutionResult, Content, ExecutableCode, FileData, FunctionCall, FunctionResponse, GenerateContentResponse, GroundingChunk, GroundingMetadata, GroundingSupport, ModalityTokenCount, Part, PromptFeedback, SafetyRating, SearchEntryPoint, Segment, UsageMetadata, WebChunk
from ._wire import dumps_api_style, dumps_pretty, encode_json_array, encode_sse_event, error_body

__all__ = [
    "aiter_chat_chunks",
    "aiter_responses",
    "Blob",
    "Candidate",
    "ChatChunkDecoder",
    "ChatResult",
    "check_finished",
    "chunk_text",
    "CitationMetadata",
    "CitationSource",
    "ClientError",
    "CodeExecutionResult",
    "Content",
    "dumps_api_style",
    "dumps_pretty",
    "encode_json_array",
    "encode_sse_event",
    "error_body",
    "ExecutableCode",
    "FileData",
    "FunctionCall",
    "FunctionResponse",
    "GeminiAPIError",
    "GeminiDecodeError",
    "GeminiError",
    "GenerateContentResponse",
    "GroundingChunk",
    "GroundingMetadata",
    "GroundingSupport",
    "iter_chat_chunks",
    "iter_responses",
    "merge_chat_chunks",
    "merge_responses",
    "MissingDependencyError",
    "ModalityTokenCount",
    "Part",
    "PromptBlockedError",
    "PromptFeedback",
    "ResponseDecoder",
    "ResponseMerger",
    "SafetyRating",
    "SearchEntryPoint",
    "Segment",
    "ServerError",
    "to_genai",
    "TruncatedStreamError",
    "UsageMetadata",
    "WebChunk",
]
