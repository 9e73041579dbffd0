"""google-adk's Gemini model against the replay server through its ``base_url``: an agent run without
streaming (``generateContent``) and with SSE streaming (partial events, then the whole text), on the
shipped fixtures and on the recordings directory. ADK adds its own system instruction to every request; the
recordings are still told apart by their turns."""

from __future__ import annotations

import asyncio

import pytest
from _frameworks import Served

pytest.importorskip("google.adk")
from google.adk.agents import Agent
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.adk.models import Gemini
from google.adk.runners import InMemoryRunner
from google.genai import types


def _run(served: Served, mode: StreamingMode) -> tuple[list[str], list[str]]:
    agent = Agent(name="storyteller", model=Gemini(model=served.model, base_url=served.url))
    runner = InMemoryRunner(agent=agent, app_name="app")

    async def run() -> tuple[list[str], list[str]]:
        session = await runner.session_service.create_session(app_name="app", user_id="user")
        partial: list[str] = []
        final: list[str] = []
        message = types.Content(role="user", parts=[types.Part(text=served.prompt)])
        async for event in runner.run_async(
            user_id="user",
            session_id=session.id,
            new_message=message,
            run_config=RunConfig(streaming_mode=mode),
        ):
            text = "".join(p.text or "" for p in (event.content.parts or ()) if event.content)
            (partial if event.partial else final).append(text)
        return partial, final

    return asyncio.run(run())


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")  # ADK's Gemini reads its key from the environment
    monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)


def test_agent_answers_unary(served: Served) -> None:
    assert _run(served, StreamingMode.NONE) == ([], [served.text])


def test_agent_streams_partial_events_then_the_whole_text(served: Served) -> None:
    partial, final = _run(served, StreamingMode.SSE)
    assert "".join(partial) == served.text and len(partial) > 1
    assert final == [served.text]
    assert served.server.requests[0].body and b"systemInstruction" in served.server.requests[0].body
