"""Example: test an application that streams from Gemini, against a local replay server instead of the API.

    pip install "sse-toolkit[genai] @ git+<url-of-your-clone>" pytest
    pytest examples/test_mock_gemini.py

The application builds its own google-genai client from a base URL it is configured with; the test points
that URL at a ReplayServer. The server plays a GeminiScript (no recording needed) or a fixture file, with
faults on demand. ``speed=0`` replays without the recorded pace, so the tests take milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from sse_toolkit import GeminiScript, ReplayServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


# --- the application under test -----------------------------------------------------------------------
class Assistant:
    """A tiny app: asks Gemini, streams the answer, and gives up cleanly when the API fails."""

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        options = types.HttpOptions(base_url=base_url) if base_url else None
        self.client = genai.Client(api_key=api_key, http_options=options)

    def ask(self, question: str) -> str:
        try:
            chunks = self.client.models.generate_content_stream(model="gemini-2.5-flash", contents=question)
            return "".join(chunk.text or "" for chunk in chunks)
        except errors.APIError as error:
            return f"Sorry, Gemini is unavailable ({error.code})."


# --- the tests -----------------------------------------------------------------------------------------
@pytest.fixture
def gemini() -> Iterator[ReplayServer]:
    script = GeminiScript("gemini-2.5-flash").text("The capital of Wyoming is Cheyenne.")
    with ReplayServer(script, speed=0) as server:
        yield server


def test_answer_is_streamed_and_joined(gemini: ReplayServer) -> None:
    assistant = Assistant(api_key="test", base_url=gemini.url)
    assert assistant.ask("What is the capital of Wyoming?") == "The capital of Wyoming is Cheyenne."
    assert gemini.requests[0].kind == "stream"


def test_api_error_is_reported(gemini: ReplayServer) -> None:
    gemini.add_faults(status=400)  # the next request gets the API's real 400 body; 400 is not retried
    assistant = Assistant(api_key="test", base_url=gemini.url)
    assert assistant.ask("What is the capital of Wyoming?") == "Sorry, Gemini is unavailable (400)."


def test_recorded_fixture_replays(sse_replay: Callable[..., ReplayServer]) -> None:
    # sse_replay is the plugin's fixture: a server started for this test, stopped and checked after it
    server = sse_replay(FIXTURES / "wyoming.sse", speed=0)
    assistant = Assistant(api_key="test", base_url=server.url)
    assert assistant.ask("What is the capital of Wyoming?") == "The capital of Wyoming is **Cheyenne**.\n"
