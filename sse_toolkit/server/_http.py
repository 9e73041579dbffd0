"""Server layer: sans-IO HTTP/1.1 for the loopback server: requests read from bytes, replies made bytes.

Goal: no thread and no file object per connection, so that one loop can serve hundreds of streams.
:class:`RequestReader` is fed whatever bytes a socket gave and gives back a whole request, nothing yet, or
a :class:`Refusal` to answer before closing: 400 for a request that is not HTTP/1.x as RFC 9112 frames it,
414 for a request line over 64 KiB, 431 for a head over its limits, 413 for a body over its limit, 501 for
a transfer coding other than ``chunked``, 505 for HTTP/2 and later. :class:`ReplyWriter` turns a
handler's :class:`Reply` into the pieces to write now and the instant the next one is due; the server's
loop writes them without blocking, a worker thread (for a handler that waits for the network) with
blocking writes and sleeps.

Strict where RFC 9112 is, because every leniency is a way to read one request two ways (request
smuggling) or to reach a code path nobody tested (a ``Content-Length`` of Latin-1 superscripts passed
``str.isdigit()`` and then made ``int()`` raise on the loop thread):
  * the request line is ``method SP target SP HTTP/d.d``, split on single spaces only (a tab, NBSP or NEL
    is not a separator), the method a token, the target visible ASCII;
  * header names are tokens directly followed by ``:``; values hold no control character but HTAB (a CR,
    NUL or LF inside a value is refused); an obs-fold line is joined with one space, as RFC 9112 allows;
  * ``Content-Length`` is ASCII digits only; several values (repeated headers or a list) must all be the
    same number, else 400;
  * ``Transfer-Encoding`` must end in exactly one ``chunked`` (any case; ``xchunked`` and ``chunked,
    gzip`` are 400, another coding before it 501), and may not come with ``Content-Length`` or in an
    HTTP/1.0 request (400: either is a classic way to frame one request two ways);
  * a chunk-size line is hex digits (``0x10``, ``1_0``, ``+3`` and an empty line are 400), optional
    extensions, CRLF; chunk data ends with CRLF; trailers are read as header fields and dropped.
Lenient only where RFC 9112 permits a recipient to be: a bare LF ends a line of the head, and empty lines
before a request are skipped.

Why not h11, which this layer models itself on: it gives the same framing decisions (a test holds this
reader to them), but measured on the request of the benchmark's burst it parses several times slower, on
the one loop thread where every request of a burst waits for those before it.

Cost: O(n) in the bytes fed. The end of a head is searched only in new bytes (plus the 3 before them), a
body is sliced out once, a chunked body is parsed chunk by chunk as it arrives; a reply's pieces are framed
once each, and a writer holds at most one piece ahead (a 1 GiB stream replayed at speed 0 is never held in
memory). Pieces sent again and again (a replay server's fixtures) are framed once for all their requests:
each piece by its id, a body given as a tuple as a whole; both caches are bounded in bytes.
"""

from __future__ import annotations

import contextlib
import enum
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from itertools import repeat
from operator import add, is_
from typing import Any, Generic, NamedTuple, Protocol, TypeVar
from urllib.parse import parse_qsl

from ..parser._end import End

__all__ = [
    "STEP_BYTES",
    "AbruptClose",
    "BodyWatcher",
    "Finish",
    "Handler",
    "ParsedRequest",
    "Refusal",
    "ReplayRequest",
    "Reply",
    "ReplyWriter",
    "RequestReader",
    "Step",
    "chunk",
    "error_reply",
    "refusal_reply",
]

_LAST_HEAD = 8192  # a head kept to be recognised when sent again (RequestReader._last) is at most this
_MAX_LINE = 65536  # as http.server: a request line or header line longer than this is refused
_MAX_FIELDS = 100  # as http.client.parse_headers
_MAX_SIZE_LINE = 1024  # a chunk-size line (size and extensions)
# A Content-Length of more digits than this is over any body limit: refused (413) before int() reads it
# (int() refuses strings of thousands of digits, and would spend time on them first).
_MAX_LENGTH_DIGITS = 18
# RFC 9110 5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
# "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(rb"[%s]+" % _TCHAR)
_TOKEN_TEXT = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9112 3: request-line = method SP request-target SP HTTP-version; HTTP-version = "HTTP/" DIGIT "."
# DIGIT. The target: visible ASCII (RFC 3986 has no room for anything else; a client percent-encodes).
_REQUEST_LINE = re.compile(rb"([%s]+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])" % _TCHAR)
_VERSIONS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"}
_VERSION_LIKE = re.compile(rb"HTTP/([0-9]+)\.([0-9]+)")
_TARGET = re.compile(rb"[\x21-\x7e]+")
# RFC 9110 5.5: field-value = *field-content; field-vchar = VCHAR / obs-text; SP and HTAB inside only.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_DIGITS = re.compile(r"[0-9]+")
# RFC 9112 7.1: chunk-size = 1*HEXDIG; chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] );
# then CRLF. Whitespace before the CRLF is allowed as h11 allows it (some senders pad the size).
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?\r\n")


class Refusal(Exception):
    """The request cannot be served: answer ``status`` with ``message`` and close the connection."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _bad(message: str) -> Refusal:
    return Refusal(400, "Bad Request", message)


@dataclass(slots=True, init=False)
class ParsedRequest:
    """One request as read: ``target`` is the raw request target (path and query)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool
    # What the reader worked out once per head (a connection's head sent again is not read again:
    # RequestReader._last), handed on to the ReplayRequest, read only; None for a request made by hand.
    head: _ReadHead | None = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        body: bytes,
        keep_alive: bool,
        head: _ReadHead | None = None,
    ) -> None:
        # Written out, not the dataclass's: mypyc compiles a class's own __init__, while the one dataclasses
        # generates runs interpreted, once per request.
        self.method, self.target, self.version, self.headers = method, target, version, headers
        self.body, self.keep_alive, self.head = body, keep_alive, head


_FRAMING_FIELDS = frozenset({"content-length", "transfer-encoding", "connection", "expect"})


def _framing(
    headers: list[tuple[str, str]], version: tuple[int, int], max_body: Any
) -> tuple[int, bool, bool, bool]:
    """(body length, chunked, keep-alive, expects ``100 Continue``) from Content-Length, Transfer-Encoding,
    Connection and Expect: every value of each, not the first (a reader that takes the first while another
    takes the last reads two different requests)."""
    lengths: list[str] = []
    codings: list[str] = []
    connection: list[str] = []
    expect = ""
    for name, value in headers:
        lower = name.lower()
        if lower not in _FRAMING_FIELDS:
            continue
        if lower == "content-length":
            lengths.append(value)
        elif lower == "transfer-encoding":
            codings.append(value)
        elif lower == "connection":
            connection.append(value.lower())
        else:
            expect = value
    keep_alive = version >= (1, 1)
    if connection:
        tokens = {token.strip(" \t") for value in connection for token in value.split(",")}
        if "close" in tokens:
            keep_alive = False
        elif "keep-alive" in tokens and version == (1, 0):
            keep_alive = True
    length, chunked = 0, False
    if codings:
        if lengths:
            raise _bad("bad request framing: both Content-Length and Transfer-Encoding")
        if version < (1, 1):
            raise _bad("bad request framing: Transfer-Encoding in an HTTP/1.0 request")
        if len(codings) > 1:  # as h11: one field line (its list may still have empty elements, RFC 9110)
            raise _bad("bad request framing: more than one Transfer-Encoding header")
        _check_codings(codings[0])
        chunked = True
    elif lengths:
        text = lengths[0]
        # One value of ASCII digits (isdigit alone also takes superscripts and other scripts' digits).
        if len(lengths) == 1 and text.isascii() and text.isdigit() and len(text) <= _MAX_LENGTH_DIGITS:
            length = int(text)
        else:
            length = _content_length(lengths, max_body)
        if length > max_body:
            raise Refusal(
                413, "Content Too Large", f"request body of {length} bytes is over the {max_body} byte limit"
            )
    expect_continue = (chunked or length > 0) and version >= (1, 1) and expect.lower() == "100-continue"
    return length, chunked, keep_alive, expect_continue


def _content_length(values: list[str], max_body: Any) -> int:
    """The one number that every Content-Length value (repeated headers, or a list) says; RFC 9110 8.6."""
    texts = {text.strip(" \t") for value in values for text in value.split(",")}
    for text in texts:
        if _DIGITS.fullmatch(text) is None:
            raise _bad(f"bad request body: Content-Length {text!r} is not a number of bytes")
    if any(len(text) > _MAX_LENGTH_DIGITS for text in texts):
        raise Refusal(413, "Content Too Large", f"request body is over the {max_body} byte limit")
    numbers = {int(text) for text in texts}
    if len(numbers) > 1:
        shown = ", ".join(str(n) for n in sorted(numbers))
        raise _bad(f"bad request framing: Content-Length values differ ({shown})")
    return numbers.pop()


def _check_codings(shown: str) -> None:
    """Transfer-Encoding must end in exactly one chunked (RFC 9112 6.1; 501 for a coding before it)."""
    items = [item.strip(" \t").lower() for item in shown.split(",")]
    items = [item for item in items if item]  # RFC 9110 5.6.1: empty list elements are ignored
    if not items or items[-1] != "chunked" or "chunked" in items[:-1]:
        raise _bad(f"bad request framing: Transfer-Encoding {shown!r} does not end in one 'chunked'")
    others = items[:-1]
    if not all(_TOKEN_TEXT.fullmatch(item) for item in others):
        raise _bad(f"bad request framing: Transfer-Encoding {shown!r} is not a list of tokens")
    if others:
        raise Refusal(501, "Not Implemented", f"transfer coding {others[0]!r} is not supported, only chunked")


class _ReadHead(NamedTuple):
    """What a request head says: request line, header fields (in order) and framing."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    keep_alive: bool
    length: int  # the body's length from Content-Length (0 when chunked or none)
    chunked: bool
    expect_continue: bool
    by_name: dict[str, str]  # the headers by lower-case name, the last value winning (read only)
    fields_size: int  # the bytes of the headers' names and values
    params: dict[str, str]  # the query parameters, the last value winning (read only)


def _head_of(head: bytes, line_end: int, end: int, max_body: Any) -> _ReadHead:
    """Read a whole head (``line_end``: its first line feed; ``end``: where the blank line starts) for a
    reader whose body limit is ``max_body``. Raises :class:`Refusal`."""
    line = head[:line_end]
    method, target, version = _request_line(line[:-1] if line.endswith(b"\r") else line)
    headers = _fields(head[line_end + 1 : end + 1])
    if version is None:  # HTTP/0.9: no headers, no body, the connection closes after the answer
        shown, (length, chunked, keep_alive, expect) = "HTTP/0.9", (0, False, False, False)
    else:
        shown = _VERSIONS.get(version) or f"HTTP/{version[0]}.{version[1]}"
        length, chunked, keep_alive, expect = _framing(headers, version, max_body)
    by_name = {name.lower(): value for name, value in headers}  # the last value wins
    size = sum(len(name) + len(value) for name, value in headers)
    fields, params = tuple(headers), _query_params(target.partition("?")[2])
    return _ReadHead(
        method, target, shown, fields, keep_alive, length, chunked, expect, by_name, size, params
    )


class RequestReader:
    """Feed bytes with :meth:`feed`; :meth:`next_request` gives each whole request in order.

    ``max_head`` bounds the request line and headers together (431 over it), ``max_body`` the body (413).
    After a head that says ``Expect: 100-continue`` and whose body has not all come, :attr:`wants_continue`
    is true until :meth:`continue_sent` is called (the server then writes ``100 Continue``).
    """

    def __init__(self, max_head: Any, max_body: Any) -> None:
        # Any, not int: the limits are a user's (LoopbackServer.max_head = 1e6 works, as in Python), and a
        # compiled module checks a declared int where it is passed.
        self.max_head = max_head
        self.max_body = max_body
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer already searched for the end of the head
        self._head: _ReadHead | None = None
        # The last head read and what it said: a client sends the same head again and again on a connection
        # (an SDK's headers do not change between calls, nor a test's prompt, so neither does its
        # Content-Length), and reading one costs more than the rest of the request's way to the handler.
        # Only this connection's own last head is kept (with the limits it was read under), until it closes:
        # nothing outlives the connection; and only a head of up to _LAST_HEAD bytes (an SDK's is well under).
        self._last: tuple[bytes, _ReadHead, tuple[int, int]] | None = None
        self._chunks: list[bytes] | None = None  # a chunked body read so far
        self._chunked_total = 0
        self.wants_continue = False

    @property
    def idle(self) -> bool:
        """True when no byte of a next request has come yet."""
        return not self._buffer and self._head is None

    @property
    def head_done(self) -> bool:
        """True once the current request's head is read (its body may still be coming)."""
        return self._head is not None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def continue_sent(self) -> None:
        self.wants_continue = False

    def discard(self) -> None:
        """Drop what is buffered (the connection is closed)."""
        self._buffer = bytearray()
        self._head, self._chunks, self._last = None, None, None

    def next_request(self) -> ParsedRequest | None:
        """The next whole request, or None until more bytes come. Raises :class:`Refusal`."""
        read = self._head
        if read is None:
            read = self._read_head()
            if read is None:
                return None
            self._head = read
            self.wants_continue = read.expect_continue
            if read.chunked:
                self._chunks = []
        buffer = self._buffer
        if self._chunks is not None:
            body = self._read_chunked()
            if body is None:
                return None
        elif len(buffer) < read.length:
            return None
        elif len(buffer) == read.length:  # the usual case: the body is all that is left
            body = bytes(buffer)
            buffer.clear()
        else:
            body = bytes(buffer[: read.length])
            del buffer[: read.length]
        self._head, self._chunks, self._chunked_total = None, None, 0
        self.wants_continue = False
        return ParsedRequest(
            read.method,
            read.target,
            read.version,
            list(read.headers),
            body,
            read.keep_alive,
            read,
        )

    # -- head ------------------------------------------------------------------------------------
    def _read_head(self) -> _ReadHead | None:
        """The head, once all of it came (taken off the buffer), or None. Raises :class:`Refusal`."""
        buffer = self._buffer
        last = self._last
        if last is not None and buffer.startswith(last[0]) and last[2] == (self.max_head, self.max_body):
            # The head this connection's previous request had, again (a client's next call): its first
            # blank line is where it was then, so it reads the same, under the same limits.
            del buffer[: len(last[0])]
            self._searched = 0
            return last[1]
        while buffer and (buffer[0] == 10 or buffer[:2] == b"\r\n"):  # empty lines before a request: ignored
            del buffer[: 2 if buffer[0] == 13 else 1]
            self._searched = 0
        start = self._searched - 3 if self._searched > 3 else 0
        crlf, lf = buffer.find(b"\n\r\n", start), buffer.find(b"\n\n", start)
        if crlf < 0 and lf < 0:
            self._searched = len(buffer)
            line_end = buffer.find(b"\n")
            if (line_end < 0 and len(buffer) > _MAX_LINE) or line_end > _MAX_LINE:
                raise Refusal(414, "Request-URI Too Long", "request line over 64 KiB")
            if len(buffer) > self.max_head:
                raise Refusal(
                    431, "Request Header Fields Too Large", f"request head over {self.max_head} bytes"
                )
            return None
        end = crlf if lf < 0 or 0 <= crlf < lf else lf
        size = end + (3 if buffer[end + 1] == 13 else 2)
        if size == len(buffer):  # the usual case: the buffer holds the head alone
            head = bytes(buffer)
            buffer.clear()
        else:
            head = bytes(buffer[:size])
            del buffer[:size]
        self._searched = 0
        line_end = head.find(b"\n")
        if line_end + 1 > _MAX_LINE:
            raise Refusal(414, "Request-URI Too Long", "request line over 64 KiB")
        if size > self.max_head:
            raise Refusal(431, "Request Header Fields Too Large", f"request head over {self.max_head} bytes")
        read = _head_of(head, line_end, end, self.max_body)
        if size <= _LAST_HEAD:
            self._last = (head, read, (self.max_head, self.max_body))
        return read

    # -- body ------------------------------------------------------------------------------------
    def _read_chunked(self) -> bytes | None:
        """A chunked body, once all of it came (taken off the buffer), or None. Raises :class:`Refusal`."""
        assert self._chunks is not None
        buffer = self._buffer
        # Chunked: size line, data, CRLF; ...; the 0 chunk, trailers, a blank line. Parsed from ``pos`` on,
        # and what was parsed is cut off the buffer once per call: a body of many tiny chunks stays linear.
        pos = 0
        try:
            while True:
                line_end = buffer.find(b"\n", pos, pos + _MAX_SIZE_LINE + 1)
                if line_end < 0:
                    if len(buffer) - pos > _MAX_SIZE_LINE:
                        raise _bad("bad request body: chunk size line too long")
                    return None
                match = _CHUNK_SIZE.fullmatch(buffer, pos, line_end + 1)
                if match is None:
                    shown = bytes(buffer[pos : min(line_end + 1, pos + 40)])
                    raise _bad(f"bad request body: chunk size line {shown!r} is not hex digits and CRLF")
                size = int(match[1], 16)
                if size == 0:
                    blank = _blank_line_after(buffer, line_end + 1)
                    if blank is None:
                        if len(buffer) - pos > self.max_head:
                            raise Refusal(
                                431, "Request Header Fields Too Large", "request trailers over the head limit"
                            )
                        return None
                    if blank[0] > line_end + 1:  # trailer fields: checked as header fields are, then dropped
                        _fields(bytes(buffer[line_end + 1 : blank[0]]), trailer=True)
                    pos = blank[1]
                    return b"".join(self._chunks)
                if self._chunked_total + size > self.max_body:
                    raise Refusal(
                        413, "Content Too Large", f"chunked request body over the {self.max_body} byte limit"
                    )
                data_end = line_end + 1 + size
                if len(buffer) < data_end + 2:
                    return None
                if buffer[data_end : data_end + 2] != b"\r\n":
                    raise _bad("bad request body: a chunk does not end with CRLF")
                self._chunks.append(bytes(buffer[line_end + 1 : data_end]))
                self._chunked_total += size
                pos = data_end + 2
        finally:
            del buffer[:pos]


def _blank_line_after(buffer: bytearray, start: int) -> tuple[int, int] | None:
    """(start, end) of the first empty line at or after ``start`` (trailer lines skipped), or None."""
    position = start
    while True:
        line_end = buffer.find(b"\n", position)
        if line_end < 0:
            return None
        if line_end == position or (line_end == position + 1 and buffer[position] == 0x0D):
            return position, line_end + 1
        position = line_end + 1


def _request_line(line: bytes) -> tuple[str, str, tuple[int, int] | None]:
    """(method, target, version or None for HTTP/0.9) of a request line (without its line end)."""
    match = _REQUEST_LINE.fullmatch(line)
    if match is not None:
        version = int(match[3]), int(match[4])
        if version >= (2, 0):
            raise Refusal(
                505, "HTTP Version Not Supported", f"invalid HTTP version ({version[0]}.{version[1]})"
            )
        if version < (1, 0):
            raise _bad(f"bad request version ({match[3].decode()}.{match[4].decode()})")
        target = match[2].decode("ascii")
        if target.startswith("//"):
            target = "/" + target.lstrip("/")
        return match[1].decode("ascii"), target, version
    shown = line[:200].decode("iso-8859-1")
    words = line.split(b" ")
    if len(words) == 2 and words[0] == b"GET" and _TARGET.fullmatch(words[1]):  # HTTP/0.9, as http.server
        return "GET", words[1].decode("ascii"), None
    if len(words) != 3 or not all(words):
        raise _bad(f"bad request syntax ({shown!r}: not three words split by single spaces)")
    method, target, version_text = words
    if _TOKEN.fullmatch(method) is None:
        raise _bad(f"bad request method ({method[:80].decode('iso-8859-1')!r})")
    if _TARGET.fullmatch(target) is None:
        raise _bad(f"bad request target ({target[:80].decode('iso-8859-1')!r}: not visible ASCII)")
    like = _VERSION_LIKE.fullmatch(version_text)
    if like is not None and len(like[1]) < 10 and int(like[1]) >= 2:
        raise Refusal(
            505, "HTTP Version Not Supported", f"invalid HTTP version ({version_text[5:80].decode()})"
        )
    raise _bad(f"bad request version ({version_text[:80].decode('iso-8859-1')!r})")


# A header line: a field name (token characters) at the start of a line, a colon, a value on the same line
# (spaces and tabs around it dropped) holding no control character but HTAB. One findall (in C) splits the
# block; when it found one field a line, every line was one; anything else (a folded line, a line without a
# name, a control character) takes the line-by-line path, which refuses what is not a folded line.
_FIELD_SPLIT = re.compile(
    r"(?m)^([" + _TCHAR.decode() + r"]+):[ \t]*((?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)[ \t]*\r?\n"
)


def _fields(block: bytes, trailer: bool = False) -> list[tuple[str, str]]:
    """Header fields in order, from the header lines (each ending with a line feed, without the blank line
    that ends the head); a folded line (starting with a space or tab) continues the one before."""
    lines = block.count(b"\n")
    if len(block) <= _MAX_LINE and lines <= _MAX_FIELDS:
        # On the block decoded once (as ISO-8859-1, what header bytes are read as: byte for code point, so
        # the classes match the same bytes, and a name's token characters are ASCII), findall's pairs are
        # the fields already.
        found: list[tuple[str, str]] = _FIELD_SPLIT.findall(block.decode("iso-8859-1"))
        if len(found) == lines:
            return found
    where = "trailer" if trailer else "header"
    if lines > _MAX_FIELDS:
        raise Refusal(431, "Request Header Fields Too Large", f"more than {_MAX_FIELDS} {where} lines")
    fields: list[tuple[str, str]] = []
    for raw in block.split(b"\n")[:-1]:
        if len(raw) + 1 > _MAX_LINE:
            raise Refusal(431, "Request Header Fields Too Large", f"{where} line over 64 KiB")
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t") and fields:  # RFC 9112 5.2: obs-fold, replaced by a space
            value = line.strip(b" \t")
            if _FIELD_VALUE.fullmatch(value) is None:
                raise _bad(f"bad {where} line {line[:80]!r}: a control character in the value")
            last, before = fields[-1]
            fields[-1] = (last, (before + " " + value.decode("iso-8859-1")).strip())
            continue
        name, colon, raw_value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise _bad(f"bad {where} line {line[:80]!r}: not a token name followed by a colon")
        value = raw_value.strip(b" \t")
        if _FIELD_VALUE.fullmatch(value) is None:
            raise _bad(f"bad {where} line {line[:80]!r}: a control character in the value")
        fields.append((name.decode("ascii"), value.decode("iso-8859-1")))
    return fields


# -- replies ---------------------------------------------------------------------------------------------


def _query_params(query: str) -> dict[str, str]:
    """A query string's parameters, decoded (the last value wins; blank values kept)."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    # Nothing to decode (``alt=sse``): what parse_qsl gives, without its cost.
    pairs = (item.partition("=") for item in query.split("&") if item)
    return {name: value for name, _, value in pairs}


class AbruptClose(Exception):
    """Raised from ``Reply.chunks`` to end the response without the final chunk.

    ``reset=True`` closes with a TCP RST (SO_LINGER 0); otherwise with a plain FIN.
    """

    def __init__(self, reset: bool = True) -> None:
        super().__init__("abrupt close" + (" (reset)" if reset else ""))
        self.reset = reset


@dataclass(init=False)
class ReplayRequest:
    """A request as the server received it. ``query`` is the raw query string (without ``?``)."""

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Worked out on first use (a replay handler asks for several headers and parameters of each request), or
    # once per head by the reader (see ``of``); each for the headers list or query string it was worked
    # out from: a handler that puts others in their place gets them read again.
    _by_name: dict[str, str] | None = field(init=False, repr=False, compare=False)
    _fields_size: int | None = field(init=False, repr=False, compare=False)
    _headers_of: list[tuple[str, str]] | None = field(init=False, repr=False, compare=False)
    _head_fields: tuple[tuple[str, str], ...] | None = field(init=False, repr=False, compare=False)
    _params: dict[str, str] | None = field(init=False, repr=False, compare=False)
    _params_of: str | None = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        method: str,
        path: str,
        query: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        # Written out: see ParsedRequest.__init__.
        self.method, self.path, self.query, self.body = method, path, query, body
        self.headers = [] if headers is None else headers
        self._by_name = self._fields_size = self._headers_of = self._head_fields = None
        self._params = self._params_of = None

    def __reduce__(self) -> tuple[type[ReplayRequest], tuple[str, str, str, list[tuple[str, str]], bytes]]:
        # copy, deepcopy and pickle rebuild it from its fields (compiled, it has no __dict__ to copy).
        return (ReplayRequest, (self.method, self.path, self.query, self.headers, self.body))

    @classmethod
    def of(cls, parsed: ParsedRequest) -> ReplayRequest:
        """The request a :class:`RequestReader` read (what its head worked out once comes along)."""
        path, _, query = parsed.target.partition("?")
        request = cls(parsed.method, path, query, parsed.headers, parsed.body)
        head = parsed.head
        if head is not None:
            request._headers_of, request._head_fields = parsed.headers, head.headers
            request._by_name, request._fields_size = head.by_name, head.fields_size
            request._params_of, request._params = query, head.params
        return request

    def _check_headers(self) -> None:
        """What was worked out from the headers holds for the list it came from, as it was: a handler may
        have put another in place, or changed this one before asking (checked on the first ask only:
        after it, as for any request, a value stays what it was when first asked for)."""
        headers, fields = self.headers, self._head_fields
        if fields is None and self._headers_of is headers:
            return  # checked already (or worked out from this list)
        self._head_fields = None
        if (
            fields is not None
            and self._headers_of is headers
            and len(headers) == len(fields)
            and all(map(is_, headers, fields))
        ):
            return
        self._headers_of, self._by_name, self._fields_size = headers, None, None

    def header(self, name: str, default: str | None = None) -> str | None:
        """The last value of request header ``name`` (case-insensitive), or ``default``."""
        self._check_headers()
        by_name = self._by_name
        if by_name is None:  # the last value wins
            by_name = self._by_name = {key.lower(): value for key, value in self.headers}
        return by_name.get(name.lower(), default)

    @property
    def fields_size(self) -> int:
        """The bytes of the headers' names and values."""
        self._check_headers()
        if self._fields_size is None:
            self._fields_size = sum(len(name) + len(value) for name, value in self.headers)
        return self._fields_size

    def _query_params(self) -> dict[str, str]:
        if self._params is None or self._params_of is not self.query:
            self._params_of, self._params = self.query, _query_params(self.query)
        return self._params

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the last value wins; blank values kept)."""
        return dict(self._query_params())

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``, or ``default``."""
        return self._query_params().get(name, default)

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


@dataclass(init=False)
class Reply:
    """A response to send.

    ``chunks`` are ``(t, data)`` pairs: ``data`` goes out as one HTTP chunk at ``t`` seconds after the
    request arrived (``None``: at once). ``stream=False`` sends the joined body with ``Content-Length``
    instead of chunked encoding. ``end`` is End.COMPLETE, or End.RESET/End.TIMEOUT for an abrupt close after
    the last chunk. ``head_t`` delays the status line.
    """

    # (A handler's: headers any sequence of pairs and stream any truth value, as in Python; a compiled
    # module would check a declared list or bool.)
    status: int = 200
    headers: Sequence[tuple[str, str]] = field(default_factory=list)
    chunks: Iterable[tuple[float | None, bytes]] = ()
    end: End = End.COMPLETE
    stream: Any = True
    head_t: float | None = None
    reason: str | None = None
    watcher: BodyWatcher | None = None

    def __init__(
        self,
        status: int = 200,
        headers: Sequence[tuple[str, str]] | None = None,
        chunks: Iterable[tuple[float | None, bytes]] = (),
        end: End = End.COMPLETE,
        stream: Any = True,
        head_t: float | None = None,
        reason: str | None = None,
        watcher: BodyWatcher | None = None,
    ) -> None:
        # Written out: see ParsedRequest.__init__.
        self.status, self.headers = status, [] if headers is None else headers
        self.chunks, self.end, self.stream, self.head_t = chunks, end, stream, head_t
        self.reason, self.watcher = reason, watcher


class BodyWatcher(Protocol):
    """Told by the writer how far a :class:`Reply`'s body got (a journal counts it): once per step that
    gives pieces of it, not once per piece as a generator wrapped around ``chunks`` would be."""

    def given(self, size: int) -> None:
        """Body pieces were given out to be written: ``size`` body bytes in all so far."""

    def over(self, size: int, whole: bool) -> None:
        """The response is over: its body was read to its end (``whole``; told in the step that gives its
        last pieces, before they are written) or it was cut off or failed (told by
        :meth:`ReplyWriter.close`); ``size`` body bytes were given out. Called once."""


Handler = Callable[[ReplayRequest], Reply]


def error_reply(exc: BaseException) -> Reply:
    """The 500 answer to a handler (or a body) that raised ``exc`` before anything was sent."""
    body = f"sse-replay: internal error: {exc}\n".encode()
    return Reply(500, [("Content-Type", "text/plain")], [(None, body)], stream=False)


def refusal_reply(refusal: Refusal) -> Reply:
    """The answer to a request that cannot be served (see :class:`Refusal`)."""
    body = f"sse-replay: {refusal.message}\n".encode()
    return Reply(
        refusal.status, [("Content-Type", "text/plain")], [(None, body)], stream=False, reason=refusal.reason
    )


class Finish(enum.Enum):
    """How a response finishes on the wire: what its connection does once the response's bytes are written
    (not how a recorded body ended: that is :class:`End`, which a reply carries and this is derived from)."""

    DONE = "done"  # the response is complete and the connection may serve another request
    CLOSE = "close"  # close after the bytes written (a FIN)
    RESET = "reset"  # close with a TCP RST, as a broken upstream does


# Read on every response by name: in Python 3.11 reading a member off its enum class goes through EnumType's
# __getattr__ hook (a bound method made and dropped per read).
_DONE, _CLOSE, _COMPLETE = Finish.DONE, Finish.CLOSE, End.COMPLETE


# Headers the server writes itself; a handler's (or a recording's) copies are dropped.
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date"})
_FINAL = b"0\r\n\r\n"
_HEAD_MEASURE = 1 << 20
# A step with a limit over one stops adding pieces once they hold this many bytes: a 1 GiB fixture at
# --speed 0 is still read as it is sent, a bounded batch at a time.
STEP_BYTES = 1 << 16
_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass(slots=True, init=False)
class Step:
    """What a :class:`ReplyWriter` step gives: ``pieces`` to write now, one write each; ``due``, the instants
    the timed ones among them were due (for the lateness hook); then either ``end`` (a :class:`Finish`:
    the response is over once the pieces are written), or ``wait``, the instant to step again, or neither:
    step again as soon as the pieces are written."""

    pieces: list[bytes]
    due: list[float]
    wait: float | None = None
    end: Finish | None = None

    def __init__(
        self, pieces: list[bytes], due: list[float], wait: float | None = None, end: Finish | None = None
    ) -> None:
        # Written out: see ParsedRequest.__init__.
        self.pieces, self.due, self.wait, self.end = pieces, due, wait, end


def chunk(data: Any) -> bytes:
    """``data`` (bytes, or any bytes-like object: a handler's piece) framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


_V = TypeVar("_V")


class _KeptById(Generic[_V]):
    """Values worked out once for objects a server sends again and again (a replay server hands the same
    pieces and the same planned bodies to request after request), by the object's id. The object is kept in
    its entry, so that its id cannot be reused while there, and a hit is an identity check: nothing is
    hashed. Bounded by what the entries keep alive, as the caller counts it: past ``limit`` the oldest entry
    goes as each new one comes (one at a time, never a bulk drop). Changed under a lock (worker threads
    write replies too), read without one: ``entries`` maps an id to (the object, the value, its cost)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.entries: OrderedDict[int, tuple[object, _V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, obj: object, value: _V, cost: int, *, hold: bool = True) -> None:
        """Keep ``value`` for ``obj``; ``hold=False`` keeps it by the id alone (the object is not kept
        alive, and whatever gets that id later finds the value too)."""
        with self._lock:
            if id(obj) in self.entries:  # another thread was first
                return
            self.entries[id(obj)] = (obj if hold else None, value, cost)
            self.size += cost
            while self.size > self.limit:
                self.size -= self.entries.popitem(last=False)[1][2]


_OBJECT_COST = 200  # an entry's objects (tuples, bytes headers, the dict's node), counted toward the bounds
# Pieces framed already (framing one costs more than the rest of its way through a step): pieces over
# _FRAMED_PIECE bytes are framed each time.
_FRAMED_PIECE = 16 * 1024
_framed: _KeptById[bytes] = _KeptById(4 * 1024 * 1024)
_NOT_FRAMED = (None, b"", 0)


def _framed_chunk(data: Any) -> bytes:
    """``chunk(data)``, kept in ``_framed`` if ``data`` is bytes (immutable) and short enough."""
    framed = chunk(data)
    if len(data) <= _FRAMED_PIECE and type(data) is bytes:
        _framed.keep(data, framed, len(data) + len(framed) + _OBJECT_COST)
    return framed


class _Whole(NamedTuple):
    """A body given as a tuple, framed and joined once (see _whole_of); ``framed`` None: it cannot be."""

    framed: bytes | None
    size: int  # body bytes
    given: int  # pieces with bytes (an empty one only marks a pause)
    latest: float | None  # the latest time of a piece (None: none has one)
    times: tuple[float, ...]  # each time, in order (for Step.due)


# Bodies given as a tuple of (t, bytes) pairs, framed and joined once: a step that may give every piece of
# one, all of them due, then gives one piece instead of going through each. A tuple of bytes cannot change,
# so its id (the tuple kept in the entry) says it is the same body. A body found unfit is kept by its id
# alone (not kept alive; a tuple that gets the id later is stepped piece by piece too).
_wholes: _KeptById[_Whole] = _KeptById(4 * 1024 * 1024)
_UNFIT = _Whole(None, 0, 0, None, ())


def _whole_of(body: tuple[Any, ...]) -> _Whole:
    kept = _wholes.entries.get(id(body))
    if kept is not None and (kept[0] is body or kept[0] is None):
        return kept[1]
    size = given = length = 0
    framed_pieces: list[bytes] = []
    times: list[float] = []
    for item in body:
        t, data = item if type(item) is tuple and len(item) == 2 else (None, None)
        if type(data) is not bytes or not (t is None or type(t) is float or type(t) is int) or t != t:
            # A mutable or malformed piece, or an odd time: each step reads it, as from a list.
            _wholes.keep(body, _UNFIT, _OBJECT_COST, hold=False)
            return _UNFIT
        if t is not None:
            times.append(t)
        if data:
            framed_pieces.append(chunk(data))
            length += len(framed_pieces[-1])
            size += len(data)
            given += 1
            if length > STEP_BYTES:  # more than one step's worth: stepped piece by piece
                _wholes.keep(body, _UNFIT, _OBJECT_COST, hold=False)
                return _UNFIT
    whole = _Whole(b"".join(framed_pieces), size, given, max(times) if times else None, tuple(times))
    # What the entry keeps alive: the framed bytes, the body's own bytes and objects, the entry.
    _wholes.keep(body, whole, length + size + _OBJECT_COST * (len(body) + 1))
    return whole


# The Date header value, formatted once a second (formatdate costs more than the rest of a head; a burst
# asks 100 times a second): the second it is for, and the value.
_date_cache: tuple[int, str] = (0, "")


# Heads already built, by everything that goes in them (the Date included): the streams of one fixture
# all get the same head, and building one costs more than the rest of a piece's way to the socket.
_heads: dict[tuple[object, ...], bytes] = {}


class ReplyWriter:
    """One :class:`Reply` to a request that arrived at ``arrived`` (``time.monotonic``), as steps.

    Each :meth:`step` gives what is due by ``now``: the head (once ``head_t`` is due), body pieces framed
    as one chunk each, and the final chunk. A step gives at most ``limit`` body pieces (one by default,
    and never more than ``STEP_BYTES`` bytes of them past the first); a piece is read from the body (and
    framed) ahead of its time, and the piece after it only in a later step or once this one is in the
    step: at a piece's instant only its write is left to do, the work of reading the next one comes after
    (100 streams of one recording have pieces due in the same millisecond). A caller that writes every
    piece of a step back to back (the loop) asks for several: pieces already due (all of them at
    ``--speed 0``) then cost one step, not one each. A step that meets a piece due later returns its
    instant as ``wait``. With ``merge_head`` the head goes out in the same write as a first piece due
    at once (a handler that never waits: one packet); without, alone, at once (a proxy whose first piece
    may take long). ``stream=False`` and ``HEAD`` replies are one piece with ``Content-Length``.

    :meth:`step` never raises: an error while building the head or reading and framing the body is kept in
    :attr:`error`, and the response becomes a 500 (closing the connection) when none of it was given out
    yet, or else ends at once (``Finish.CLOSE``, no final chunk). :meth:`close` closes a lazy body (a
    fixture streamed from disk) early or at the end.
    """

    def __init__(
        self, reply: Reply, arrived: float, method: str, close_connection: bool, *, merge_head: bool
    ) -> None:
        self.reply = reply
        self.arrived = arrived
        self.method = method
        self.close_connection = close_connection
        self.merge_head = merge_head
        self.error: BaseException | None = None
        # Any, not the pairs Reply.chunks declares: a body's items are read as Python reads them (a bytearray
        # piece, a None one, a list for a pair), which a compiled loop over declared pairs would refuse.
        self._items: Iterator[Any] | None = None
        # The next piece, read from the body and framed ahead of its time: (when due or None, bytes, and its
        # body bytes).
        self._pending: tuple[float | None, bytes, int] | None = None
        self._watcher = reply.watcher  # told after each step that gives pieces, and by close()
        self._body = 0  # body bytes given out and counted (see _step)
        self._held = 0  # the last piece given out, not counted yet
        self._whole = False  # the body was read to its end
        self._given = False  # a step has given out pieces of this response
        # An error met while reading ahead in a step that already holds pieces: those go out, the error is
        # raised by the next step (as if the step had stopped before reading it).
        self._deferred: Exception | None = None
        self._failing = False  # the response became the 500 of an error

    def head(self, length: int | None) -> bytes:
        global _date_cache
        reply = self.reply
        second, date = _date_cache
        now = int(time.time())
        if now != second:
            date = formatdate(now, usegmt=True)
            _date_cache = (now, date)
        key = (reply.status, reply.reason, tuple(reply.headers), length, self.close_connection, date)
        head = _heads.get(key)
        if head is None:
            lines = [f"HTTP/1.1 {reply.status} {reply.reason or _REASONS.get(reply.status, 'Unknown')}"]
            # Read as Python reads them (see _items): any value prints, through str() both ways (compiled, an
            # f-string calls str(); interpreted, format()).
            headers: Iterable[Any] = reply.headers
            lines += ["%s: %s" % (k, v) for k, v in headers if k.lower() not in _OWN_HEADERS]  # noqa: UP031
            for line in lines:
                if "\r" in line or "\n" in line:  # one header would become two (response splitting)
                    raise ValueError(f"reply header {line[:80]!r} holds a line break")
            lines.append(f"Date: {date}")
            lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
            if self.close_connection:
                lines.append("Connection: close")
            text = "\r\n".join(lines) + "\r\n\r\n"
            try:
                head = text.encode("latin-1")  # what HTTP/1.1 header bytes are read as
            except UnicodeEncodeError:  # a hand-written fixture header such as "café€": send it as UTF-8
                head = text.encode("utf-8")
            if len(_heads) >= 256:
                _heads.clear()
            _heads[key] = head
        return head

    def step(self, now: float, limit: int = 1) -> Step:
        """What is due by ``now``, up to ``limit`` body pieces (see the class doc); never raises."""
        try:
            step = self._step(now, limit)
        except Exception as exc:
            return self._fail(exc, now)
        if step.pieces:
            self._given = True
            watcher = self._watcher
            if watcher is not None:
                if self._whole:  # before the last bytes go: a client that has them finds the count done
                    self._watcher = self.reply.watcher = None  # told once; nothing it holds is kept after
                    watcher.over(self._body, True)
                else:
                    watcher.given(self._body)
        return step

    def _fail(self, exc: Exception, now: float) -> Step:
        """The response broke: a 500 in its place when nothing of it was given out, else an abrupt end."""
        if self.error is None:
            self.error = exc
        if self._given or self._failing:
            return Step([], [], end=Finish.CLOSE)
        self._failing = True
        with contextlib.suppress(Exception):  # the body that broke; its error is the one to report
            self.close()
        self.reply, self.close_connection = error_reply(exc), True
        self._items, self._pending = None, None
        return self.step(now)

    def _step(self, now: float, limit: int) -> Step:
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            raise deferred
        reply, step = self.reply, Step([], [])
        with_head = False  # the head is in this step (a first piece due now joins it)
        given = size = 0  # body pieces in this step, and their bytes
        if self._items is None:
            if reply.head_t and self.arrived + reply.head_t > now:
                step.wait = self.arrived + reply.head_t
                return step
            if not reply.stream or self.method == "HEAD":
                body = self._joined()
                if body is None:  # HEAD of a stream too long to measure: its head as a GET would get it
                    step.pieces.append(self.head(None))
                else:
                    head = self.head(len(body))
                    step.pieces.append(head if self.method == "HEAD" else head + body)
                    self._body, self._whole = len(body), True
                step.end = _CLOSE if self.close_connection else _DONE
                return step
            chunks = reply.chunks
            if type(chunks) is tuple and self.merge_head and limit > 1:
                whole = _whole_of(chunks)
                if (
                    whole.framed is not None
                    and whole.given <= limit
                    and (whole.latest is None or self.arrived + whole.latest <= now)
                ):  # every piece due, and this step may give them all: one piece, the final chunk in it
                    self._items = iter(())
                    self._body, self._whole = whole.size, True
                    step.due.extend(map(add, repeat(self.arrived), whole.times))
                    return self._ending(step, self.head(None), whole.framed)
            self._items = iter(chunks)
            step.pieces.append(self.head(None))
            if not self.merge_head:
                return step
            with_head = True
        arrived, items, pieces, dues = self.arrived, self._items, step.pieces, step.due
        framed_get = _framed.entries.get
        # A piece given out counts (for the watcher) once the body is asked for the next one, or found to
        # end: ``held`` is the last piece given, not counted yet (a client that leaves before it is written
        # was not sent it).
        counted, held = self._body, self._held
        try:
            pending, self._pending = self._pending, None
            if pending is not None:  # read and framed in an earlier step, ahead of its time
                due, framed, length = pending
                if due is not None:
                    if due > now:
                        self._pending, step.wait = pending, due
                        return step
                    dues.append(due)
                if framed:  # an empty piece only marks a pause
                    if with_head:
                        pieces[0] += framed  # the head and the first piece: one write
                        with_head = False
                    else:
                        pieces.append(framed)
                    given, size, held = 1, len(framed), length
                    if given >= limit or size >= STEP_BYTES:
                        return step  # the next is read from the body once these are written
            try:
                # The same again for each piece read now (inline: a step of a stream at --speed 0 goes
                # through this once per piece). An error here, or in framing, goes to _fail.
                for t, data in items:
                    counted += held
                    held = 0
                    # As chunk() (from the cache when framed before); an empty piece only marks a pause.
                    known, framed, _ = framed_get(id(data), _NOT_FRAMED)
                    if known is not data:
                        framed = _framed_chunk(data) if data else b""
                    if t is not None:
                        due = arrived + t
                        if due > now:
                            self._pending, step.wait = (due, framed, len(data) if data else 0), due
                            return step
                        dues.append(due)
                    if framed:
                        if with_head:
                            pieces[0] += framed
                            with_head = False
                        else:
                            pieces.append(framed)
                        given += 1
                        size += len(framed)
                        held = len(data)
                        if given >= limit or size >= STEP_BYTES:
                            return step
                counted += held
                held = 0
                self._whole = True
            except AbruptClose as close:
                counted += held  # the body was asked for the next piece
                held = 0
                step.end = Finish.RESET if close.reset else Finish.CLOSE
                return step
            except Exception as exc:
                counted += held
                held = 0
                if not given:
                    raise
                self._deferred = exc  # the pieces read go out first
                return step
        finally:
            self._body, self._held = counted, held
        return self._ending(step)

    def _ending(self, step: Step, *last: bytes) -> Step:
        """``step`` is the last: the final chunk and how the response ends, as the reply says. ``last``: the
        step's last bytes in parts, joined (once) into one piece with the final chunk."""
        end = self.reply.end
        if end == _COMPLETE:
            step.pieces.append(b"".join((*last, _FINAL)) if last else _FINAL)
            step.end = _CLOSE if self.close_connection else _DONE
        else:
            if last:
                step.pieces.append(b"".join(last))
            step.end = Finish.RESET if end == End.RESET else Finish.CLOSE
        return step

    def _joined(self) -> bytes | None:
        """The whole body; for ``HEAD`` of a stream, None once past _HEAD_MEASURE bytes (a 1 GiB fixture
        is not read to give a Content-Length nobody downloads)."""
        chunks: Iterable[Any] = self.reply.chunks  # read loosely, as ``_items`` is
        if self.method != "HEAD" or not self.reply.stream:
            return b"".join(data for _, data in chunks)
        parts, size = [], 0
        for _, data in chunks:
            parts.append(data)
            size += len(data)
            if size > _HEAD_MEASURE:
                return None
        return b"".join(parts)

    def close(self) -> None:
        """Close a lazy body (a generator, a file-backed iterator) and tell the reply's watcher that the
        response is over; safe to call more than once."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None and self.reply.watcher is watcher:
            self.reply.watcher = None
        try:
            close = getattr(self.reply.chunks, "close", None)
            if close is not None:
                close()
        finally:
            if watcher is not None:
                watcher.over(self._body, self._whole)
