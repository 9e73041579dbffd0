"""``RequestReader`` is strict where RFC 9112 is: a table of framings it must refuse (and the status), a table
of lenient-looking ones RFC 9112 allows and it must accept, a property holding its framing decisions
(Content-Length, Transfer-Encoding, chunk sizes) to h11's, and over a live server the request that used to
stop the loop (``Content-Length: ²``) now gets a 400 while the next client is served."""

from __future__ import annotations

import h11
import httpx
import pytest
from _rawhttp import raw_exchange
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit.server._http import ParsedRequest, Refusal, RequestReader
from sse_toolkit.server._lifecycle import LoopbackServer
from sse_toolkit.server._loop import ReplayRequest, Reply

MAX_BODY = 1 << 20


def read(wire: bytes) -> ParsedRequest | None:
    """The first request of ``wire`` (None: incomplete); raises Refusal."""
    reader = RequestReader(max_head=64 * 1024, max_body=MAX_BODY)
    reader.feed(wire)
    return reader.next_request()


def post(*headers: bytes, body: bytes = b"", line: bytes = b"POST /p HTTP/1.1") -> bytes:
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in (b"Host: x", *headers)) + b"\r\n" + body


REFUSED = {
    # Content-Length: ASCII digits only (str.isdigit() accepts the Latin-1 superscripts, int() does not)
    "cl superscript two": (post(b"Content-Length: \xb2"), 400),
    "cl superscript one": (post(b"Content-Length: \xb9"), 400),
    "cl superscript three": (post(b"Content-Length: \xb3", body=b"abc"), 400),
    "cl arabic-indic digit": (post("Content-Length: ٥".encode()), 400),
    "cl plus sign": (post(b"Content-Length: +5", body=b"12345"), 400),
    "cl minus sign": (post(b"Content-Length: -5"), 400),
    "cl hex": (post(b"Content-Length: 0x5", body=b"12345"), 400),
    "cl underscore": (post(b"Content-Length: 1_0", body=b"0123456789"), 400),
    "cl inner space": (post(b"Content-Length: 5 5", body=b"12345"), 400),
    "cl empty": (post(b"Content-Length: "), 400),
    "cl nbsp after": (post(b"Content-Length: 5\xa0", body=b"12345"), 400),
    "cl differing duplicates": (post(b"Content-Length: 5", b"Content-Length: 6", body=b"123456"), 400),
    "cl differing list": (post(b"Content-Length: 5, 6", body=b"123456"), 400),
    "cl thousands of digits": (post(b"Content-Length: " + b"9" * 5000), 413),
    "cl over max_body": (post(b"Content-Length: %d" % (MAX_BODY + 1)), 413),
    # Transfer-Encoding: exactly one chunked, last; never with Content-Length or in HTTP/1.0
    "te xchunked": (post(b"Transfer-Encoding: xchunked", body=b"0\r\n\r\n"), 400),
    "te chunked then gzip": (post(b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"), 400),
    "te chunked twice": (post(b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"), 400),
    "te two fields": (post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: "), 400),
    "te identity": (post(b"Transfer-Encoding: identity"), 400),
    "te gzip then chunked": (post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), 501),
    "te with cl": (post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "te in http/1.0": (post(b"Transfer-Encoding: chunked", line=b"POST /p HTTP/1.0", body=b"0\r\n\r\n"), 400),
    # chunk sizes: hex digits, optional extensions, CRLF
    "chunk 0x prefix": (post(b"Transfer-Encoding: chunked", body=b"0x3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk underscore": (
        post(b"Transfer-Encoding: chunked", body=b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"),
        400,
    ),
    "chunk plus": (post(b"Transfer-Encoding: chunked", body=b"+3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk minus": (post(b"Transfer-Encoding: chunked", body=b"-3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk empty size line": (post(b"Transfer-Encoding: chunked", body=b"\r\n\r\n"), 400),
    "chunk leading space": (post(b"Transfer-Encoding: chunked", body=b" 3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk superscript": (post(b"Transfer-Encoding: chunked", body=b"\xb3\r\nabc\r\n0\r\n\r\n"), 400),
    "chunk bare lf size": (post(b"Transfer-Encoding: chunked", body=b"3\nabc\r\n0\r\n\r\n"), 400),
    "chunk bare lf after data": (post(b"Transfer-Encoding: chunked", body=b"3\r\nabc\n0\r\n\r\n"), 400),
    "chunk data too long": (post(b"Transfer-Encoding: chunked", body=b"3\r\nabcd\r\n0\r\n\r\n"), 400),
    "chunk over max_body": (post(b"Transfer-Encoding: chunked", body=b"%x\r\n" % (MAX_BODY + 1)), 413),
    "chunk bad trailer": (post(b"Transfer-Encoding: chunked", body=b"0\r\nno colon\r\n\r\n"), 400),
    # the request line: single SP only, a token method, a visible-ASCII target, HTTP/d.d
    "line nbsp": (b"GET\xa0/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line nel": (b"GET\x85/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line nbsp before version": (b"GET /\xa0HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line tab": (b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line two spaces": (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line trailing space": (b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
    "line vertical tab": (b"GET\x0b/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line bare cr": (b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line lower-case version": (b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    "line two-digit minor": (b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400),
    "line http/0.5": (b"GET / HTTP/0.5\r\nHost: x\r\n\r\n", 400),
    "line method not a token": (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line latin-1 target": (b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line nul in target": (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "line http/2": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    # header fields: token names right before the colon, no control characters in values
    "field space before colon": (post(b"Content-Length : 0"), 400),
    "field name with paren": (post(b"X(1): v"), 400),
    "field name latin-1": (post(b"X-Caf\xe9: v"), 400),
    "field value nul": (post(b"X-A: a\x00b"), 400),
    "field value bare cr": (post(b"X-A: a\rb"), 400),
    "field value escape": (post(b"X-A: a\x1bb"), 400),
    "field value del": (post(b"X-A: a\x7fb"), 400),
    "field fold first": (b"GET / HTTP/1.1\r\n continued\r\n\r\n", 400),
}


@pytest.mark.parametrize("wire, status", REFUSED.values(), ids=REFUSED.keys())
def test_lenient_framings_are_refused_with_their_status(wire: bytes, status: int) -> None:
    with pytest.raises(Refusal) as refused:
        read(wire)
    assert refused.value.status == status
    assert refused.value.message  # says what was wrong, never an empty answer


ACCEPTED = {
    "cl identical duplicates": (post(b"Content-Length: 5", b"Content-Length: 5", body=b"12345"), b"12345"),
    "cl identical list": (post(b"Content-Length: 5, 5", body=b"12345"), b"12345"),
    "cl leading zeros": (post(b"Content-Length: 005", body=b"12345"), b"12345"),
    "cl padded": (post(b"Content-Length: \t 5 \t", body=b"12345"), b"12345"),
    "te any case": (post(b"Transfer-Encoding: ChUnKeD", body=b"3\r\nabc\r\n0\r\n\r\n"), b"abc"),
    "te empty list elements": (post(b"Transfer-Encoding: , chunked,", body=b"3\r\nabc\r\n0\r\n\r\n"), b"abc"),
    "chunk upper and lower hex": (
        post(
            b"Transfer-Encoding: chunked",
            body=b"A\r\n" + b"x" * 10 + b"\r\na\r\n" + b"y" * 10 + b"\r\n0\r\n\r\n",
        ),
        b"x" * 10 + b"y" * 10,
    ),
    "chunk leading zeros": (post(b"Transfer-Encoding: chunked", body=b"0003\r\nabc\r\n0\r\n\r\n"), b"abc"),
    "chunk extensions": (
        post(b"Transfer-Encoding: chunked", body=b'3;a=1;b="q s"\r\nabc\r\n0;z\r\n\r\n'),
        b"abc",
    ),
    "chunk bws before extension": (
        post(b"Transfer-Encoding: chunked", body=b"3 ;a\r\nabc\r\n0\r\n\r\n"),
        b"abc",
    ),
    "chunk padded size": (post(b"Transfer-Encoding: chunked", body=b"3 \r\nabc\r\n0\r\n\r\n"), b"abc"),
    "chunk trailers": (
        post(b"Transfer-Encoding: chunked", body=b"3\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"),
        b"abc",
    ),
    "field obs-text value": (post(b"X-A: caf\xe9", b"Content-Length: 0"), b""),
    "field tab in value": (post(b"X-A: a\tb", b"Content-Length: 0"), b""),
    "field obs-fold": (post(b"X-A: a", b"  b", b"Content-Length: 0"), b""),
    "bare lf head": (b"POST /p HTTP/1.1\nHost: x\nContent-Length: 2\n\nok", b"ok"),
    "empty lines first": (b"\r\n\r\n" + post(b"Content-Length: 2", body=b"ok"), b"ok"),
}


@pytest.mark.parametrize("wire, body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_rfc_9112_allows_is_accepted(wire: bytes, body: bytes) -> None:
    request = read(wire)
    assert request is not None and request.body == body


def test_an_obs_fold_is_joined_with_one_space_and_values_keep_obs_text() -> None:
    request = read(post(b"X-A: a", b" \t b", b"X-B: caf\xe9", b"Content-Length: 0"))
    assert request is not None
    assert ("X-A", "a b") in request.headers and ("X-B", "café") in request.headers


def test_the_connection_header_is_a_list_of_tokens() -> None:
    close = read(post(b"Connection: keep-alive, Close", b"Content-Length: 0"))
    keep = read(post(b"Connection: Keep-Alive", b"Content-Length: 0", line=b"POST /p HTTP/1.0"))
    assert close is not None and not close.keep_alive
    assert keep is not None and keep.keep_alive


def test_http_0_9_get_is_still_read_as_http_server_reads_it() -> None:
    request = read(b"GET /old\r\n\r\n")
    assert request is not None and (request.method, request.target, request.version) == (
        "GET",
        "/old",
        "HTTP/0.9",
    )
    assert not request.keep_alive


# -- the same framing decisions as h11 -------------------------------------------------------------------

_LENGTHS = [
    b"0",
    b"5",
    b"05",
    b"5, 5",
    b"5, 6",
    b"",
    b" 5 ",
    b"+5",
    b"-5",
    b"0x5",
    b"5_0",
    b"\xb2",
    b"\xb9\xb9",
    b"5 5",
]
_CODINGS = [
    b"chunked",
    b"CHUNKED",
    b"xchunked",
    b"chunkedx",
    b"chunked, chunked",
    b"gzip, chunked",
    b"chunked, gzip",
    b"identity",
    b"",
]
_SIZES = [b"3", b"03", b"0x3", b"1_0", b"+3", b"-3", b"", b" 3", b"3 ", b"3;e=1", b"\xb3", b"g", b"3\t"]


def _ours_accepts(wire: bytes) -> bool:
    try:
        return read(wire) is not None
    except Refusal:
        return False


def _h11_accepts(wire: bytes) -> bool:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(wire)
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.EndOfMessage):
                return True
    except h11.RemoteProtocolError:
        return False


@given(
    st.lists(st.sampled_from(_LENGTHS), max_size=2),
    st.lists(st.sampled_from(_CODINGS), max_size=2),
    st.sampled_from(_SIZES),
)
def test_framing_decisions_are_h11s(lengths: list[bytes], codings: list[bytes], size: bytes) -> None:
    headers = [b"Content-Length: " + v for v in lengths] + [b"Transfer-Encoding: " + v for v in codings]
    body = size + b"\r\nabc\r\n0\r\n\r\n" if codings else b"x" * 5
    wire = post(*headers, body=body)
    if lengths and codings:  # h11 lets Transfer-Encoding win; RFC 9112 6.3 allows refusing, and we do
        assert not _ours_accepts(wire)
        return
    if {b"05", b"5, 5"} & set(lengths) and len(lengths) == 2 and lengths[0] != lengths[1]:
        return  # "5, 5" next to "05": the same number (RFC 9110 8.6); h11 compares the texts
    assert _ours_accepts(wire) == _h11_accepts(wire), wire


# -- over a live server -----------------------------------------------------------------------------------


def _echo(request: ReplayRequest) -> Reply:
    return Reply(200, [], [(None, request.body or b"empty")], stream=False)


_echo.cpu_only = True  # type: ignore[attr-defined]


@pytest.mark.parametrize("superscript", [b"\xb9", b"\xb2", b"\xb3"])
def test_a_superscript_content_length_gets_400_and_the_loop_serves_the_next_client(
    superscript: bytes,
) -> None:
    with LoopbackServer(_echo) as server:
        answer = raw_exchange("127.0.0.1", server.port, post(b"Content-Length: " + superscript, body=b"abc"))
        assert answer.startswith(b"HTTP/1.1 400 ") and b"Content-Length" in answer, answer
        assert httpx.post(server.url + "/next", content=b"fine", timeout=5).content == b"fine"
        assert server.errors == []  # a refusal, not an error caught by luck
