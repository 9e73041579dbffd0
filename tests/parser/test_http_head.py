"""Tests: ``HeadSplitter`` / ``split_http_head`` strip the HTTP heads ``curl -i`` prints before a body.

Every vector is also fed byte by byte and in seeded random splits, and must give the same heads and body
as the whole-input ``split_http_head``.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from sse_toolkit import HeadSplitter, HttpHead, SSEError, SSEProtocolError, split_http_head
from sse_toolkit.parser._http_head import MAX_HEAD_SIZE

BODY = b'data: {"a": 1}\r\n\r\n'


def split_in_chunks(chunks: list[bytes]) -> tuple[list[HttpHead], bytes]:
    splitter = HeadSplitter()
    body = b"".join(splitter.feed(chunk) for chunk in chunks)
    body += splitter.close()
    return splitter.heads, body


def split_every_way(data: bytes) -> tuple[list[HttpHead], bytes]:
    """``split_http_head(data)``, asserting that byte-by-byte and random chunkings give the same."""
    expected = split_http_head(data)
    assert split_in_chunks([data[i : i + 1] for i in range(len(data))]) == expected
    rng = random.Random(len(data))
    for _ in range(5):
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(1, 8))))
        bounds = [0, *cuts, len(data)]
        assert split_in_chunks([data[a:b] for a, b in pairwise(bounds)]) == expected
    return expected


# --- plain bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        BODY,
        b"H",
        b"HTTP",  # a prefix of "HTTP/" that then ends: still a body
        b"Hello: world\n\n",
        b"HTTPS: not a status line\n\n",
        b"HTTP-ish\n",
        b"http/1.1 200 OK\r\n\r\n",  # lower case: not a head
        b" HTTP/1.1 200 OK\r\n\r\n",
        b"\xef\xbb\xbfdata: x\n\n",
    ],
)
def test_plain_body_passes_unchanged(body: bytes) -> None:
    assert split_every_way(body) == ([], body)


def test_short_prefix_is_held_only_while_it_could_start_a_head() -> None:
    splitter = HeadSplitter()
    assert splitter.feed(b"H") == b""
    assert splitter.feed(b"TT") == b""
    assert splitter.feed(b"X") == b"HTTX"
    assert splitter.in_body and splitter.head is None and splitter.heads == []
    assert splitter.feed(b"HTTP/1.1 200 OK\r\n\r\n") == b"HTTP/1.1 200 OK\r\n\r\n"  # body now: untouched


def test_input_starting_with_http_slash_is_taken_as_a_head() -> None:
    # Documented behaviour: a body that happens to begin with "HTTP/" is read as a status line.
    with pytest.raises(SSEProtocolError):
        split_http_head(b"HTTP/ is a protocol\n\ndata: x\n\n")


# --- curl -i output -----------------------------------------------------------------------------------------


def test_curl_i_http11_head_is_stripped_and_recorded() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Multi: 1\r\nx-multi: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + BODY
    )
    heads, body = split_every_way(data)
    assert body == BODY
    assert len(heads) == 1
    head = heads[0]
    assert (head.version, head.status, head.reason) == ("1.1", 200, "OK")
    assert head.headers[0] == ("Content-Type", "text/event-stream")
    assert head.header("content-type") == "text/event-stream"
    assert head.header("X-MULTI") == "2"  # the last value wins
    assert head.header("missing") is None and head.header("missing", "d") == "d"


def test_curl_i_http2_head_without_reason() -> None:
    data = b'HTTP/2 200 \r\ncontent-type: text/event-stream\r\nalt-svc: h3=":443"\r\n\r\n' + BODY
    heads, body = split_every_way(data)
    assert body == BODY
    assert [(h.version, h.status, h.reason) for h in heads] == [("2", 200, "")]
    assert heads[0].header("alt-svc") == 'h3=":443"'  # only the first colon separates name and value


def test_http2_head_without_trailing_space() -> None:
    heads, body = split_every_way(b"HTTP/2 404\r\n\r\n{}")
    assert (heads[0].status, heads[0].reason, body) == (404, "", b"{}")


def test_100_continue_then_200() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + BODY
    heads, body = split_every_way(data)
    assert body == BODY
    assert [h.status for h in heads] == [100, 200]
    assert heads[0].is_interim and not heads[1].is_interim
    splitter = HeadSplitter()
    assert splitter.feed(data) == BODY
    assert splitter.head == heads[1]


def test_proxy_connection_established_then_http2_200() -> None:
    data = (
        b"HTTP/1.1 200 Connection established\r\n\r\n"
        b"HTTP/2 200 \r\ncontent-type: text/event-stream\r\n\r\n" + BODY
    )
    heads, body = split_every_way(data)
    assert body == BODY
    assert [(h.version, h.status, h.reason) for h in heads] == [
        ("1.1", 200, "Connection established"),
        ("2", 200, ""),
    ]
    assert heads[0].is_interim


def test_lf_only_head() -> None:
    heads, body = split_every_way(b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\ndata: x\n\n")
    assert body == b"data: x\n\n"
    assert heads[0].header("Content-Type") == "text/event-stream"


def test_body_that_looks_like_a_head_after_the_real_head_stays_in_the_body() -> None:
    inner = b"HTTP/1.1 200 OK\r\n\r\ndata: x\n\n"
    heads, body = split_every_way(b"HTTP/1.1 200 OK\r\n\r\n" + inner)
    assert len(heads) == 1 and body == inner


def test_head_with_empty_body() -> None:
    heads, body = split_every_way(b"HTTP/2 204 \r\n\r\n")
    assert [h.status for h in heads] == [204] and body == b""


def test_error_status_head_keeps_its_json_body() -> None:
    payload = b'{\n  "error": {\n    "code": 429\n  }\n}\n'
    heads, body = split_every_way(
        b"HTTP/2 429 \r\ncontent-type: application/json; charset=UTF-8\r\n\r\n" + payload
    )
    assert heads[0].status == 429 and body == payload


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"HTTP/1.1 abc OK\r\n\r\n", 0),
        (b"HTTP/x 200 OK\r\n\r\n", 0),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2x0 OK\r\n\r\n", 25),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 17),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n: empty name\r\n\r\n", 23),
    ],
    ids=["bad-status", "bad-version", "bad-after-100", "header-without-colon", "header-without-name"],
)
def test_malformed_head_raises_with_its_offset(data: bytes, offset: int) -> None:
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        with pytest.raises(SSEProtocolError) as info:
            split_in_chunks(chunks)
        assert info.value.offset == offset
        assert f"offset {offset}" in str(info.value)
        assert isinstance(info.value, SSEError)


@pytest.mark.parametrize(
    "data",
    [b"HTTP/", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n"],
)
def test_input_ending_inside_a_head_raises(data: bytes) -> None:
    with pytest.raises(SSEProtocolError, match="offset 0"):
        split_http_head(data)


def test_input_ending_inside_the_second_head_names_its_offset() -> None:
    with pytest.raises(SSEProtocolError) as info:
        split_http_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert info.value.offset == 25


def test_oversize_head_raises_while_streaming() -> None:
    splitter = HeadSplitter()
    splitter.feed(b"HTTP/1.1 200 OK\r\n")
    filler = b"X-Filler: " + b"a" * 4000 + b"\r\n"
    with pytest.raises(SSEProtocolError, match="offset 0"):
        for _ in range(MAX_HEAD_SIZE // len(filler) + 2):
            splitter.feed(filler)


def test_large_head_under_the_limit_is_accepted() -> None:
    filler = b"X-Filler: " + b"a" * 4000 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + filler * (MAX_HEAD_SIZE // len(filler) - 1) + b"\r\n"
    chunks = [head[i : i + 4096] for i in range(0, len(head), 4096)] + [BODY]
    heads, body = split_in_chunks(chunks)
    assert body == BODY and heads[0].header("x-filler") == "a" * 4000
