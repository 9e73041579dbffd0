"""The shared captures as test cases: each one's expected text, usage and errors, and every framing of its
body (SSE, LF-framed SSE, JSON array, with and without ``curl -i`` heads)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import orjson

import sse_toolkit
from sse_toolkit.gemini import (
    ClientError,
    PromptBlockedError,
    ServerError,
    encode_json_array,
    encode_sse_event,
)

DATA = pathlib.Path(__file__).resolve().parent / "data"


def json_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded JSON value (keys of objects, indexes of arrays), the root ``()`` first and
    parents before their children: where a test may put something else."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += json_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += json_paths(value, (*path, index))
    return found


@dataclass(frozen=True)
class Case:
    """What a capture must give: responses, merged text/thoughts, usage, calls, finish, error."""

    name: str
    responses: int
    text: str | None
    thoughts_start: str | None = None
    total_tokens: int | None = None
    calls: tuple[tuple[str, str | None], ...] = ()
    finish: str | None = "STOP"
    error: type[Exception] | None = None
    error_line: str | None = None  # str(error), the line the CLI prints


CASES = [
    Case("text-stop.sse", 3, "The capital of Wyoming is **Cheyenne**.\n", total_tokens=17),
    Case(
        "text-long-utf8.sse",
        12,
        None,  # checked by prefix/suffix below: long
        total_tokens=585,
    ),
    Case(
        "thinking-thoughts.sse",
        5,
        "The sky is blue because tiny gas molecules in Earth's atmosphere scatter blue light from the sun "
        "more efficiently than other colors. Blue light has shorter, smaller wavelengths, causing it to be "
        "scattered in all directions, making the sky appear blue to our eyes.",
        thoughts_start="**Exploring Sky Color**",
        total_tokens=598,
    ),
    Case(
        "function-call-parallel-gemini3.sse",
        4,
        "",
        total_tokens=254,
        calls=(("sum", "3ae8iwca"), ("sum", "up3kf30e"), ("sum", "ycroch25")),
    ),
    Case(
        "code-execution.sse",
        6,
        "To find the sum of the first 5 prime numbers, we first need to identify them. The first five prime "
        "numbers are 2, 3, 5, 7, and 11.\n\nNow, let's calculate their sum using a Python tool:\n\n"
        "The sum of the first 5 prime numbers is 28.",
        total_tokens=485,
    ),
    Case(
        "prompt-blocked-safety.sse",
        1,
        None,
        finish=None,
        error=PromptBlockedError,
        error_line="prompt blocked: SAFETY",
    ),
    Case(
        "error-midstream-503.sse",
        2,
        "Okay",
        total_tokens=2302,
        error=ServerError,
        error_line="error 503 UNAVAILABLE: The model is overloaded. Please try again later.",
    ),
    Case(
        "error-429-quota.json",
        0,
        None,
        finish=None,
        error=ClientError,
        error_line="error 429 RESOURCE_EXHAUSTED: You exceeded your current quota",
    ),
    Case(
        "text-thinking.jsonarray",
        3,
        "Scoop",
        thoughts_start="**Considering the Constraint**",
        total_tokens=304,
    ),
    Case(
        "multi-candidate.synthetic.sse",
        3,
        "Why did the scarecrow win an award? Because he was outstanding in his field!",
        total_tokens=35,
    ),
]
CASE_BY_NAME = {case.name: case for case in CASES}

_SSE_HEAD = b"HTTP/2 200 \r\ncontent-type: text/event-stream\r\ncontent-disposition: attachment\r\n\r\n"
_JSON_HEAD = b"HTTP/2 200 \r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"
_ERROR_HEAD = b"HTTP/2 429 \r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"


def _split_error(data: bytes) -> tuple[list[dict], bytes]:
    """The events of an SSE capture and the raw error bytes after them (b"" if none)."""
    events = [orjson.loads(event.data) for event in sse_toolkit.parse(data)]
    encoded = b"".join(encode_sse_event(event) for event in events)
    assert data.startswith(encoded)
    return events, data[len(encoded) :]


def variants(name: str) -> dict[str, bytes]:
    """The capture as stored plus every framing derived from it (see tests/data/README.md)."""
    data = (DATA / name).read_bytes()
    if name.endswith(".json"):
        return {
            "body": data,
            "curl-i": _ERROR_HEAD + data,
            "curl-i-100": b"HTTP/1.1 100 Continue\r\n\r\n" + _ERROR_HEAD + data,
        }
    if name.endswith(".jsonarray"):
        objects = orjson.loads(data)
        sse = b"".join(encode_sse_event(obj) for obj in objects)
        return {
            "json-array": data,
            "json-array curl-i": _JSON_HEAD + data,
            "sse": sse,
            "sse-lf": sse.replace(b"\r\n", b"\n"),
            "sse curl-i": _SSE_HEAD + sse,
        }
    events, error = _split_error(data)
    array_objects = events + ([orjson.loads(error)] if error else [])
    array = b"".join(encode_json_array(array_objects))
    return {
        "sse": data,
        "sse-lf": data.replace(b"\r\n", b"\n"),
        "sse curl-i": _SSE_HEAD + data,
        "sse-lf curl-i": (_SSE_HEAD + data).replace(b"\r\n", b"\n"),
        "json-array": array,
        "json-array curl-i": _JSON_HEAD + array,
    }


ALL = [(case, label, body) for case in CASES for label, body in variants(case.name).items()]
