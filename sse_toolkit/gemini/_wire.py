"""Gemini layer: encode responses and errors in the API's exact byte style (for fixtures and replay).

The API writes (see tests/data, byte for byte):
- SSE: ``data: `` + one-line JSON + ``\\r\\n\\r\\n``, the JSON with ``": "`` after keys, ``","`` between
  items, no other spaces, and raw UTF-8 (no ``\\uXXXX`` escapes for non-ASCII).
- JSON array (no ``alt=sse``): ``[`` + objects pretty-printed with a 2-space indent, separated by
  ``"\\n,\\r\\n"``, then ``"\\n]"``. One chunk per object: the first starts ``[{``, the others
  ``\\n,\\r\\n{``, the last ends ``}\\n]``.
- Errors: the same pretty JSON ``{"error": {"code", "message", "status", "details"}}`` plus a newline,
  before the stream (with the HTTP status) and, raw, inside a 200 body after some events.

The stdlib ``json`` module writes exactly this with the right separators; its escaping of control characters
and quotes matches the API's for every capture (tests/test_gemini_wire.py checks each one).
"""

from __future__ import annotations

import json
from typing import Any

from ._message import Message

__all__ = ["dumps_api_style", "dumps_pretty", "encode_json_array", "encode_sse_event", "error_body"]


def _plain(obj: Any) -> Any:
    return obj.to_dict() if isinstance(obj, Message) else obj


def dumps_api_style(obj: Any) -> bytes:
    """One-line JSON as the API writes it in SSE events: ``{"a": 1,"b": [1,2]}``, raw UTF-8."""
    return json.dumps(_plain(obj), separators=(",", ": "), ensure_ascii=False).encode()


def dumps_pretty(obj: Any) -> bytes:
    """Pretty JSON as the API writes it in error bodies and JSON-array streams (indent 2, no newline)."""
    return json.dumps(_plain(obj), indent=2, ensure_ascii=False).encode()


def encode_sse_event(obj: Any) -> bytes:
    """One ``alt=sse`` event: ``data: <one-line JSON>\\r\\n\\r\\n``. Takes a dict or a typed response."""
    return b"data: " + dumps_api_style(obj) + b"\r\n\r\n"


def encode_json_array(objs: list[Any]) -> list[bytes]:
    """The JSON-array stream of ``objs``, one chunk per object, as the API frames it (``[]`` when empty)."""
    if not objs:
        return [b"[]"]
    chunks = []
    last = len(objs) - 1
    for index, obj in enumerate(objs):
        # Each chunk ends with its object's "}" (the separator opens the next chunk), so a client has the
        # whole object as soon as the chunk arrives.
        head = b"[" if index == 0 else b"\n,\r\n"
        tail = b"\n]" if index == last else b""
        chunks.append(head + dumps_pretty(obj) + tail)
    return chunks


def error_body(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    """The API's error body: ``{"error": {"code", "message", "status"[, "details"]}}``, pretty, ending in LF.

    Serve it with the HTTP status ``code`` before a stream, or append it raw to a 200 SSE body for the
    mid-stream form (error-midstream-503.sse).
    """
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return dumps_pretty({"error": error}) + b"\n"
