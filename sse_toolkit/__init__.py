"""sse_toolkit: parse Server-Sent Events exactly and fast; understand, record and replay Gemini streams.

Layers (lower never imports upper), visible in the module names:
    parser   _exceptions, _sse_event, _sse_parser, _http_head      bytes -> Event (sans-IO)
    gemini   _gemini_*                                             events -> typed responses (no I/O)
    fixture  _fixture_*                                            fixture files, redaction
    replay   _replay_*, _record_*                                  loopback servers
    surface  _cli, pytest_plugin                                   commands and pytest fixtures
Everything public is re-exported here; each private module declares its own ``__all__``.
"""

from ._exceptions import SSEError, SSEProtocolError, SSEUsageError
from ._fixture_errors import FixtureError
from ._fixture_har import fixture_from_har, fixture_to_har
from ._fixture_io import dumps_fixture, load_fixture, loads_fixture, save_fixture
from ._fixture_model import END_COMPLETE, END_RESET, END_TIMEOUT, Chunk, Exchange, Fixture, RecordedRequest
from ._fixture_pace import DEFAULT_PACE
from ._fixture_redact import Redactor, SecretLeakError
from ._fixture_script import GeminiScript
from ._fixture_stats import ExchangeStats, FixtureStats, fixture_stats
from ._gemini_errors import (
    ClientError,
    GeminiAPIError,
    GeminiDecodeError,
    GeminiError,
    MissingDependencyError,
    PromptBlockedError,
    ServerError,
    TruncatedStreamError,
)
from ._gemini_genai import to_genai
from ._gemini_merge import ResponseMerger, check_finished, merge_responses
from ._gemini_openai import (
    ChatChunkDecoder,
    ChatResult,
    aiter_chat_chunks,
    chunk_text,
    iter_chat_chunks,
    merge_chat_chunks,
)
from ._gemini_stream import ResponseDecoder, aiter_responses, iter_responses
from ._gemini_types import (
    Blob,
    Candidate,
    CitationMetadata,
    CitationSource,
    CodeExecutionResult,
    Content,
    ExecutableCode,
    FileData,
    FunctionCall,
    FunctionResponse,
    GenerateContentResponse,
    GroundingChunk,
    GroundingMetadata,
    GroundingSupport,
    ModalityTokenCount,
    Part,
    PromptFeedback,
    SafetyRating,
    SearchEntryPoint,
    Segment,
    UsageMetadata,
    WebChunk,
)
from ._gemini_wire import dumps_api_style, dumps_pretty, encode_json_array, encode_sse_event, error_body
from ._http_head import HeadSplitter, HttpHead, split_http_head
from ._record_proxy import RecordingProxy
from ._record_tee import record_tee
from ._replay_faults import Faults
from ._replay_gemini import ReplayServer
from ._replay_script import load_script
from ._replay_server import LoopbackServer, ReplayError
from ._replay_verdict import Finding, JournalEntry
from ._sse_event import Event
from ._sse_parser import DEFAULT_MAX_EVENT_SIZE, EventParser, aiter_events, iter_events, parse
from ._version import __version__

__all__ = [
    "Blob",
    "Candidate",
    "ChatChunkDecoder",
    "ChatResult",
    "Chunk",
    "CitationMetadata",
    "CitationSource",
    "ClientError",
    "CodeExecutionResult",
    "Content",
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_PACE",
    "END_COMPLETE",
    "END_RESET",
    "END_TIMEOUT",
    "Event",
    "EventParser",
    "Exchange",
    "ExchangeStats",
    "ExecutableCode",
    "Faults",
    "FileData",
    "Finding",
    "Fixture",
    "FixtureError",
    "FixtureStats",
    "FunctionCall",
    "FunctionResponse",
    "GeminiAPIError",
    "GeminiDecodeError",
    "GeminiError",
    "GeminiScript",
    "GenerateContentResponse",
    "GroundingChunk",
    "GroundingMetadata",
    "GroundingSupport",
    "HeadSplitter",
    "HttpHead",
    "JournalEntry",
    "LoopbackServer",
    "MissingDependencyError",
    "ModalityTokenCount",
    "Part",
    "PromptBlockedError",
    "PromptFeedback",
    "RecordedRequest",
    "RecordingProxy",
    "Redactor",
    "ReplayError",
    "ReplayServer",
    "ResponseDecoder",
    "ResponseMerger",
    "SSEError",
    "SSEProtocolError",
    "SSEUsageError",
    "SafetyRating",
    "SearchEntryPoint",
    "SecretLeakError",
    "Segment",
    "ServerError",
    "TruncatedStreamError",
    "UsageMetadata",
    "WebChunk",
    "__version__",
    "aiter_chat_chunks",
    "aiter_events",
    "aiter_responses",
    "check_finished",
    "chunk_text",
    "dumps_api_style",
    "dumps_fixture",
    "dumps_pretty",
    "encode_json_array",
    "encode_sse_event",
    "error_body",
    "fixture_from_har",
    "fixture_stats",
    "fixture_to_har",
    "iter_chat_chunks",
    "iter_events",
    "iter_responses",
    "load_fixture",
    "load_script",
    "loads_fixture",
    "merge_chat_chunks",
    "merge_responses",
    "parse",
    "record_tee",
    "save_fixture",
    "split_http_head",
    "to_genai",
]
