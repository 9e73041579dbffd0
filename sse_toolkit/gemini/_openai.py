"""Gemini layer: the OpenAI-compatible stream of the same API (``/v1beta/openai/chat/completions``).

Wire form: ``data: {"object": "chat.completion.chunk", "choices": [{"delta": {"content": ...}}], ...}``
events, a final ``data: [DONE]``, and errors as a JSON array ``[{"error": {code, message, status}}]``
(a whole body before the stream, or as an event's data). Chunks stay plain dicts (the OpenAI SDK has the
types); ``ChatResult`` collects the text, usage, finish reason and tool calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..parser._http_head import HeadSplitter
from ..parser._parser import EventParser
from ._errors import GeminiAPIError, GeminiDecodeError
from ._format import BodyFormat, sniff_format

__all__ = [
    "ChatChunkDecoder",
    "ChatResult",
    "aiter_chat_chunks",
    "chunk_text",
    "iter_chat_chunks",
    "merge_chat_chunks",
]

_DONE = "[DONE]"


def _is_error(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and isinstance(value[0], dict) and "error" in value[0]
    return isinstance(value, dict) and "error" in value


class ChatChunkDecoder:
    """Sans-IO: ``feed(bytes) -> list[dict]`` of ``chat.completion.chunk`` objects; ``done`` after ``[DONE]``.

    An error body (``[{"error": ...}]`` or ``{"error": ...}``), as the whole body or as an event's data,
    raises ``GeminiAPIError``; a body that is neither SSE nor an error raises ``GeminiDecodeError``.
    """

    def __init__(self) -> None:
        self.splitter = HeadSplitter()
        self.done = False
        self._parser = EventParser()
        self._format: BodyFormat | None = None  # None until the first bytes tell
        self._json = b""
        self._events = 0

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        body = self.splitter.feed(chunk)
        if not body:
            return []
        if self._format is None:
            body, self._json = self._json + body, b""
            body_format = sniff_format(body)
            if body_format is BodyFormat.UNKNOWN:  # only whitespace so far
                self._json = body
                return []
            self._format = body_format
        if self._format is not BodyFormat.SSE:  # a JSON body: an error, read whole at the end
            self._json += body
            return []
        out: list[dict[str, Any]] = []
        for event in self._parser.feed(body):
            self._events += 1
            if event.data == _DONE:
                self.done = True
                continue
            try:
                value = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise GeminiDecodeError(
                    f"event {self._events}: data is not JSON: {event.data[:60]!r}"
                ) from None
            if _is_error(value):
                raise GeminiAPIError.from_body(value, http_status=self._status())
            if not isinstance(value, dict):
                raise GeminiDecodeError(
                    f"event {self._events}: expected a JSON object, got {type(value).__name__}"
                )
            out.append(value)
        return out

    def close(self) -> list[dict[str, Any]]:
        self.feed(self.splitter.close())
        self._parser.close()
        if self._format is not None and self._format is not BodyFormat.SSE:
            try:
                value = orjson.loads(self._json)
            except orjson.JSONDecodeError as exc:
                raise GeminiDecodeError(f"body is neither SSE nor valid JSON ({exc})", offset=0) from None
            if _is_error(value):
                raise GeminiAPIError.from_body(value, http_status=self._status())
            raise GeminiDecodeError(
                "body is JSON but no chat.completion.chunk stream (use stream=true)", offset=0
            )
        if self._format is None:
            raise GeminiDecodeError("empty body: no chat.completion.chunk in the input", offset=0)
        return []

    def _status(self) -> int | None:
        head = self.splitter.head
        return head.status if head is not None else None


def iter_chat_chunks(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Yield each ``chat.completion.chunk`` dict of an OpenAI-compatible stream as soon as it arrives."""
    decoder = ChatChunkDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


async def aiter_chat_chunks(chunks: AsyncIterable[bytes]) -> AsyncIterator[dict[str, Any]]:
    """Async twin of ``iter_chat_chunks``."""
    decoder = ChatChunkDecoder()
    async for chunk in chunks:
        for item in decoder.feed(chunk):
            yield item
    for item in decoder.close():
        yield item


def chunk_text(chunk: dict[str, Any], choice: int = 0) -> str:
    """The text delta of one chunk for choice ``choice`` (``""`` when it carries none)."""
    for item in chunk.get("choices") or ():
        if item.get("index", 0) == choice:
            return (item.get("delta") or {}).get("content") or ""
    return ""


@dataclass(slots=True)
class ChatResult:
    """A whole OpenAI-compatible stream, merged: ``text``, ``usage`` (the last one), ``finish_reason``,
    ``tool_calls`` (their ``arguments`` fragments joined per ``index``), ``model`` and ``id``."""

    text: str = ""
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    id: str | None = None
    chunks: int = 0


def merge_chat_chunks(chunks: Iterable[dict[str, Any]], choice: int = 0) -> ChatResult:
    """Merge the chunk dicts of one stream (e.g. ``iter_chat_chunks(...)``) for choice ``choice``."""
    result = ChatResult()
    pieces: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        result.chunks += 1
        result.model = chunk.get("model", result.model)
        result.id = chunk.get("id", result.id)
        if chunk.get("usage") is not None:
            result.usage = chunk["usage"]
        for item in chunk.get("choices") or ():
            if item.get("index", 0) != choice:
                continue
            delta = item.get("delta") or {}
            if delta.get("content"):
                pieces.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                merged = calls.setdefault(call.get("index", len(calls)), {"function": {"arguments": ""}})
                for key in ("id", "type"):
                    if call.get(key) is not None:
                        merged[key] = call[key]
                function = call.get("function") or {}
                if function.get("name"):
                    merged["function"]["name"] = function["name"]
                merged["function"]["arguments"] += function.get("arguments") or ""
            if item.get("finish_reason"):
                result.finish_reason = item["finish_reason"]
    result.text = "".join(pieces)
    result.tool_calls = [calls[key] for key in sorted(calls)]
    return result
