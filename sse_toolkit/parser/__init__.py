"""Parser layer: bytes of an event stream -> :class:`Event`, exactly as WHATWG's "Parsing an event stream"
(sans-IO), and the HTTP head splitter used to read saved ``curl -i`` output."""

from __future__ import annotations

from ._event import Event
from ._exceptions import SSEError, SSEProtocolError, SSEUsageError
from ._http_head import HeadSplitter, HttpHead, split_http_head
from ._parser import DEFAULT_MAX_EVENT_SIZE, EventParser, aiter_events, iter_events, parse

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "Event",
    "EventParser",
    "HeadSplitter",
    "HttpHead",
    "SSEError",
    "SSEProtocolError",
    "SSEUsageError",
    "aiter_events",
    "iter_events",
    "parse",
    "split_http_head",
]
