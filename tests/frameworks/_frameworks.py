"""Helpers for the framework tests: the shipped fixtures, the cat story they must return, a directory of
current-shape recordings, replay servers, and the redirection of a client that has no base-URL setting
(llm-gemini).

Every framework is driven through its own documented base-URL setting against a real ``ReplayServer`` on
127.0.0.1, twice (``Served``): on the shipped fixtures (``--serve fixtures/``) with the REST quickstart's
prompt, so that the directory server picks ``cats.jsonl`` by its recorded request; and on a directory of
recordings made here with ``RecordingProxy`` from real captures of today's API (``record_captures``),
where two recordings of gemini-2.5-flash differ only by their prompt, so the answer proves the request was
matched by its conversation. The frameworks are optional (the ``frameworks`` extra): each test module
starts with ``pytest.importorskip``.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sse_toolkit import ReplayServer, iter_responses, load_fixture, merge_responses
from sse_toolkit.record import RecordingProxy
from sse_toolkit.replay import _openai as openai_compat

# litellm fetches its model price map from the internet at import unless told to use its bundled copy; the
# tests must never reach the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DATA = Path(__file__).resolve().parents[1] / "data"
MODEL = "gemini-2.0-flash"  # the quickstart's model
PROMPT = "Write a cute story about cats."  # the quickstart's prompt, word for word


def fixture_responses(name: str) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` dicts of the first exchange of a shipped fixture."""
    body = load_fixture(FIXTURES / name).exchanges[0].body
    return [
        json.loads(line[len(b"data: ") :]) for line in body.split(b"\r\n\r\n") if line.startswith(b"data: ")
    ]


def fixture_text(name: str) -> str:
    """The whole answer of a shipped fixture, merged as the Gemini layer merges it."""
    body = load_fixture(FIXTURES / name).exchanges[0].body
    return merge_responses(iter_responses([body])).text or ""


STORY = fixture_text("cats.jsonl")


@dataclass(frozen=True)
class Recording:
    """A real capture of today's API (tests/data), recorded here as if a client had asked ``model`` for
    ``prompt``."""

    name: str
    capture: str
    model: str
    prompt: str

    @property
    def responses(self) -> list[dict[str, Any]]:
        body = (DATA / self.capture).read_bytes()
        return [
            json.loads(part[len(b"data: ") :])
            for part in body.split(b"\r\n\r\n")
            if part.startswith(b"data: ")
        ]

    @property
    def text(self) -> str:
        return merge_responses(iter_responses([(DATA / self.capture).read_bytes()])).text or ""


RECORDINGS = (
    # The decoy comes first by file name: only the prompt tells it from the recording asked for.
    Recording("blue-sky.jsonl", "thinking-thoughts.sse", "gemini-2.5-flash", "Why is the sky blue?"),
    Recording("poland.jsonl", "text-long-utf8.sse", "gemini-2.5-flash", "What is the capital of Poland?"),
    Recording("wyoming.jsonl", "text-stop.sse", "gemini-2.0-flash", "What is the capital of Wyoming?"),
)
ASKED = RECORDINGS[1]  # what the frameworks ask of the recordings: the decoy's model, another prompt


def record_captures(directory: Path) -> Path:
    """Record each of ``RECORDINGS`` into ``directory`` the way ``sse-record`` does: a client's streamed
    request through a ``RecordingProxy`` to an upstream that sends the capture (a replay server)."""
    for recording in RECORDINGS:
        with (
            ReplayServer(DATA / recording.capture, speed=0) as upstream,
            RecordingProxy(upstream.url, directory / recording.name) as proxy,
        ):
            response = httpx.post(
                f"{proxy.url}/v1beta/models/{recording.model}:streamGenerateContent?alt=sse",
                json={"contents": [{"role": "user", "parts": [{"text": recording.prompt}]}]},
                headers={"x-goog-api-key": "recording-key-0123456789"},
            )
            assert response.status_code == 200 and response.content == (DATA / recording.capture).read_bytes()
        proxy.check()
    return directory


@dataclass(frozen=True)
class Served:
    """A replay server and what a framework must get from it: ``kind`` (``fixtures`` or ``recordings``),
    the ``model`` and ``prompt`` to ask, the ``text`` of the answer, its ``total_tokens`` and the model's
    token ``limits`` (input, output)."""

    kind: str
    server: ReplayServer
    model: str
    prompt: str
    text: str
    total_tokens: int
    limits: tuple[int, int]

    @property
    def url(self) -> str:
        return self.server.url


def served_fixtures(server: ReplayServer) -> Served:
    total = fixture_responses("cats.jsonl")[-1]["usageMetadata"]["totalTokenCount"]
    return Served("fixtures", server, MODEL, PROMPT, STORY, total, (1_048_576, 8_192))


def served_recordings(server: ReplayServer) -> Served:
    total = ASKED.responses[-1]["usageMetadata"]["totalTokenCount"]
    return Served("recordings", server, ASKED.model, ASKED.prompt, ASKED.text, total, (1_048_576, 65_536))


def redirect_httpx(monkeypatch: pytest.MonkeyPatch, host: str, base_url: str) -> None:
    """Send every httpx request for ``https://{host}`` to ``base_url`` instead, for this test only.

    For clients with a hard-coded host and no base-URL setting (llm-gemini builds
    ``https://generativelanguage.googleapis.com/v1beta/...`` itself): the transports' send methods are
    wrapped, so module-level ``httpx.stream`` and any ``httpx.Client``/``AsyncClient`` it creates follow."""
    target = httpx.URL(base_url)
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def rewrite(request: httpx.Request) -> None:
        if request.url.host == host:
            request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            request.headers["host"] = f"{target.host}:{target.port}"

    def send(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        rewrite(request)
        return sync_send(self, request)

    async def send_async(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        rewrite(request)
        return await async_send(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", send)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", send_async)


class CompatServer:
    """A tiny stdlib HTTP server on 127.0.0.1 that answers the OpenAI-compatible routes with the pure
    converters of ``sse_toolkit.replay._openai`` over one shipped fixture: an upstream for the recorder that
    is not the replay app itself (test_record_compat).

    The model named in a request picks a behaviour: ``quota`` gets the 429 error list before the stream,
    ``overloaded`` gets the stream with an error event in place of its end; any other model the fixture."""

    def __init__(self, fixture: str) -> None:
        self.responses = fixture_responses(fixture)
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parsed = openai_compat.parse_openai_path(self.path.split("?", 1)[0])
                if parsed is not None and parsed.route is openai_compat.OpenAIRoute.MODELS:
                    self._send(200, "application/json", orjson.dumps(openai_compat.models_list([MODEL])))
                elif parsed is not None and parsed.route is openai_compat.OpenAIRoute.MODEL:
                    self._send(
                        200, "application/json", orjson.dumps(openai_compat.model_object(parsed.model or ""))
                    )
                else:
                    self._send(
                        404,
                        "application/json",
                        orjson.dumps(openai_compat.chat_error(404, "NOT_FOUND", "no")),
                    )

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = openai_compat.parse_chat_request(body)
                outer.requests.append(orjson.loads(body))
                if request.model == "quota":
                    error = openai_compat.chat_error(
                        429, "RESOURCE_EXHAUSTED", "Resource has been exhausted."
                    )
                    self._send(429, "application/json", json.dumps(error, indent=2).encode())
                    return
                if not request.stream:
                    answer = openai_compat.chat_completion(outer.responses, model=request.model, created=1)
                    self._send(200, "application/json", orjson.dumps(answer))
                    return
                chunks = openai_compat.chat_chunks(
                    outer.responses, model=request.model, created=1, include_usage=request.include_usage
                )
                events = openai_compat.encode_chat_stream(chunks)
                if request.model == "overloaded":
                    error = openai_compat.chat_error(503, "UNAVAILABLE", "The model is overloaded.")
                    events = [*events[:-1], openai_compat.encode_chat_error_event(error)]
                self._send(200, "text/event-stream", b"".join(events))

            def _send(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CompatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
