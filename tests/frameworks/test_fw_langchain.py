"""langchain-google-genai's ChatGoogleGenerativeAI against the replay server through its ``base_url``:
the Gemini API (stream and invoke) and Vertex AI (``vertexai=True`` with credentials), on the shipped
fixtures and on the recordings directory."""

from __future__ import annotations

import pytest
from _frameworks import Served

lc = pytest.importorskip("langchain_google_genai")
oauth2 = pytest.importorskip("google.oauth2.credentials")


def test_chat_model_streams_and_invokes(served: Served) -> None:
    llm = lc.ChatGoogleGenerativeAI(model=served.model, google_api_key="test-key", base_url=served.url)
    assert "".join(str(chunk.content) for chunk in llm.stream(served.prompt)) == served.text
    assert llm.invoke(served.prompt).content == served.text


def test_chat_model_on_vertex_ai_streams_and_invokes(served: Served) -> None:
    llm = lc.ChatGoogleGenerativeAI(
        model=served.model,
        vertexai=True,
        project="test-project",
        location="us-central1",
        credentials=oauth2.Credentials("test-token"),
        base_url=served.url,
    )
    assert "".join(str(chunk.content) for chunk in llm.stream(served.prompt)) == served.text
    assert llm.invoke(served.prompt).content == served.text
    assert all("/projects/test-project/locations/us-central1/" in e.path for e in served.server.requests)
