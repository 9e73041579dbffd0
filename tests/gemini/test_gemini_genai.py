"""``to_genai`` equals what google-genai itself builds: the real SDK streams each capture from a loopback
server, and its objects must equal ours converted (compared with ``model_dump``)."""

from __future__ import annotations

import http.server
import pathlib
import threading
from collections.abc import Iterator

import pytest

from sse_toolkit import iter_responses, merge_responses, to_genai

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402 (only once it is known to be installed)
from google.genai import types  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
STREAMS = [
    "text-stop.sse",
    "text-long-utf8.sse",
    "thinking-thoughts.sse",
    "function-call-parallel-gemini3.sse",
    "code-execution.sse",
    "prompt-blocked-safety.sse",
    "multi-candidate.synthetic.sse",
]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    """A loopback server that answers every POST with the (status, body) set for the test."""
    answer: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            status, body = answer["now"]
            self.send_response(status)
            kind = "text/event-stream" if status == 200 else "application/json; charset=UTF-8"
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", answer
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _client(base_url: str) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=base_url))


def _dump(response: types.GenerateContentResponse) -> dict:
    return response.model_dump(exclude={"sdk_http_response"}, exclude_none=True)


@pytest.mark.parametrize("name", STREAMS)
def test_to_genai_equals_what_google_genai_builds_from_the_same_stream(
    name: str, server: tuple[str, dict[str, tuple[int, bytes]]]
) -> None:
    base_url, answer = server
    body = (DATA / name).read_bytes()
    answer["now"] = (200, body)
    client = _client(base_url)  # keep a reference: a collected client closes its connection pool
    theirs = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    ours = list(iter_responses([body]))
    assert len(theirs) == len(ours) > 0
    for mine, sdk in zip(ours, theirs, strict=True):
        converted = to_genai(mine)
        assert isinstance(converted, types.GenerateContentResponse)
        assert _dump(converted) == _dump(sdk)
        assert converted.text == sdk.text
    merged = to_genai(merge_responses(ours))
    assert merged.function_calls == ([call for r in theirs for call in (r.function_calls or [])] or None)


def test_to_genai_takes_a_plain_dict_too() -> None:
    converted = to_genai({"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}}]})
    assert converted.text == "hi"


def test_the_sdk_and_we_agree_on_the_429_error(server: tuple[str, dict[str, tuple[int, bytes]]]) -> None:
    base_url, answer = server
    body = (DATA / "error-429-quota.json").read_bytes()
    answer["now"] = (429, body)
    client = _client(base_url)
    with pytest.raises(genai_errors.ClientError) as sdk_error:
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    from sse_toolkit import ClientError

    with pytest.raises(ClientError) as ours:
        list(iter_responses([b"HTTP/1.1 429 Too Many Requests\r\n\r\n" + body]))
    assert (ours.value.code, ours.value.status, ours.value.message) == (
        sdk_error.value.code,
        sdk_error.value.status,
        sdk_error.value.message,
    )
