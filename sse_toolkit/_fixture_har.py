"""Fixture layer: HAR 1.2 export and import (browser devtools, proxies, other HTTP tools). No sockets.

HAR (http://www.softwareishard.com/blog/har-12-spec/) describes each request/response as one entry with
the body as decoded text and one set of phase timings in milliseconds. Mapping, per exchange:

    Exchange.request           entry.request (method, url = base URL + path + ?query, headers, postData)
    status/reason/headers      entry.response.status/statusText/headers
    body                       entry.response.content.text (``encoding: "base64"`` unless valid UTF-8)
    head_t                     entry.timings.wait (time to the status line, ms; send is 0: t counts from
                               the moment the request was sent)
    last chunk's t - head_t    entry.timings.receive
    what HAR cannot carry      entry._sse_toolkit (custom fields start with "_", which HAR allows):
                               the chunk boundaries and each chunk's time, how the stream ended
                               (complete/reset/timeout), whether the exchange had a request at all
                               (a tee recording has none), the exact head time.

Import of a HAR without ``_sse_toolkit`` (from a browser): the body is split per SSE event (or JSON-array
element), and since HAR holds no per-chunk times, they are spread evenly between ``wait`` and
``wait + receive``: an estimate that keeps the first byte and the total duration. A browser's
``_error`` on an entry (e.g. ``net::ERR_INCOMPLETE_CHUNKED_ENCODING``) makes the end a ``reset``.
``Content-Encoding``/``Content-Length``/``Transfer-Encoding`` are dropped on import (HAR text is
decoded), as are HTTP/2 pseudo-headers (``:authority``). HAR from a browser carries cookies and keys:
the CLI redacts every import before writing it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from ._fixture_errors import FixtureError
from ._fixture_io import split_body
from ._fixture_model import END_COMPLETE, END_RESET, END_TIMEOUT, Chunk, Exchange, Fixture, RecordedRequest
from ._version import __version__

__all__ = ["DEFAULT_HAR_BASE_URL", "fixture_from_har", "fixture_to_har"]

DEFAULT_HAR_BASE_URL = "http://127.0.0.1"
_EXTENSION = "_sse_toolkit"
_ENDS = (END_COMPLETE, END_RESET, END_TIMEOUT)
_DROP_ON_IMPORT = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"})


def fixture_to_har(
    fixture: Fixture, base_url: str | None = None, started: datetime.datetime | None = None
) -> dict[str, Any]:
    """The fixture as a HAR 1.2 ``{"log": ...}`` object (``orjson.dumps`` it to write a .har file).

    ``base_url`` makes the absolute URLs HAR requires (default: the fixture's ``source`` if it is an
    http(s) URL, e.g. the upstream of a recording, else ``http://127.0.0.1``). ``started`` is the
    wall-clock start of the first entry (default: now, UTC); later entries follow on.
    """
    if base_url is None:
        source = fixture.source or ""
        base_url = source if source.startswith(("http://", "https://")) else DEFAULT_HAR_BASE_URL
    base_url = base_url.rstrip("/")
    clock = started or datetime.datetime.now(datetime.timezone.utc)
    entries = []
    for exchange in fixture.exchanges:
        entry = _entry(exchange, base_url, clock)
        entries.append(entry)
        clock += datetime.timedelta(milliseconds=entry["time"])
    log: dict[str, Any] = {
        "version": "1.2",
        "creator": {"name": "sse-toolkit", "version": __version__},
        "entries": entries,
    }
    if fixture.source is not None:
        log[_EXTENSION] = {"source": fixture.source}
    return {"log": log}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _entry(exchange: Exchange, base_url: str, started: datetime.datetime) -> dict[str, Any]:
    request = exchange.request
    times = [chunk.t for chunk in exchange.chunks if chunk.t is not None]
    wait = exchange.head_t if exchange.head_t is not None else (times[0] if times else 0.0)
    last = max([wait, *times])
    timings = {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": _ms(wait), "receive": _ms(last - wait),
               "ssl": -1}
    body = exchange.body
    content: dict[str, Any] = {"size": len(body), "mimeType": exchange.header("Content-Type", "") or ""}
    content.update(_text(body))
    extension: dict[str, Any] = {
        "version": 1,
        "end": exchange.end,
        "head_t": exchange.head_t,
        "chunks": [{"t": chunk.t, "size": len(chunk.data)} for chunk in exchange.chunks],
    }
    if request is None:
        extension["request"] = False
        request = RecordedRequest(method="GET", path="/")
    har_request: dict[str, Any] = {
        "method": request.method,
        "url": base_url + request.path + ("?" + request.query if request.query else ""),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _pairs(request.headers),
        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(request.query, keep_blank_values=True)],
        "headersSize": -1,
        "bodySize": len(request.body),
    }
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        post = {"mimeType": _find(request.headers, "content-type")}
        text = _text(request.body)
        post["text"] = text["text"]
        if "encoding" in text:
            post["_encoding"] = "base64"  # HAR 1.2 postData has no encoding field; a custom one it may have
        har_request["postData"] = post
    return {
        "startedDateTime": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time": round(sum(v for v in timings.values() if v > 0), 3),
        "request": har_request,
        "response": {
            "status": exchange.status,
            "statusText": exchange.reason,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _pairs(exchange.headers),
            "content": content,
            "redirectURL": exchange.header("Location", "") or "",
            "headersSize": -1,
            "bodySize": len(body),
        },
        "cache": {},
        "timings": timings,
        _EXTENSION: extension,
    }


def _text(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def _pairs(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _find(headers: list[tuple[str, str]], name: str) -> str:
    for key, value in reversed(headers):
        if key.lower() == name:
            return value
    return ""


# -- import ---------------------------------------------------------------------------------------------


class _Where:
    """Names the place in the HAR an error is about: ``FILE: log.entries[2].response.status: ...``."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, path: str, detail: str) -> FixtureError:
        return FixtureError(f"{path}: {detail}", self.source)

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {type(value).__name__}")
        return value

    def string(self, obj: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = obj.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"{path}.{key}", f"expected a string, got {type(value).__name__}")
        return value

    def ms(self, obj: dict[str, Any], key: str) -> float:
        value = obj.get(key, -1)
        return float(value) if type(value) in (int, float) and value >= 0 else 0.0

    def headers(self, value: Any, path: str) -> list[tuple[str, str]]:
        pairs = []
        for index, item in enumerate(self.items(value if value is not None else [], path)):
            item = self.obj(item, f"{path}[{index}]")
            name = self.string(item, "name", f"{path}[{index}]")
            if not name.startswith(":"):  # HTTP/2 pseudo-headers are not headers
                pairs.append((name, self.string(item, "value", f"{path}[{index}]")))
        return pairs

    def data(self, obj: dict[str, Any], path: str, encoding_key: str) -> bytes:
        text = obj.get("text")
        if text is None:
            return b""
        if not isinstance(text, str):
            raise self.fail(f"{path}.text", f"expected a string, got {type(text).__name__}")
        if obj.get(encoding_key) == "base64":
            try:
                return base64.b64decode(text.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise self.fail(f"{path}.text", "is marked base64 but is not valid base64") from None
        return text.encode("utf-8")


def fixture_from_har(data: bytes | dict[str, Any], source: str | None = None, match: str | None = None) -> Fixture:
    """A fixture from a HAR file's bytes (or its parsed object), one exchange per entry, in order.

    ``match`` keeps only entries whose URL contains that text (a browser HAR holds every request of a
    page). ``source`` names the file in errors. The result is NOT redacted: pass it through
    ``Redactor.fixture`` before writing it (the CLI does).
    """
    where = _Where(source)
    if isinstance(data, (bytes, bytearray)):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FixtureError(f"not a HAR file: invalid JSON at line {exc.lineno}: {exc.msg}", source, exc.lineno) from None
    log = where.obj(where.obj(data, "top level").get("log"), "log")
    entries = where.items(log.get("entries"), "log.entries")
    extension = log.get(_EXTENSION)
    fixture = Fixture(source=extension.get("source") if isinstance(extension, dict) else None)
    for index, entry in enumerate(entries):
        path = f"log.entries[{index}]"
        entry = where.obj(entry, path)
        url = where.string(where.obj(entry.get("request"), f"{path}.request"), "url", f"{path}.request")
        if match is not None and match not in url:
            continue
        fixture.exchanges.append(_exchange(where, entry, path))
    return fixture


def _exchange(where: _Where, entry: dict[str, Any], path: str) -> Exchange:
    har_request = where.obj(entry.get("request"), f"{path}.request")
    response = where.obj(entry.get("response"), f"{path}.response")
    extension = entry.get(_EXTENSION)
    extension = extension if isinstance(extension, dict) else None
    status = response.get("status")
    if type(status) is not int or not 100 <= status <= 999:
        raise where.fail(
            f"{path}.response.status",
            f"{status!r} is not an HTTP status (a browser writes 0 when no response came; remove the entry "
            "or import with a URL filter)",
        )
    request: RecordedRequest | None = None
    if not (extension is not None and extension.get("request") is False):
        url = urlsplit(where.string(har_request, "url", f"{path}.request"))
        post = har_request.get("postData")
        body = where.data(where.obj(post, f"{path}.request.postData"), f"{path}.request.postData", "_encoding") if post else b""
        request = RecordedRequest(
            method=where.string(har_request, "method", f"{path}.request"),
            path=url.path or "/",
            query=url.query,
            headers=where.headers(har_request.get("headers"), f"{path}.request.headers"),
            body=body,
        )
    content = where.obj(response.get("content", {}), f"{path}.response.content")
    body = where.data(content, f"{path}.response.content", "encoding")
    size = content.get("size")
    if not body and type(size) is int and size > 0:
        raise where.fail(
            f"{path}.response.content",
            f"has no text but a size of {size} bytes: the HAR was saved without response bodies",
        )
    headers = where.headers(response.get("headers"), f"{path}.response.headers")
    exchange = Exchange(
        request=request,
        status=status,
        reason=reason if isinstance(reason := response.get("statusText"), str) else "",
        headers=headers,
    )
    raw_timings = entry.get("timings")
    timings: dict[str, Any] = raw_timings if isinstance(raw_timings, dict) else {}
    if extension is not None and _chunks_fit(extension.get("chunks"), len(body)):
        exchange.chunks = _split(body, extension["chunks"])
        exchange.head_t = _seconds(extension.get("head_t"))
        end = extension.get("end")
        exchange.end = end if end in _ENDS else END_COMPLETE
        return exchange
    # A HAR from elsewhere: framing headers describe bytes HAR no longer has (its text is decoded).
    exchange.headers = [(k, v) for k, v in headers if k.lower() not in _DROP_ON_IMPORT]
    wait, receive = where.ms(timings, "wait") / 1000.0, where.ms(timings, "receive") / 1000.0
    exchange.head_t = wait
    pieces = split_body(body, exchange.header("Content-Type", "") or "") if body else []
    step = receive / (len(pieces) - 1) if len(pieces) > 1 else 0.0
    exchange.chunks = [Chunk(piece, round(wait + step * number if len(pieces) > 1 else wait + receive, 6))
                       for number, piece in enumerate(pieces)]
    if entry.get("_error") or response.get("_error"):
        exchange.end = END_RESET
    return exchange


def _chunks_fit(chunks: Any, size: int) -> bool:
    return (
        isinstance(chunks, list)
        and all(isinstance(c, dict) and type(c.get("size")) is int and c["size"] >= 0 for c in chunks)
        and sum(c["size"] for c in chunks) == size
    )


def _split(body: bytes, chunks: list[dict[str, Any]]) -> list[Chunk]:
    out = []
    offset = 0
    for chunk in chunks:
        data = body[offset : offset + chunk["size"]]
        offset += chunk["size"]
        if data:
            out.append(Chunk(data, _seconds(chunk.get("t"))))
    return out


def _seconds(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) and value >= 0 else None
