"""HAR 1.2 export and import: a fixture survives the round trip whole (body, chunks, times, status, headers,
request, end), timings land in the HAR's own fields, and a browser's HAR imports sensibly and redacted."""

from __future__ import annotations

import base64
import datetime

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sse_toolkit import (
    END_COMPLETE,
    END_RESET,
    END_TIMEOUT,
    Chunk,
    Exchange,
    Fixture,
    FixtureError,
    RecordedRequest,
    load_fixture,
    save_fixture,
)
from sse_toolkit._cli import main
from sse_toolkit._fixture_har import fixture_from_har, fixture_to_har

RECORDED = Fixture(
    [
        Exchange(
            RecordedRequest("POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "alt=sse&key=REDACTED",
                            [("Content-Type", "application/json"), ("x-goog-api-key", "REDACTED")], b'{"contents": []}'),
            200, "OK", [("Content-Type", "text/event-stream"), ("Content-Disposition", "attachment")],
            [Chunk(b'data: {"a": 1}\r\n\r\n', 0.412), Chunk(b'data: {"a": 2}\r\n\r\n', 0.9), Chunk(b"data: {", 1.25)],
            END_RESET, 0.4,
        ),
        Exchange(None, 429, "Too Many Requests", [("Content-Type", "application/json")],
                 [Chunk(b"\xff\xfe binary", 0.1)], END_COMPLETE, 0.1),
    ],
    source="https://generativelanguage.googleapis.com",
)


def _round_trip(fixture: Fixture) -> Fixture:
    return fixture_from_har(orjson.dumps(fixture_to_har(fixture)))


def test_round_trip_keeps_everything() -> None:
    assert _round_trip(RECORDED) == RECORDED


def test_export_is_valid_har_with_the_timings_in_the_har_fields() -> None:
    started = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    har = fixture_to_har(RECORDED, started=started)
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "sse-toolkit"
    first, second = log["entries"]
    assert first["startedDateTime"] == "2026-01-02T03:04:05.000Z"
    assert first["request"]["url"] == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent"
        "?alt=sse&key=REDACTED")
    assert {"name": "alt", "value": "sse"} in first["request"]["queryString"]
    assert first["request"]["postData"] == {"mimeType": "application/json", "text": '{"contents": []}'}
    assert first["timings"]["send"] == 0
    assert first["timings"]["wait"] == 400.0  # head_t
    assert first["timings"]["receive"] == 850.0  # last chunk (1.25 s) - head_t
    assert first["time"] == 1250.0
    assert first["response"]["content"] == {
        "size": 43, "mimeType": "text/event-stream", "text": 'data: {"a": 1}\r\n\r\ndata: {"a": 2}\r\n\r\ndata: {'}
    assert first["_sse_toolkit"]["end"] == "reset"
    assert second["response"]["content"]["encoding"] == "base64"
    assert base64.b64decode(second["response"]["content"]["text"]) == b"\xff\xfe binary"
    assert second["startedDateTime"] == "2026-01-02T03:04:06.250Z"  # after the first entry's time
    for entry in log["entries"]:
        for key in ("startedDateTime", "time", "request", "response", "cache", "timings"):
            assert key in entry
        for key in ("method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"):
            assert key in entry["request"]
        for key in ("status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL",
                    "headersSize", "bodySize"):
            assert key in entry["response"]
        assert all(entry["timings"][k] >= 0 for k in ("send", "wait", "receive"))


headers = st.lists(st.tuples(st.sampled_from(["Content-Type", "X-A", "x-b"]), st.text(max_size=8)), max_size=3)
chunks = st.lists(
    st.builds(Chunk, st.binary(min_size=1, max_size=20),
              st.none() | st.floats(min_value=0, max_value=100, allow_nan=False)),
    max_size=4,
)
requests = st.none() | st.builds(
    RecordedRequest, st.sampled_from(["GET", "POST"]), st.sampled_from(["/", "/v1/models/m:streamGenerateContent"]),
    st.sampled_from(["", "alt=sse", "a=1&b=%20x"]), headers, st.binary(max_size=20),
)
exchanges = st.builds(
    Exchange, requests, st.integers(min_value=100, max_value=599), st.text(max_size=10), headers, chunks,
    st.sampled_from([END_COMPLETE, END_RESET, END_TIMEOUT]),
    st.none() | st.floats(min_value=0, max_value=100, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(fixture=st.builds(Fixture, st.lists(exchanges, max_size=3), st.none() | st.just("http://up.example")))
def test_any_fixture_survives_the_round_trip(fixture: Fixture) -> None:
    assert _round_trip(fixture) == fixture


BROWSER_HAR = {
    "log": {
        "version": "1.2",
        "creator": {"name": "WebInspector", "version": "537.36"},
        "entries": [
            {
                "startedDateTime": "2026-11-25T10:00:00.000Z",
                "time": 700,
                "request": {
                    "method": "POST",
                    "url": "https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?alt=sse",
                    "httpVersion": "h3",
                    "headers": [{"name": ":authority", "value": "generativelanguage.googleapis.com"},
                                {"name": "x-goog-api-key", "value": "AIzaSyBrowserKey-0123456789"},
                                {"name": "cookie", "value": "SID=browser-cookie-secret-1"}],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 2,
                    "postData": {"mimeType": "application/json", "text": "{}"},
                },
                "response": {
                    "status": 200, "statusText": "", "httpVersion": "h3",
                    "headers": [{"name": "content-type", "value": "text/event-stream"},
                                {"name": "content-encoding", "value": "gzip"}],
                    "cookies": [], "redirectURL": "", "headersSize": -1, "bodySize": -1,
                    "content": {"size": 24, "mimeType": "text/event-stream", "text": "data: 1\r\n\r\ndata: 2\r\n\r\n"},
                    "_error": "net::ERR_INCOMPLETE_CHUNKED_ENCODING",
                },
                "cache": {},
                "timings": {"blocked": 1, "dns": -1, "connect": -1, "send": 0.5, "wait": 200, "receive": 500},
            },
            {
                "startedDateTime": "2026-11-25T10:00:00.000Z", "time": 5,
                "request": {"method": "GET", "url": "https://example.com/app.js", "httpVersion": "h2", "headers": [],
                            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 200, "statusText": "", "httpVersion": "h2", "headers": [], "cookies": [],
                             "redirectURL": "", "headersSize": -1, "bodySize": 0,
                             "content": {"size": 0, "mimeType": "text/javascript"}},
                "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 1},
            },
        ],
    }
}


def test_a_browser_har_imports_per_event_with_estimated_times_and_its_break() -> None:
    fixture = fixture_from_har(BROWSER_HAR, match="streamGenerateContent")
    (exchange,) = fixture.exchanges
    assert exchange.request is not None
    assert (exchange.request.path, exchange.request.query) == ("/v1beta/models/m:streamGenerateContent", "alt=sse")
    assert [name for name, _ in exchange.request.headers] == ["x-goog-api-key", "cookie"]  # no :authority
    assert exchange.header("content-encoding") is None  # HAR text is already decoded
    assert [chunk.data for chunk in exchange.chunks] == [b"data: 1\r\n\r\n", b"data: 2\r\n\r\n"]
    assert [chunk.t for chunk in exchange.chunks] == [0.2, 0.7]  # from wait to wait + receive
    assert exchange.head_t == 0.2
    assert exchange.end == END_RESET  # the browser's _error


def test_har_errors_name_the_file_and_the_place() -> None:
    with pytest.raises(FixtureError, match=r"^x\.har:1: not a HAR file"):
        fixture_from_har(b"{not json", source="x.har")
    bad = orjson.loads(orjson.dumps(BROWSER_HAR))
    bad["log"]["entries"][0]["response"]["status"] = 0
    with pytest.raises(FixtureError, match=r"log\.entries\[0\]\.response\.status: 0 is not an HTTP status"):
        fixture_from_har(bad, source="x.har")
    bad = orjson.loads(orjson.dumps(BROWSER_HAR))
    del bad["log"]["entries"][0]["response"]["content"]["text"]
    with pytest.raises(FixtureError, match="saved without response bodies"):
        fixture_from_har(bad)


def test_cli_export_then_import_gives_the_same_fixture(tmp_path) -> None:
    original = tmp_path / "recorded.sse"
    save_fixture(original, RECORDED)
    har = tmp_path / "out.har"
    runner = CliRunner()
    result = runner.invoke(main, ["har", "export", str(original), "--out", str(har)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(har.read_bytes())["log"]["version"] == "1.2"
    result = runner.invoke(main, ["har", "import", str(har), "--out", str(tmp_path / "back.sse")])
    assert result.exit_code == 0, result.output
    assert load_fixture(tmp_path / "back.sse").exchanges == RECORDED.exchanges


def test_cli_import_redacts_what_a_browser_har_carries(tmp_path) -> None:
    har = tmp_path / "browser.har"
    har.write_bytes(orjson.dumps(BROWSER_HAR))
    out = tmp_path / "browser.sse"
    result = CliRunner().invoke(main, ["har", "import", str(har), "--out", str(out), "--match", "generativelanguage"])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert b"AIzaSyBrowserKey-0123456789" not in data and b"browser-cookie-secret-1" not in data
    assert len(load_fixture(out).exchanges) == 1


def test_cli_import_of_a_broken_har_is_one_line(tmp_path) -> None:
    har = tmp_path / "broken.har"
    har.write_bytes(b"[1, 2")
    result = CliRunner().invoke(main, ["har", "import", str(har), "--out", str(tmp_path / "x.sse")])
    assert result.exit_code == 1
    assert "not a HAR file" in result.output and "Traceback" not in result.output
