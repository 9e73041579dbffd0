"""fixtures/cats.jsonl is what fixtures/tools/build_cats_jsonl.py makes from cats.sse (the story's words
unchanged, today's fields added), and ``--serve fixtures/`` answers the REST quickstart's exact curl request
with it."""

from __future__ import annotations

import importlib.util
import json

import httpx
from _frameworks import FIXTURES, MODEL, STORY, fixture_responses, fixture_text

from sse_toolkit import ReplayServer, load_fixture

QUICKSTART_BODY = b'{ "contents":[{"parts":[{"text": "Write a cute story about cats."}]}]}'


def _builder() -> object:
    spec = importlib.util.spec_from_file_location(
        "build_cats_jsonl", FIXTURES / "tools" / "build_cats_jsonl.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cats_jsonl_is_as_built_from_cats_sse() -> None:
    build = _builder().build  # type: ignore[attr-defined]
    assert (FIXTURES / "cats.jsonl").read_bytes() == build((FIXTURES / "cats.sse").read_bytes())


def test_cats_jsonl_tells_the_seed_story_in_todays_wire_shape() -> None:
    assert fixture_text("cats.sse") == STORY  # the words are the seed's
    responses = fixture_responses("cats.jsonl")
    assert all(
        r["modelVersion"] == MODEL and r["responseId"] == responses[0]["responseId"] for r in responses
    )
    assert [r["candidates"][0].get("finishReason") for r in responses] == [None, "STOP"]
    assert responses[-1]["usageMetadata"]["totalTokenCount"] == 49
    request = load_fixture(FIXTURES / "cats.jsonl").exchanges[0].request
    assert request is not None and request.body == QUICKSTART_BODY and "key=REDACTED" in request.query


def test_the_quickstart_curl_request_gets_the_cat_story_from_the_fixture_directory() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        url = f"{server.url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse&key=some-key"
        streamed = httpx.post(url, content=QUICKSTART_BODY, headers={"Content-Type": "application/json"})
        unary = httpx.post(
            f"{server.url}/v1beta/models/{MODEL}:generateContent?key=some-key",
            content=QUICKSTART_BODY,
            headers={"Content-Type": "application/json"},
        )
    assert streamed.status_code == 200
    assert streamed.content == load_fixture(FIXTURES / "cats.jsonl").exchanges[0].body
    assert json.loads(unary.content)["candidates"][0]["content"]["parts"][0]["text"] == STORY
