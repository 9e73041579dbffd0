"""Secrets never reach disk: keys, Authorization, Cookie, Set-Cookie and user patterns are redacted in the
written fixture in every spelling, while the upstream still gets the real credentials and the client the
real response; a leak found after writing removes the file."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from _record_upstream import Script, Upstream
from sse_toolkit import Chunk, Exchange, Fixture, RecordedRequest, SSEUsageError, load_fixture, save_fixture
from sse_toolkit.cli import record_main
from sse_toolkit.fixture._redact import REDACTED, Redactor, SecretLeakError
from sse_toolkit.record._proxy import RecordingProxy

QUERY_KEY = "AIzaSy/Query+Key=0123456789"
HEADER_KEY = "AIzaSyHeaderKey-abcdefghij"
BEARER = "ya29.bearer/token+value=="
COOKIE = "cookie-secret-value-123"
SET_COOKIE = "set-cookie-secret-456789"
TOKEN = "user-pattern-token-7777"
SECRETS = [QUERY_KEY, HEADER_KEY, BEARER, COOKIE, SET_COOKIE, TOKEN]


def _spellings(secret: str) -> list[bytes]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret), json.dumps(secret)[1:-1]}
    return [form.encode() for form in forms] + [base64.b64encode(secret.encode())]


def _assert_no_secret(data: bytes) -> None:
    for secret in SECRETS:
        for form in _spellings(secret):
            assert form not in data, f"{form!r} leaked"


def test_proxy_writes_no_credential_in_any_form_while_the_upstream_gets_them_all(tmp_path) -> None:
    # The upstream echoes the query key in its error body and sets a cookie; the pattern's token is in
    # both bodies.
    body = f'data: {{"echo": "{QUERY_KEY}", "token": "{TOKEN}"}}\r\n\r\n'.encode()
    script = Script(
        [(0, body[:30]), (0.01, body[30:])],  # a secret split across two chunks
        headers=[("Content-Type", "text/event-stream"), ("Set-Cookie", f"session={SET_COOKIE}; Path=/; HttpOnly")],
    )
    out = tmp_path / "secret.sse"
    with Upstream(script) as up, RecordingProxy(up.url, out, redact=[r'"token": "([^"]+)"']) as proxy:
        response = httpx.post(
            proxy.url + "/v1beta/models/m:streamGenerateContent",
            params={"alt": "sse", "key": QUERY_KEY},
            content=json.dumps({"token": TOKEN}).encode(),
            headers={"x-goog-api-key": HEADER_KEY, "Authorization": f"Bearer {BEARER}",
                     "Cookie": f"sid={COOKIE}; theme=dark"},
        )
        proxy.check()
    # The client and the upstream see everything real.
    assert response.content == body
    assert response.headers["set-cookie"] == f"session={SET_COOKIE}; Path=/; HttpOnly"
    method, target, headers, sent = up.requests[0]
    assert quote_plus(QUERY_KEY) in target
    assert ("x-goog-api-key", HEADER_KEY) in headers
    assert ("Authorization", f"Bearer {BEARER}") in headers
    assert ("Cookie", f"sid={COOKIE}; theme=dark") in headers
    assert TOKEN.encode() in sent
    # The file holds none of it, and says where it was.
    _assert_no_secret(out.read_bytes())
    exchange = load_fixture(out).exchanges[0]
    request = exchange.request
    assert request is not None
    assert request.query == f"alt=sse&key={REDACTED}"
    assert ("x-goog-api-key", REDACTED) in request.headers
    assert ("Authorization", f"Bearer {REDACTED}") in request.headers
    assert ("Cookie", f"sid={REDACTED}; theme={REDACTED}") in request.headers
    assert exchange.header("Set-Cookie") == f"session={REDACTED}; Path=/; HttpOnly"
    assert exchange.body == f'data: {{"echo": "{REDACTED}", "token": "{REDACTED}"}}\r\n\r\n'.encode()
    assert len(exchange.chunks) == 2  # the chunks and their times survive the redaction


def test_cli_redact_option_and_a_bad_pattern(tmp_path) -> None:
    result = CliRunner().invoke(record_main, ["--out", str(tmp_path / "x.sse"), "--upstream", "http://127.0.0.1:9",
                                              "--redact", "("])
    assert result.exit_code == 1
    assert "not a valid regular expression" in result.output
    assert "Traceback" not in result.output


def test_leak_check_finds_a_secret_and_removes_the_file(tmp_path) -> None:
    redactor = Redactor()
    redactor.headers([("x-goog-api-key", HEADER_KEY)])
    # Written around the redactor: the secret sits in a non-UTF-8 chunk, so the file stores it as base64.
    leaky = Fixture([Exchange(chunks=[Chunk(b"\xff" + HEADER_KEY.encode(), 0.0)])])
    path = tmp_path / "leak.sse"
    save_fixture(path, leaky)
    assert HEADER_KEY.encode() not in path.read_bytes()  # not visible as text...
    with pytest.raises(SecretLeakError, match="redacted value"):
        redactor.check_file(path)  # ...but found in the loaded fields
    assert not path.exists()


def test_save_checked_refuses_before_writing(tmp_path) -> None:
    redactor = Redactor()
    redactor.query(f"key={QUERY_KEY}")
    path = tmp_path / "never.sse"
    with pytest.raises(SecretLeakError):
        redactor.save_checked(path, Fixture([Exchange(chunks=[Chunk(quote(QUERY_KEY, safe="").encode())])]))
    assert not path.exists()


def test_a_short_dummy_key_is_redacted_in_its_field_only() -> None:
    redactor = Redactor()
    exchange = redactor.exchange(
        Exchange(RecordedRequest(query="key=x", headers=[("x-goog-api-key", "x")]), chunks=[Chunk(b"xyz")])
    )
    assert exchange.request is not None
    assert exchange.request.query == f"key={REDACTED}"
    assert exchange.request.headers == [("x-goog-api-key", REDACTED)]
    assert exchange.body == b"xyz"


def test_redacting_twice_changes_nothing_more() -> None:
    redactor = Redactor([r"tok-\d+"])
    fixture = Fixture([Exchange(RecordedRequest(query=f"key={QUERY_KEY}", headers=[("Authorization", f"Bearer {BEARER}")]),
                                chunks=[Chunk(b"a tok-1 b"), Chunk(QUERY_KEY.encode())])])
    once = redactor.fixture(fixture)
    assert redactor.fixture(once) == once
    assert once.exchanges[0].body == f"a {REDACTED} b{REDACTED}".encode()


def test_a_bad_pattern_is_a_usage_error() -> None:
    with pytest.raises(SSEUsageError, match=r"\[a-"):
        Redactor(["[a-"])


@settings(max_examples=200, deadline=None)
@given(
    body=st.lists(st.sampled_from([b"ab", b"\r\n", b" ", b"SECRETKEY123", b"data: "]), max_size=20).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_body_redaction_is_the_same_for_every_chunking(body: bytes, cuts: list[int]) -> None:
    redactor = Redactor()
    redactor.headers([("x-goog-api-key", "SECRETKEY123")])
    bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    chunks = [Chunk(body[a:b], float(n)) for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    redacted = redactor.chunks(chunks)
    assert b"".join(chunk.data for chunk in redacted) == body.replace(b"SECRETKEY123", REDACTED.encode())
    assert all(chunk.data for chunk in redacted)
    assert [chunk.t for chunk in redacted] == sorted(chunk.t for chunk in redacted)  # times kept, in order
