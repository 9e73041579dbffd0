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
from ._http_head import HeadSplitter, HttpHead, split_http_head
from ._sse_event import Event
from ._sse_parser import DEFAULT_MAX_EVENT_SIZE, EventParser, aiter_events, iter_events, parse
from ._version import __version__

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "Event",
    "EventParser",
    "HeadSplitter",
    "HttpHead",
    "SSEError",
    "SSEProtocolError",
    "SSEUsageError",
    "__version__",
    "aiter_events",
    "iter_events",
    "parse",
    "split_http_head",
]
