"""sse_toolkit: parse Server-Sent Events exactly and fast; understand, record and replay Gemini streams.

The layers are the subpackages (a lower one never imports an upper one):
    parser    bytes -> Event, exactly as browsers parse (sans-IO)
    gemini    events or JSON-array bytes -> typed responses, merging, errors (no I/O)
    fixture   recordings in memory and on disk, pacing, redaction, HAR, statistics
    server    sans-IO HTTP/1.1 and the one event loop shared by replay and record
    replay    the Gemini-compatible replay app, faults, scenarios, verdict
    record    the recording proxy and tee
    cli, pytest_plugin   the commands and the pytest fixtures

This module re-exports the parser contract and the entry points a user starts from. Every other public name
lives in its layer's subpackage (``sse_toolkit.gemini.Part``, ``sse_toolkit.fixture.Chunk``, ...); the old
top-level spellings of those names still resolve for one release (0.x) and then go.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from ._compiled import run_from_source_if_asked as _run_from_source_if_asked

_run_from_source_if_asked()  # before any compiled module is imported (see _compiled.py)

from ._version import __version__
from .fixture import Fixture, GeminiScript, load_fixture, save_fixture
from .gemini import GeminiError, GenerateContentResponse, aiter_responses, iter_responses, merge_responses
from .parser import (
    Event,
    EventParser,
    SSEError,
    SSEProtocolError,
    SSEUsageError,
    aiter_events,
    iter_events,
    parse,
)
from .record import RecordingProxy
from .replay import ReplayServer

__all__ = [
    "Event",
    "EventParser",
    "Fixture",
    "GeminiError",
    "GeminiScript",
    "GenerateContentResponse",
    "RecordingProxy",
    "ReplayServer",
    "SSEError",
    "SSEProtocolError",
    "SSEUsageError",
    "__version__",
    "aiter_events",
    "aiter_responses",
    "iter_events",
    "iter_responses",
    "load_fixture",
    "merge_responses",
    "parse",
    "save_fixture",
]

# Names that were top-level before the layers became subpackages: resolved on first use, kept for one release.
_MOVED: dict[str, str] = {
    "Blob": "gemini",
    "Candidate": "gemini",
    "ChatChunkDecoder": "gemini",
    "ChatResult": "gemini",
    "Chunk": "fixture",
    "CitationMetadata": "gemini",
    "CitationSource": "gemini",
    "ClientError": "gemini",
    "CodeExecutionResult": "gemini",
    "Content": "gemini",
    "DEFAULT_MAX_EVENT_SIZE": "parser",
    "DEFAULT_PACE": "fixture",
    "End": "fixture",
    "Exchange": "fixture",
    "ExchangeStats": "fixture",
    "ExecutableCode": "gemini",
    "Faults": "replay",
    "FileData": "gemini",
    "Finding": "replay",
    "FixtureError": "fixture",
    "FixtureStats": "fixture",
    "FunctionCall": "gemini",
    "FunctionResponse": "gemini",
    "GeminiAPIError": "gemini",
    "GeminiDecodeError": "gemini",
    "GroundingChunk": "gemini",
    "GroundingMetadata": "gemini",
    "GroundingSupport": "gemini",
    "HeadSplitter": "parser",
    "HttpHead": "parser",
    "JournalEntry": "replay",
    "LoopbackServer": "server",
    "MissingDependencyError": "gemini",
    "ModalityTokenCount": "gemini",
    "Part": "gemini",
    "PromptBlockedError": "gemini",
    "PromptFeedback": "gemini",
    "RecordedRequest": "fixture",
    "Redactor": "fixture",
    "ReplayError": "server",
    "ResponseDecoder": "gemini",
    "ResponseMerger": "gemini",
    "SafetyRating": "gemini",
    "SearchEntryPoint": "gemini",
    "SecretLeakError": "fixture",
    "Segment": "gemini",
    "ServerError": "gemini",
    "TruncatedStreamError": "gemini",
    "UsageMetadata": "gemini",
    "WebChunk": "gemini",
    "aiter_chat_chunks": "gemini",
    "check_finished": "gemini",
    "chunk_text": "gemini",
    "dumps_api_style": "gemini",
    "dumps_fixture": "fixture",
    "dumps_pretty": "gemini",
    "encode_json_array": "gemini",
    "encode_sse_event": "gemini",
    "error_body": "gemini",
    "fixture_from_har": "fixture",
    "fixture_stats": "fixture",
    "fixture_to_har": "fixture",
    "iter_chat_chunks": "gemini",
    "load_script": "replay",
    "loads_fixture": "fixture",
    "merge_chat_chunks": "gemini",
    "record_tee": "record",
    "split_http_head": "parser",
    "to_genai": "gemini",
}


def __getattr__(name: str) -> _Any:
    if name in ("END_COMPLETE", "END_RESET", "END_TIMEOUT"):  # now the members of one enum, End
        from .fixture import End

        return End[name[4:]]
    sub = _MOVED.get(name)
    if sub is None:
        raise AttributeError(f"module 'sse_toolkit' has no attribute {name!r}")
    return getattr(_importlib.import_module(f"{__name__}.{sub}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MOVED) | {"END_COMPLETE", "END_RESET", "END_TIMEOUT"})
