"""One sniffer tells the three framings of a Gemini body apart by its first bytes (and, where the bytes do not
say, its content type), and one scanner finds where each object of a streamed JSON array ends: at the same
offsets however the bytes are chunked, whatever the formatting, and with a clear error where the bytes stop
being such an array."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from _captures import ALL, Case
from hypothesis import given, settings
from hypothesis import strategies as st

from sse_toolkit.gemini import (
    ArrayElement,
    BodyFormat,
    GeminiDecodeError,
    JSONArrayScanner,
    ResponseDecoder,
    dumps_pretty,
    encode_json_array,
    sniff_format,
)

BOM = b"\xef\xbb\xbf"


# -- sniff_format --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_bytes", "expected"),
    [
        (b'data: {"candidates": []}\r\n\r\n', BodyFormat.SSE),
        (b": keep-alive\n", BodyFormat.SSE),
        (b"event: message\n", BodyFormat.SSE),
        (b"hello", BodyFormat.SSE),  # no content type to go by: read as SSE, which says what is wrong
        (b'[{"candidates"', BodyFormat.JSON_ARRAY),
        (b' \r\n\t[{"candidates"', BodyFormat.JSON_ARRAY),
        (BOM + b'\n[{"a"', BodyFormat.JSON_ARRAY),
        (b'{\n  "error": {', BodyFormat.JSON_OBJECT),
        (BOM + b'{"candidates"', BodyFormat.JSON_OBJECT),
        (BOM + b"data: {}", BodyFormat.SSE),
        (b"", BodyFormat.UNKNOWN),
        (b" \r\n ", BodyFormat.UNKNOWN),
        (BOM, BodyFormat.UNKNOWN),
        (BOM[:2], BodyFormat.UNKNOWN),  # may still become a BOM
    ],
)
def test_the_first_non_whitespace_byte_tells_the_framing(first_bytes: bytes, expected: BodyFormat) -> None:
    assert sniff_format(first_bytes) is expected


@pytest.mark.parametrize(
    ("first_bytes", "content_type", "expected"),
    [
        (b"<html><h1>502 Bad Gateway</h1>", "text/html", BodyFormat.UNKNOWN),
        (b"Service Unavailable", "text/plain", BodyFormat.UNKNOWN),
        (b": comment\n", "text/event-stream", BodyFormat.SSE),
        (b"data: {}", "application/json", BodyFormat.SSE),  # the bytes say SSE
        (b"[{}]", "text/event-stream", BodyFormat.JSON_ARRAY),  # the bytes say JSON
        (b"", "text/event-stream; charset=utf-8", BodyFormat.SSE),
        (b"  ", "Text/Event-Stream", BodyFormat.SSE),
        (b"", "application/json", BodyFormat.UNKNOWN),
        (b"hello", "", BodyFormat.SSE),  # an empty content type is none
    ],
)
def test_the_content_type_decides_only_where_the_bytes_do_not(
    first_bytes: bytes, content_type: str, expected: BodyFormat
) -> None:
    assert sniff_format(first_bytes, content_type) is expected


def test_one_name_per_framing_with_json_meaning_a_bare_object() -> None:
    assert [str(member) for member in BodyFormat] == ["sse", "json-array", "json", "unknown"]
    assert f"{BodyFormat.JSON_ARRAY}" == "json-array"
    assert BodyFormat("json") is BodyFormat.JSON_OBJECT


@pytest.mark.parametrize(("case", "label", "body"), ALL, ids=[f"{c.name}-{label}" for c, label, _ in ALL])
def test_the_decoder_reports_the_framing_of_every_capture(case: Case, label: str, body: bytes) -> None:
    decoder = ResponseDecoder()
    decoder.feed(body[:200])
    if label.startswith("json-array"):
        expected = BodyFormat.JSON_ARRAY
    elif case.name.endswith(".json"):  # an error body
        expected = BodyFormat.JSON_OBJECT
    else:
        expected = BodyFormat.SSE
    assert decoder.format is expected


def test_the_decoder_reads_a_non_json_page_under_an_error_status_as_unknown() -> None:
    decoder = ResponseDecoder()
    decoder.feed(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/html\r\n\r\n<html>")
    assert decoder.format is BodyFormat.UNKNOWN


# -- JSONArrayScanner ----------------------------------------------------------------------------------------

# JSON values whose strings hold what could fool a scanner: brackets, quotes, backslashes, escaped newlines.
_TEXT = st.text(alphabet=st.sampled_from('ab{}[]",:\\\n\t é\U0001f600'), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _TEXT
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)
_OBJECTS = st.lists(st.dictionaries(_TEXT, _VALUES, max_size=4), max_size=5)


def _array(objects: list[dict[str, Any]], style: str) -> tuple[bytes, list[tuple[int, bytes]]]:
    """An array of ``objects`` written in ``style``, and where each element is: (offset, bytes)."""
    if style == "api":  # the API's framing: pretty objects, "\n,\r\n" between them
        elements = [dumps_pretty(obj) for obj in objects]
        body = b"".join(encode_json_array(objects))
        separator, opening = b"\n,\r\n", b"["
    elif style == "alternating":
        # Pretty objects and objects that only start pretty ("{" and a line end) but end without "\n}":
        # the scanner waits for a "\n}" after a pretty one, and must still find the others' ends.
        elements = [
            dumps_pretty(obj) if index % 2 == 0 else b"{\n" + json.dumps(obj).encode()[1:]
            for index, obj in enumerate(objects)
        ]
        separator, opening = b"\n,\r\n", b"["
        body = opening + separator.join(elements) + b"\n]"
    else:
        # "compact": no newlines at all, so only the token loop can find the ends; "indent0": every
        # closing brace at a line start, so the pretty shortcut meets many false ends.
        indent = 0 if style == "indent0" else None
        elements = [json.dumps(obj, indent=indent, ensure_ascii=False).encode() for obj in objects]
        separator, opening = (b",\n", b"[\n") if indent == 0 else (b", ", b"[")
        body = opening + separator.join(elements) + b"]"
    spans = []
    offset = len(opening)
    for element in elements:
        spans.append((offset, element))
        offset += len(element) + len(separator)
    return body, spans


def _scan(chunks: list[bytes], loads: Any = None, array: bool = True) -> list[ArrayElement]:
    scanner = JSONArrayScanner(array=array, loads=loads)
    found: list[ArrayElement] = []
    for chunk in chunks:
        found += scanner.feed(chunk)
    found += scanner.close()
    return found


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=150, deadline=None)
@given(
    objects=_OBJECTS,
    style=st.sampled_from(["api", "compact", "indent0", "alternating"]),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    decode=st.booleans(),
)
def test_any_chunking_gives_the_same_element_boundaries(
    objects: list[dict[str, Any]], style: str, cuts: list[int], decode: bool
) -> None:
    body, spans = _array(objects, style)
    loads = orjson.loads if decode else None
    for chunks in ([body], _cut(body, cuts), [body[i : i + 1] for i in range(len(body))]):
        found = _scan(chunks, loads)
        assert [(element.offset, element.data) for element in found] == spans
        if decode:
            assert [element.value for element in found] == objects
        else:
            assert all(element.value is None for element in found)
    if style != "alternating":  # (the one formatting that may keep an object until a later "\n}")
        # Each object comes out with the chunk that holds its closing brace.
        scanner = JSONArrayScanner(loads=loads)
        seen = fed = 0
        for chunk in _cut(body, cuts):
            seen += len(list(scanner.feed(chunk)))
            fed += len(chunk)
            assert seen == sum(1 for offset, data in spans if offset + len(data) <= fed)


@settings(max_examples=50, deadline=None)
@given(objects=_OBJECTS, cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_a_run_of_bare_objects_is_scanned_alike(objects: list[dict[str, Any]], cuts: list[int]) -> None:
    elements = [dumps_pretty(obj) for obj in objects]
    body = b"\n".join(elements)
    found = _scan(_cut(body, cuts), orjson.loads, array=False)
    assert [element.value for element in found] == objects
    assert b"".join(element.data for element in found) == b"".join(elements)


def test_each_element_comes_out_as_soon_as_its_closing_brace_arrives() -> None:
    body = b"".join(encode_json_array([{"n": 1}, {"n": 2}]))
    end_of_first = body.index(b"}") + 1
    scanner = JSONArrayScanner(loads=orjson.loads)
    assert list(scanner.feed(body[: end_of_first - 1])) == []
    assert [element.value for element in scanner.feed(body[end_of_first - 1 : end_of_first])] == [{"n": 1}]
    assert [element.value for element in scanner.feed(body[end_of_first:])] == [{"n": 2}]
    assert scanner.ended
    assert scanner.close() == []


@pytest.mark.parametrize(
    ("body", "message", "offset", "before"),
    [
        (b'[{"a": 1}, 2]', "unexpected bytes at body offset 11", 11, 1),
        (b'[{"a": 1}, "s"]', "unexpected JSON string at body offset 11", 11, 1),
        (b'[{"a": 1}, [1]]', "unexpected '[' at body offset 11", 11, 1),
        (b'[{"a": 1}] trailing', "unexpected bytes at body offset 11 (after the array)", 11, 1),
        # A string token after stray bytes: the bytes are reported first, whole or split (found by fuzzing:
        # whole, the unfinished string waited for more input and the stray byte went unchecked).
        (b'[{"a": 1}]O"', "unexpected bytes at body offset 10 (after the array)", 10, 1),
        (b'[{"a": 1}, x"s"]', "unexpected bytes at body offset 11", 11, 1),
        (b'[{"a": 1}] "', "unexpected JSON string at body offset 11 (after the array)", 11, 1),
        (b'[{"a": 1}, {"b": tru}]', "JSON object at body offset 11 is not valid JSON", 11, 1),
        (b'[{"a": 1}, {"b": [2', "input ends inside a JSON object that starts at body offset 11", 11, 1),
        (b"  ", "input ends before the JSON array starts", 2, 0),
        (b'{"a": 1}', "unexpected '{' at body offset 0 (before the array)", 0, 0),
    ],
)
def test_bytes_that_are_no_such_array_raise_where_they_are_after_the_elements_before(
    body: bytes, message: str, offset: int, before: int
) -> None:
    for chunks in ([body], [body[i : i + 1] for i in range(len(body))]):
        scanner = JSONArrayScanner(loads=orjson.loads)
        found: list[ArrayElement] = []
        with pytest.raises(GeminiDecodeError) as info:
            for chunk in chunks:
                for element in scanner.feed(chunk):
                    found.append(element)
            found += scanner.close()
        assert message in str(info.value)
        assert info.value.offset == offset
        assert len(found) == before
