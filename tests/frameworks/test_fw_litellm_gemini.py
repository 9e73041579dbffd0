"""litellm's ``gemini/`` provider against the replay server through ``api_base``: streamed and unary (its
unary path requires ``usageMetadata``, which cats.jsonl and today's captures carry), on the shipped fixtures
and on the recordings directory. litellm appends ``/models/...`` to ``api_base`` as given, so the base names
the API version; given the bare server URL it sends no version, which the server accepts too. Its OpenAI
path is in test_fw_openai_sdk."""

from __future__ import annotations

from typing import Any

import pytest
from _frameworks import Served

litellm = pytest.importorskip("litellm")


@pytest.mark.parametrize("version", ["/v1beta", ""])
def test_gemini_provider_streams_and_answers_unary(served: Served, version: str) -> None:
    options: dict[str, Any] = {
        "model": f"gemini/{served.model}",
        "api_base": served.url + version,
        "api_key": "test-key",
        "messages": [{"role": "user", "content": served.prompt}],
    }
    answer = litellm.completion(**options)
    assert answer.choices[0].message.content == served.text
    assert answer.usage.total_tokens == served.total_tokens
    streamed = "".join(c.choices[0].delta.content or "" for c in litellm.completion(stream=True, **options))
    assert streamed == served.text
    assert [e.path for e in served.server.requests] == [
        f"{version}/models/{served.model}:generateContent",
        f"{version}/models/{served.model}:streamGenerateContent",
    ]
