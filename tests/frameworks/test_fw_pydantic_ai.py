"""pydantic-ai against the replay server through its providers' ``base_url``: GoogleModel with the Gemini API
provider and with the Google Cloud (Vertex AI) provider, and OpenAIChatModel on the compatibility route;
on the shipped fixtures and on the recordings directory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _frameworks import Served

pytest.importorskip("pydantic_ai")
from pydantic_ai import Agent

google = pytest.importorskip("pydantic_ai.models.google")
google_provider = pytest.importorskip("pydantic_ai.providers.google")
oauth2 = pytest.importorskip("google.oauth2.credentials")


def _run(model: Any, prompt: str) -> tuple[str, str]:
    agent = Agent(model)

    async def streamed() -> str:
        async with agent.run_stream(prompt) as result:
            return "".join([delta async for delta in result.stream_text(delta=True)])

    return asyncio.run(streamed()), agent.run_sync(prompt).output


def test_google_model_streams_and_answers(served: Served) -> None:
    provider = google_provider.GoogleProvider(api_key="test-key", base_url=served.url)
    assert _run(google.GoogleModel(served.model, provider=provider), served.prompt) == (served.text,) * 2


def test_google_model_on_vertex_ai_streams_and_answers(served: Served) -> None:
    cloud = pytest.importorskip("pydantic_ai.providers.google_cloud")
    provider = cloud.GoogleCloudProvider(
        credentials=oauth2.Credentials("test-token"),
        project="test-project",
        location="us-central1",
        base_url=served.url,
    )
    assert _run(google.GoogleModel(served.model, provider=provider), served.prompt) == (served.text,) * 2


def test_openai_chat_model_on_the_compatibility_route(served: Served) -> None:
    models = pytest.importorskip("pydantic_ai.models.openai")
    providers = pytest.importorskip("pydantic_ai.providers.openai")
    provider = providers.OpenAIProvider(api_key="test-key", base_url=served.url + "/v1beta/openai/")
    assert _run(models.OpenAIChatModel(served.model, provider=provider), served.prompt) == (served.text,) * 2
