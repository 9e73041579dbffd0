"""Replay layer: the served forms of a recorded body, worked out from the recording (pure, no I/O).

A *form* (:class:`Planned`) is a body as the server sends it: timed pieces, where its events end, where
its first ``finishReason`` ends, how it ends. From one recorded exchange come:
  * the form as recorded: the recorded chunks at their (scaled) times;
  * the form re-framed in the other stream format (``alt=sse`` events <-> one streamed JSON array), each
    response object sent when the recorded piece holding it was complete, a raw mid-stream error last;
  * the unary answers: ``:generateContent`` (the stream merged, or its error) and ``:countTokens``;
  * the whole answer text, for the verdict;
  * for the OpenAI-compatible routes, when each response object was complete (``object_times``), from
    which a request's ``chat.completion.chunk`` stream (``chat_stream``: its model and ``include_usage``
    are the request's) or one ``chat.completion`` (``chat_unary``) is made.
The catalog calls these once per exchange when the fixtures load (the chat forms, which depend on the
request, from the objects and times worked out then); nothing here joins and re-splits a body per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..fixture._model import End
from ..gemini._errors import GeminiError
from ..gemini._format import BodyFormat
from ..gemini._merge import merge_responses
from ..gemini._stream import iter_responses
from ..gemini._wire import dumps_pretty, encode_json_array, encode_sse_event
from ..parser._exceptions import SSEUsageError
from ..parser._parser import parse
from ._openai import (
    DONE_EVENT,
    chat_chunks,
    chat_completion,
    chat_error,
    chat_error_from_gemini,
    encode_chat_error_event,
    encode_chat_event,
)

__all__ = [
    "FINISH_MARKERS",
    "Decoded",
    "Planned",
    "UnaryAnswer",
    "chat_error_event",
    "chat_stream",
    "chat_unary",
    "count_tokens",
    "decode",
    "event_ends",
    "finish_offset",
    "full_text",
    "is_event",
    "materialized",
    "merged_answer",
    "object_times",
    "pretty",
    "reframe",
]

# What a response carrying a finish reason holds (Gemini's, and an OpenAI-compatible chunk's).
FINISH_MARKERS = (b'"finishReason"', b'"finish_reason"')
# The line ends that close an SSE event (a piece of split_body that ends one of these is a whole event).
_EVENT_CLOSE = (b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r\n", b"\r\n\n")
Pieces = list[tuple[float, bytes]]


@dataclass(frozen=True)
class Planned:
    """A streamed body as the replay app plans it (a served form), before or after faults.

    ``pieces``: ``(t, data)``, ``t`` seconds after the request, each sent as one HTTP chunk (a lazy
    iterable for a fixture streamed from disk). ``event_ends``: the body offsets just after each event,
    ascending; None when not known in advance (a body streamed from disk: each piece is an event).
    ``finish_at``: the body offset just after the first finish reason, None when there is none (or, with
    ``event_ends`` None, not known). ``end``: how the body ends (End.COMPLETE, or End.RESET/End.TIMEOUT
    for an abrupt close). A raw mid-stream error appended by a fault is not an event of the stream.
    """

    pieces: Any  # Sequence[tuple[float, bytes]], or an iterator of them when streamed from disk
    event_ends: Sequence[int] | None
    finish_at: int | None = None
    end: End = End.COMPLETE


@dataclass(frozen=True)
class Decoded:
    """What a Gemini body carries: its response ``objects`` in order, for each the index of the body piece
    that completes it (``where``), and the raw mid-stream error as recorded (None: none)."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    where: list[int] = field(default_factory=list)
    error: bytes | None = None


@dataclass(frozen=True)
class UnaryAnswer:
    """A unary answer: its HTTP ``status`` and pretty-printed ``body``; or ``problem``, why there is none
    (the recorded stream cannot be merged)."""

    status: int = 200
    body: bytes = b""
    problem: str | None = None


def pretty(value: Any) -> bytes:
    """A unary answer's bytes: pretty-printed with 2-space indents like the API's error bodies, and a
    newline."""
    return dumps_pretty(value) + b"\n"


def event_ends(pieces: Sequence[bytes], fmt: BodyFormat) -> list[int]:
    """Body offsets just after each event (SSE) or array element (a JSON array), given the body's
    ``split_body`` pieces; the faults that count events cut there. A bare JSON object is one event."""
    if fmt is BodyFormat.JSON_OBJECT:
        size = sum(len(piece) for piece in pieces)
        return [size] if any(piece.strip() for piece in pieces) else []
    ends, offset = [], 0
    for piece in pieces:
        offset += len(piece)
        if fmt is BodyFormat.JSON_ARRAY or piece.endswith(_EVENT_CLOSE):
            ends.append(offset)
    return ends


def is_event(piece: bytes) -> bool:
    """Whether a piece of an SSE body (as streamed from disk) closes an event."""
    return piece.endswith(_EVENT_CLOSE)


def materialized(form: Planned) -> Planned:
    """``form`` with its pieces in a list and its event ends known (a body streamed from disk is read
    whole: each piece it is read in is one event, see ``iter_sse_pieces``)."""
    if form.event_ends is not None:
        return form
    pieces = list(form.pieces)
    ends: list[int] = []
    finish_at: int | None = None
    offset = 0
    for _, data in pieces:
        if finish_at is None and (found := finish_offset(data)) is not None:
            finish_at = offset + found
        offset += len(data)
        if is_event(data):
            ends.append(offset)
    return Planned(pieces, ends, finish_at, form.end)


def finish_offset(body: bytes) -> int | None:
    """The offset just after the first finish reason in ``body``, or None."""
    found = [at + len(marker) for marker in FINISH_MARKERS if (at := body.find(marker)) >= 0]
    return min(found) if found else None


def decode(pieces: Sequence[bytes], fmt: BodyFormat) -> Decoded:
    """The response objects of a Gemini body given as its ``split_body`` pieces (see :class:`Decoded`).

    A piece that is not JSON is skipped; the first ``{"error": ...}`` ends the stream, kept as recorded
    (an element of a JSON array without its separators, plus a newline as the API ends it)."""
    objects: list[dict[str, Any]] = []
    where: list[int] = []
    array = fmt is BodyFormat.JSON_ARRAY
    for index, piece in enumerate(pieces):
        raw = piece.strip(b" \t\r\n,[]") if array else piece.strip()
        text: bytes | str = raw
        if not array and raw.startswith(b"data:"):
            # The parser reads the data field as a browser does (one space after the colon is dropped,
            # no more); the blank line ends an event whose own end was stripped or never recorded.
            text = "\n".join(event.data for event in parse(raw + b"\n\n", max_event_size=len(raw) + 1))
        if not text:
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and "error" in value:
            return Decoded(objects, where, piece.strip(b",[] \t\r\n") + b"\n" if array else piece)
        if isinstance(value, dict):
            objects.append(value)
            where.append(index)
    return Decoded(objects, where)


def object_times(
    decoded: Decoded, pieces: Sequence[bytes], plan: Sequence[tuple[float, bytes]]
) -> tuple[list[float], float]:
    """When each response object was complete: the time of the recorded chunk (``plan``) holding the last
    byte of the piece that holds it; and when the recorded body ended."""
    piece_times: list[float] = []
    offset, i, consumed = 0, 0, 0
    for piece in pieces:
        offset += len(piece)
        while i < len(plan) - 1 and consumed + len(plan[i][1]) < offset:
            consumed += len(plan[i][1])
            i += 1
        piece_times.append(plan[i][0] if plan else 0.0)
    last = piece_times[-1] if piece_times else (plan[-1][0] if plan else 0.0)
    return [piece_times[w] for w in decoded.where], last


def _timed(encoded: Sequence[bytes], times: Sequence[float], last: float) -> tuple[Pieces, list[int]]:
    """``encoded`` events at ``times`` (the last time repeating), and the offsets where they end."""
    out = [(times[min(n, len(times) - 1)] if times else last, data) for n, data in enumerate(encoded)]
    ends, total = [], 0
    for data in encoded:
        total += len(data)
        ends.append(total)
    return out, ends


def reframe(
    decoded: Decoded,
    pieces: Sequence[bytes],
    plan: Sequence[tuple[float, bytes]],
    want: BodyFormat,
    end: End,
) -> Planned:
    """The body re-framed as ``want`` (SSE or a JSON array): each object is sent when the recorded piece
    holding it was complete, i.e. at the time of the recorded chunk (``plan``) holding the piece's last
    byte; a raw mid-stream error goes last, when the recorded body ended."""
    times, last = object_times(decoded, pieces, plan)
    if want is BodyFormat.SSE:
        encoded = [encode_sse_event(obj) for obj in decoded.objects]
    else:
        encoded = encode_json_array(decoded.objects)
    out, ends = _timed(encoded, times, last)
    finish_at = finish_offset(b"".join(encoded))
    if decoded.error is not None:
        out.append((last, decoded.error))
    return Planned(out, ends, finish_at, end)


def chat_error_event(error: bytes) -> bytes:
    """A Gemini raw error (a recorded mid-stream error, a fault's) as the compatibility stream's error event;
    an error that is not the API's JSON becomes a 500 naming it."""
    try:
        converted = chat_error_from_gemini(error)
    except SSEUsageError:
        converted = chat_error(500, "INTERNAL", f"sse-replay: the recorded error is not JSON: {error[:60]!r}")
    return encode_chat_error_event(converted)


def chat_stream(
    decoded: Decoded,
    times: Sequence[float],
    last: float,
    end: End,
    *,
    model: str,
    created: int,
    include_usage: bool,
) -> Planned:
    """A Gemini stream as the compatibility layer streams it: one ``chat.completion.chunk`` event per
    response object, each sent when the object was (``times``), then ``data: [DONE]`` when the recording
    ended; a recorded mid-stream error becomes the error event instead of ``[DONE]``, and a recording that
    broke off (``end`` not COMPLETE) sends neither. ``[DONE]`` and the error are not counted as events."""
    chunks = chat_chunks(decoded.objects, model=model, created=created, include_usage=include_usage)
    encoded = [encode_chat_event(chunk) for chunk in chunks]
    out, ends = _timed(encoded, times, last)
    finish_at = finish_offset(b"".join(encoded))
    if decoded.error is not None:
        out.append((last, chat_error_event(decoded.error)))
    elif end == End.COMPLETE:
        out.append((last, DONE_EVENT))
    return Planned(out, ends, finish_at, end)


def chat_unary(decoded: Decoded, *, model: str, created: int) -> UnaryAnswer:
    """A Gemini stream as one ``chat.completion`` (compact JSON, sorted keys, as the compatibility layer
    answers); a stream that failed mid-way answers its error in the compatibility layer's form."""
    if decoded.error is not None:
        answer = merged_answer(decoded, b"")
        try:
            body = chat_error_from_gemini(answer.body)
        except SSEUsageError:
            body = chat_error(answer.status, "INTERNAL", "sse-replay: the recorded error is not JSON")
        return UnaryAnswer(answer.status, pretty(body))
    completion = chat_completion(decoded.objects, model=model, created=created)
    return UnaryAnswer(200, orjson.dumps(completion, option=orjson.OPT_SORT_KEYS))


def merged_answer(decoded: Decoded, body: bytes) -> UnaryAnswer:
    """``:generateContent`` from a recorded stream: the stream merged into the final response; a stream
    that failed mid-way answers its error (with the error's own code)."""
    if decoded.error is not None:
        try:
            code = int(orjson.loads(decoded.error)["error"]["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            code = 500
        return UnaryAnswer(code, decoded.error)
    try:
        merged = merge_responses(iter_responses([body]))
    except GeminiError as exc:
        return UnaryAnswer(500, problem=f"cannot merge the recorded stream for :generateContent: {exc}")
    return UnaryAnswer(200, pretty(merged.to_dict()))


def count_tokens(decoded: Decoded) -> UnaryAnswer:
    """``:countTokens``: the ``promptTokenCount`` of the last ``usageMetadata`` (with its cached count and
    ``promptTokensDetails``); a stream that failed mid-way answers its error."""
    if decoded.error is not None:
        return merged_answer(decoded, b"")
    usage: dict[str, Any] = {}
    for obj in decoded.objects:
        usage = obj.get("usageMetadata") or usage
    answer: dict[str, Any] = {"totalTokens": int(usage.get("promptTokenCount", 0))}
    if usage.get("cachedContentTokenCount"):
        answer["cachedContentTokenCount"] = usage["cachedContentTokenCount"]
    if usage.get("promptTokensDetails"):
        answer["promptTokensDetails"] = usage["promptTokensDetails"]
    return UnaryAnswer(200, pretty(answer))


def full_text(decoded: Decoded) -> str | None:
    """The whole answer: the text of the first candidate's non-thought parts (None: no response object)."""
    if not decoded.objects:
        return None
    parts = [
        part.get("text", "")
        for obj in decoded.objects
        for candidate in (obj.get("candidates") or [])[:1]
        for part in ((candidate.get("content") or {}).get("parts") or [])
        if isinstance(part, dict) and not part.get("thought")
    ]
    return "".join(p for p in parts if isinstance(p, str))
