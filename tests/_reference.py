"""Tests: an independent, deliberately simple reference of the WHATWG event-stream algorithm.

Written from the spec text (HTML, "9.2.6 Parsing an event stream" and "Interpreting an event stream"),
not from sse_toolkit's parser, and meant to be obviously right rather than fast: decode the whole stream
at once, drop one leading BOM, walk it one character at a time to find lines, then interpret each line.

Two things the spec leaves to the user agent are pinned the way sse_toolkit documents them:
- ``Event.retry`` is the valid ``retry`` value seen in the dispatched block (the spec only sets the
  source's reconnection time); ``retry`` with an empty value is ignored.
- The result is a tuple ``(events, last_event_id, retry)`` as the parser would report after ``close()``.
"""

from __future__ import annotations

from sse_toolkit import Event

__all__ = ["reference_parse"]

_ASCII_DIGITS = frozenset("0123456789")


def _split_lines(text: str) -> tuple[list[str], str]:
    """Complete lines ("CRLF, LF or CR" ends one) and the unterminated rest, char by char."""
    lines: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\r":
            lines.append("".join(current))
            current = []
            if index + 1 < len(text) and text[index + 1] == "\n":
                index += 1  # CRLF is one line end
        elif char == "\n":
            lines.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    return lines, "".join(current)


def reference_parse(stream: bytes) -> tuple[list[Event], str, int | None]:
    """Parse a whole stream; return ``(events, last_event_id, reconnection_time)``."""
    # "Streams must be decoded using the UTF-8 decode algorithm": errors become U+FFFD.
    text = stream.decode("utf-8", errors="replace")
    # "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
    if text.startswith("\ufeff"):
        text = text[1:]
    # "Once the end of the file is reached, any pending data must be discarded": the unterminated rest.
    lines, _unterminated = _split_lines(text)

    events: list[Event] = []
    data_buffer = ""
    event_type_buffer = ""
    last_event_id_buffer = ""
    last_event_id_string = ""
    reconnection_time: int | None = None
    block_retry: int | None = None

    for line in lines:
        if line == "":
            # Dispatch the event.
            last_event_id_string = last_event_id_buffer
            if data_buffer == "":
                data_buffer = ""
                event_type_buffer = ""
                block_retry = None
                continue
            if data_buffer.endswith("\n"):
                data_buffer = data_buffer[:-1]
            events.append(
                Event(
                    event=event_type_buffer if event_type_buffer != "" else "message",
                    data=data_buffer,
                    id=last_event_id_string,
                    retry=block_retry,
                )
            )
            data_buffer = ""
            event_type_buffer = ""
            block_retry = None
            continue
        if line[0] == ":":
            continue  # a comment
        if ":" in line:
            colon = line.index(":")
            field = line[:colon]
            value = line[colon + 1 :]
            if value.startswith(" "):
                value = value[1:]
        else:
            field = line
            value = ""

        if field == "event":
            event_type_buffer = value
        elif field == "data":
            data_buffer = data_buffer + value + "\n"
        elif field == "id":
            if "\x00" not in value:
                last_event_id_buffer = value
        elif field == "retry":
            if value != "" and all(char in _ASCII_DIGITS for char in value):
                reconnection_time = int(value, 10)
                block_retry = reconnection_time
        # Any other field is ignored.

    return events, last_event_id_string, reconnection_time
