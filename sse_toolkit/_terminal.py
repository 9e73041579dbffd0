"""Surface layer: streams shown to a person on a terminal (``sse-toolkit text``, ``sse-replay FILE``).

``sse-replay FILE`` piped or with ``--raw`` writes the recorded bytes exactly; on a terminal it shows what a
person wants to see instead: the events arriving at their pace, a Gemini answer as readable text while it
streams, and at the end one line saying how many events came, how long it took, how the stream ended and
what to try next.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import click
import orjson

from .fixture._model import Exchange, Fixture
from .fixture._pace import DEFAULT_PACE, iter_schedule
from .gemini._errors import GeminiAPIError, GeminiError, PromptBlockedError, TruncatedStreamError
from .gemini._format import BodyFormat, sniff_format
from .gemini._stream import iter_responses
from .parser._end import End
from .parser._parser import EventParser

__all__ = ["TERMINAL_PACE", "TextPrinter", "show_fixture"]

# Seconds between the events of an untimed fixture (a plain body, curl output) on a terminal: slow enough
# for a person to see them arrive. Piped output and the server keep DEFAULT_PACE.
TERMINAL_PACE = 0.4
# Keys that only a Gemini GenerateContentResponse (or its error body) carries at the top level.
_GEMINI_KEYS = frozenset(
    {"candidates", "usageMetadata", "promptFeedback", "modelVersion", "responseId", "error"}
)
_PEEK = 64 * 1024


class TextPrinter:
    """Writes the first candidate's parts as they stream: text as is, thoughts on request, tools readably."""

    def __init__(self, out: IO[bytes], thoughts: bool) -> None:
        self.out = out
        self.thoughts = thoughts
        self.kind: str | None = None  # what was printed last: "text", "thought" or "block"
        self.last = b"\n"

    def _write(self, text: str, kind: str) -> None:
        if not text:
            return
        if self.kind is not None and kind != self.kind:
            # A new kind of output starts on its own paragraph.
            self._raw(b"\n" if self.last == b"\n" else b"\n\n")
        self.kind = kind
        self._raw(text.encode())

    def _raw(self, data: bytes) -> None:
        self.out.write(data)
        self.last = data[-1:]

    def response(self, response: Any) -> None:
        """Print the parts of the first candidate of one streamed response."""
        for candidate in response.candidates or ():
            if candidate.index not in (None, 0) or candidate.content is None:
                continue
            for part in candidate.content.parts or ():
                self._part(part)
        self.out.flush()

    def _part(self, part: Any) -> None:
        if isinstance(part.text, str):
            if part.thought:
                if self.thoughts:
                    self._write(part.text, "thought")
            else:
                self._write(part.text, "text")
        elif part.function_call is not None:
            call = part.function_call
            args = orjson.dumps(call.args or {}).decode()
            ident = f"  (id {call.id})" if call.id else ""
            self._write(f"function call: {call.name}({args}){ident}\n", "block")
        elif part.executable_code is not None:
            code = part.executable_code
            body = str(code.code or "").rstrip("\n")
            self._write(f"```{str(code.language or '').lower()}\n{body}\n```\n", "block")
        elif part.code_execution_result is not None:
            result = part.code_execution_result
            body = str(result.output or "").rstrip("\n")
            self._write(f"``` output ({result.outcome})\n{body}\n```\n", "block")
        elif part.function_response is not None:
            self._write(f"function response: {part.function_response.name}\n", "block")
        elif part.inline_data is not None:
            blob = part.inline_data
            self._write(
                f"[inline data: {blob.mime_type}, {len(str(blob.data or ''))} base64 characters]\n", "block"
            )
        elif part.file_data is not None:
            self._write(f"[file: {part.file_data.file_uri} ({part.file_data.mime_type})]\n", "block")

    def end(self) -> None:
        """Close the last line."""
        if self.kind is not None and self.last != b"\n":
            self._raw(b"\n")
        self.out.flush()


def _looks_like_gemini(exchange: Exchange) -> bool:
    """True when the body's first bytes are a Gemini response: a JSON array or object, or an SSE event,
    whose first object has a key only Gemini's responses carry. Reads at most the first 64 KiB."""
    head = bytearray()
    for chunk in exchange.chunks:
        head += chunk.data
        if len(head) >= _PEEK:
            break
    body = bytes(head)
    framing = sniff_format(body, exchange.header("content-type"))
    if framing in (BodyFormat.JSON_ARRAY, BodyFormat.JSON_OBJECT):
        return any(b'"' + key.encode() + b'"' in body[:4096] for key in _GEMINI_KEYS)
    if framing is not BodyFormat.SSE:
        return False
    parser = EventParser()
    events = parser.feed(body) + (parser.close() if len(body) < _PEEK else [])
    for event in events[:1]:
        try:
            first = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return False
        return isinstance(first, dict) and bool(_GEMINI_KEYS & first.keys())
    return False


@dataclass
class _Tally:
    events: int = 0
    bytes: int = 0


def _paced(
    exchange: Exchange, speed: float, tally: _Tally, sleep: Callable[[float], object], start: float
) -> Iterator[bytes]:
    for due, data in iter_schedule(exchange, speed):
        delay = start + due - time.monotonic()
        if delay > 0:
            sleep(delay)
        tally.bytes += len(data)
        yield data


def _dim(text: str, color: bool) -> str:
    """``text`` dimmed on a colour terminal; a trailing newline stays outside the style."""
    body, newline = (text[:-1], "\n") if text.endswith("\n") else (text, "")
    return (click.style(body, dim=True) if color else body) + newline


def show_fixture(
    fixture: Fixture,
    name: str,
    speed: float,
    *,
    out: IO[bytes] | None = None,
    color: bool = True,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Play ``fixture`` for a person: each exchange's events at their pace, then one summary line each.

    An untimed fixture plays one event every ``TERMINAL_PACE`` seconds at speed 1.
    """
    stream = out if out is not None else sys.stdout.buffer
    for number, exchange in enumerate(fixture.exchanges, 1):
        timed = exchange.timed
        pace_speed = speed if timed or speed == 0 else speed * DEFAULT_PACE / TERMINAL_PACE
        label = name if len(fixture.exchanges) == 1 else f"{name}, exchange {number}"
        if speed == 0:
            how = "all at once"
        elif timed:
            how = "at its recorded pace" if speed == 1 else f"at {speed:g}x its recorded pace"
        else:
            how = f"one event every {TERMINAL_PACE / speed:g} s"
        _say(stream, _dim(f"▶ {label}: HTTP {exchange.status}, {how}\n", color))
        tally = _Tally()
        start = time.monotonic()
        chunks = _paced(exchange, pace_speed, tally, sleep, start)
        if _looks_like_gemini(exchange):
            ending = _show_gemini(chunks, stream, tally)
        else:
            ending = _show_events(chunks, stream, tally, color)
        if exchange.end != End.COMPLETE:
            ending = f"the connection was cut ({End(exchange.end).value}, as recorded)"
        elapsed = time.monotonic() - start
        summary = f"■ {tally.events} events, {tally.bytes:,} bytes in {elapsed:.1f} s; {ending}\n"
        _say(stream, _dim(summary, color))
    hint = (
        f"next: sse-replay --raw {name} for the exact bytes; sse-replay --serve {name} to serve it as the "
        "Gemini API; sse-toolkit --help for the rest\n"
    )
    _say(stream, _dim(hint, color))


def _say(stream: IO[bytes], text: str) -> None:
    stream.write(text.encode())
    stream.flush()


def _show_gemini(chunks: Iterable[bytes], stream: IO[bytes], tally: _Tally) -> str:
    printer = TextPrinter(stream, thoughts=True)
    finish: str | None = None
    try:
        for response in iter_responses(chunks, strict=True):
            tally.events += 1
            printer.response(response)
            finish = response.finish_reason or finish
    except GeminiAPIError as exc:
        printer.end()
        return f"ended with an API error: {' '.join(str(exc).split())}"
    except PromptBlockedError:
        printer.end()
        return "the prompt was blocked (promptFeedback.blockReason)"
    except TruncatedStreamError:
        printer.end()
        return "ended without a finishReason: the stream was cut short"
    except GeminiError as exc:
        printer.end()
        return f"not a Gemini stream after all: {exc}"
    printer.end()
    return f"finished: {finish}" if finish else "ended"


def _show_events(chunks: Iterable[bytes], stream: IO[bytes], tally: _Tally, color: bool) -> str:
    parser = EventParser()

    def show(events: list[Any]) -> None:
        for event in events:
            tally.events += 1
            meta = [] if event.event == "message" else [f"event: {event.event}"]
            if event.id:
                meta.append(f"id: {event.id}")
            if meta:
                _say(stream, _dim(f"[{', '.join(meta)}] ", color))
            _say(stream, event.data + "\n")

    for data in chunks:
        show(parser.feed(data))
    show(parser.close())
    return "ended"
