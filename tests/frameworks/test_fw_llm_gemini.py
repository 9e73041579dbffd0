"""llm with the llm-gemini plugin. It has no base-URL setting (it builds
``https://generativelanguage.googleapis.com/v1beta/models/...:streamGenerateContent`` itself and reads the
JSON-array stream, no ``alt=sse``), so the test redirects that host's httpx requests to the replay server
(``redirect_httpx``). It requires ``modelVersion`` on the last chunk, which cats.jsonl and today's captures
carry. llm-gemini lists no gemini-2.0-flash, so on the shipped fixtures the server holds cats.jsonl alone
(any model gets the story); the recordings directory is asked for gemini-2.5-flash, which two recordings
answer, told apart by the prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest
from _frameworks import ASKED, Served, redirect_httpx, served_fixtures, served_recordings

from sse_toolkit import ReplayServer

llm = pytest.importorskip("llm")
pytest.importorskip("llm_gemini")

MODEL_ID = "gemini/gemini-2.5-flash"


@pytest.fixture(params=["fixtures", "recordings"])
def redirected(
    request: pytest.FixtureRequest,
    cats_server: ReplayServer,
    recordings_server: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Served]:
    if request.param == "fixtures":
        served = replace(served_fixtures(cats_server), model="gemini-2.5-flash")
    else:
        served = served_recordings(recordings_server)
        assert served.model == ASKED.model
    redirect_httpx(monkeypatch, "generativelanguage.googleapis.com", served.url)
    yield served


def test_prompt_streams_and_answers_whole(redirected: Served) -> None:
    model = llm.get_model(MODEL_ID)
    assert "".join(model.prompt(redirected.prompt, key="test-key", stream=True)) == redirected.text
    response = model.prompt(redirected.prompt, key="test-key", stream=False)
    assert response.text() == redirected.text
    assert response.input_tokens is not None and response.output_tokens is not None
    assert redirected.server.requests[-1].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def test_async_model_streams(redirected: Served) -> None:
    model = llm.get_async_model(MODEL_ID)

    async def collect() -> str:
        return "".join([piece async for piece in model.prompt(redirected.prompt, key="test-key")])

    assert asyncio.run(collect()) == redirected.text
