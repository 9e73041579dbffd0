"""llama-index's GoogleGenAI with its default constructor (which calls ``models.get`` first) against the
replay server through ``http_options.base_url``: complete, stream_complete, chat, stream_chat, and the
context window it works out from the model's token limits; on the shipped fixtures and on the recordings
directory."""

from __future__ import annotations

import pytest
from _frameworks import Served

llms = pytest.importorskip("llama_index.llms.google_genai")
core = pytest.importorskip("llama_index.core.llms")
types = pytest.importorskip("google.genai.types")


def _llm(served: Served) -> object:
    return llms.GoogleGenAI(
        model=served.model, api_key="test-key", http_options=types.HttpOptions(base_url=served.url)
    )


def test_default_constructor_then_complete_and_chat_stream_and_unary(served: Served) -> None:
    llm = _llm(served)
    assert served.server.requests[0].method == "GET"  # models.get, from the constructor
    prompt, text = served.prompt, served.text
    assert llm.complete(prompt).text == text  # type: ignore[attr-defined]
    assert "".join(r.delta or "" for r in llm.stream_complete(prompt)) == text  # type: ignore[attr-defined]
    message = [core.ChatMessage(role="user", content=prompt)]
    assert llm.chat(message).message.content == text  # type: ignore[attr-defined]
    assert "".join(r.delta or "" for r in llm.stream_chat(message)) == text  # type: ignore[attr-defined]


def test_context_window_comes_from_the_model_limits(served: Served) -> None:
    metadata = _llm(served).metadata  # type: ignore[attr-defined]
    inputs, outputs = served.limits
    assert (metadata.context_window, metadata.num_output) == (inputs + outputs, outputs)
