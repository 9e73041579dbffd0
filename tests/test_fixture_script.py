"""Scripted Gemini streams: the real API's framing and shapes, readable by google-genai and by our own layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from sse_toolkit import (
    DEFAULT_PACE,
    GeminiScript,
    ServerError,
    iter_responses,
    load_fixture,
    merge_responses,
    parse,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def events_of(body: bytes) -> list[bytes]:
    return [piece + b"\r\n\r\n" for piece in body.split(b"\r\n\r\n") if piece]


def shape(value: Any) -> Any:
    """The keys (in order) of every object, recursively: what a client's parser depends on."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def thinking_script() -> GeminiScript:
    """The stream of fixtures/thinking.sse (a real gemini-2.5-flash capture), written as a script."""
    real = [json.loads(event[6:]) for event in events_of((FIXTURES / "thinking.sse").read_bytes())]
    script = GeminiScript("gemini-2.5-flash", response_id=real[0]["responseId"])
    for response in real:
        part = response["candidates"][0]["content"]["parts"][0]
        if part.get("thought"):
            script.thought(part["text"])
        else:
            script.text(part["text"], words=None)
    return script.usage(prompt=10, candidates=48, thoughts=540).finish("STOP")


def test_every_event_is_framed_as_the_api_frames_it() -> None:
    script = GeminiScript().text("Hello world, how are you?")
    for event in script.events():
        assert event.startswith(b'data: {"candidates": [{"content": {"parts": [{"text": ')
        assert event.endswith(b"}\r\n\r\n") and event.count(b"\r\n") == 2 and b"\n" not in event[:-4]
        # The API's one-line style: ": " after keys, "," between items, no other spaces.
        assert (
            b'"role": "model"},"index": 0}]' in event
            or b'"role": "model"},"finishReason": "STOP","index": 0}]' in event
        )
    assert [event.event for event in parse(b"".join(script.events()))] == ["message"] * 5


def test_scripted_thinking_stream_has_the_shape_of_the_real_capture_and_ends_byte_identical() -> None:
    real = events_of((FIXTURES / "thinking.sse").read_bytes())
    scripted = thinking_script().events()
    assert len(scripted) == len(real)
    for ours, theirs in zip(scripted, real):
        assert shape(orjson.loads(ours[6:])) == shape(orjson.loads(theirs[6:]))
    # Same text, same totals: the last event (finishReason and final usage) is the capture's, byte for byte.
    assert scripted[-1] == real[-1]


def test_usage_grows_and_reaches_the_totals_on_the_last_event() -> None:
    script = (
        GeminiScript().thought("Let me think.").text("One two three four").usage(prompt=5, candidates=8, thoughts=20)
    )
    usages = [response["usageMetadata"] for response in script.responses()]
    assert usages[0] == {
        "promptTokenCount": 5,
        "totalTokenCount": 25,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
        "thoughtsTokenCount": 20,
    }
    assert [u["candidatesTokenCount"] for u in usages[1:]] == [2, 4, 6, 8]
    assert usages[-1]["totalTokenCount"] == 5 + 8 + 20
    assert all(list(u) == sorted(u, key=list(usages[-1]).index) for u in usages)


def test_default_usage_counts_words_as_tokens() -> None:
    responses = GeminiScript(prompt="Say hello twice").text("hello hello").responses()
    assert responses[-1]["usageMetadata"]["promptTokenCount"] == 3
    assert responses[-1]["usageMetadata"]["candidatesTokenCount"] == 2
    assert "thoughtsTokenCount" not in responses[-1]["usageMetadata"]


def test_every_event_carries_usage_model_version_and_response_id_and_only_the_last_a_finish_reason() -> None:
    responses = GeminiScript("gemini-2.0-flash").text("a b c").function_call("f", {"x": 1}).finish("STOP").responses()
    assert all(list(r) == ["candidates", "usageMetadata", "modelVersion", "responseId"] for r in responses)
    assert {r["modelVersion"] for r in responses} == {"gemini-2.0-flash"}
    assert len({r["responseId"] for r in responses}) == 1 and len(responses[0]["responseId"]) == 23
    assert ["finishReason" in r["candidates"][0] for r in responses] == [False, False, False, True]
    assert responses[-1]["candidates"][0]["finishReason"] == "STOP"


def test_response_id_is_stable_across_runs_and_depends_on_content() -> None:
    def build(text: str) -> str:
        return GeminiScript().text(text).responses()[0]["responseId"]

    assert build("hi there") == build("hi there") != build("hi you")
    assert GeminiScript(response_id="abc").text("x").responses()[0]["responseId"] == "abc"


@given(st.text(max_size=60))
def test_word_deltas_join_back_to_the_text(text: str) -> None:
    responses = GeminiScript().text(text).responses()
    deltas = [r["candidates"][0]["content"]["parts"][0]["text"] for r in responses]
    assert "".join(deltas) == text
    assert all(delta.strip() or delta == text for delta in deltas)  # whitespace never forms its own event


def test_words_per_event_and_whole_text() -> None:
    assert len(GeminiScript().text("a b c d e", words=2).responses()) == 3
    assert len(GeminiScript().text("a b c d e", words=None).responses()) == 1
    with pytest.raises(ValueError):
        GeminiScript().text("a", words=0)


def test_function_call_shape_with_id_and_signature() -> None:
    response = (
        GeminiScript("gemini-3-flash-preview")
        .function_call("sum", {"a": 2, "b": 3}, id="3ae8iwca", signature="EukB")
        .responses()[0]
    )
    assert response["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "sum", "args": {"a": 2, "b": 3}, "id": "3ae8iwca"}, "thoughtSignature": "EukB"}
    ]


def test_finish_alone_is_one_event_without_content() -> None:
    responses = GeminiScript().finish("SAFETY").responses()
    assert responses[0]["candidates"] == [{"finishReason": "SAFETY", "index": 0}]


def test_finish_none_leaves_the_stream_unfinished() -> None:
    responses = GeminiScript().text("cut").finish(None).responses()
    assert "finishReason" not in responses[-1]["candidates"][0]
    assert GeminiScript().finish(None).responses() == []


def test_google_genai_parses_every_scripted_event() -> None:
    script = (
        GeminiScript("gemini-2.5-flash")
        .thought("**Planning**\n\nCall the tool.")
        .text("Checking the weather in Paris.")
        .function_call("get_weather", {"city": "Paris"}, id="c1")
        .usage(prompt=7, candidates=10, thoughts=4)
    )
    parsed = [
        types.GenerateContentResponse._from_response(response=json.loads(event[len(b"data: ") :]), kwargs={})
        for event in script.events()
    ]
    assert parsed[0].candidates[0].content.parts[0].thought is True
    assert "".join(p.text or "" for p in parsed[1:-1]) == "Checking the weather in Paris."
    assert parsed[-1].function_calls[0].name == "get_weather"
    assert parsed[-1].function_calls[0].args == {"city": "Paris"}
    assert parsed[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert parsed[-1].usage_metadata.total_token_count == 21
    assert all(p.response_id == parsed[0].response_id for p in parsed)


def test_our_gemini_layer_merges_the_scripted_stream_back_into_the_text() -> None:
    text = "Hello world, this is a scripted stream.\n\nWith two paragraphs and café ☕."
    exchange = GeminiScript().thought("Hmm.").text(text).usage(prompt=3).to_exchange()
    merged = merge_responses(iter_responses(chunk.data for chunk in exchange.chunks), strict=True)
    parts = merged.candidates[0].content.parts
    assert [(p.text, p.thought) for p in parts] == [("Hmm.", True), (text, None)]
    assert merged.candidates[0].finish_reason == "STOP"


def test_error_is_sent_raw_after_the_events_and_raised_by_our_layer() -> None:
    script = GeminiScript().text("Okay").finish(None).error(503, "UNAVAILABLE", "The model is overloaded.")
    pieces = script.events()
    assert (
        pieces[-1] == b'{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded.",\n'
        b'    "status": "UNAVAILABLE"\n  }\n}\n'
    )
    seen = []
    with pytest.raises(ServerError):
        for response in iter_responses(pieces):
            seen.append(response)
    assert len(seen) == 1


def test_to_exchange_is_timed_by_pace_with_the_request_and_sse_headers() -> None:
    exchange = GeminiScript("gemini-2.5-flash", prompt="Hi").text("a b c").to_exchange(pace=0.25)
    assert [chunk.t for chunk in exchange.chunks] == [0.25, 0.5, 0.75]
    assert exchange.head_t == 0.0 and exchange.timed
    assert exchange.headers == [("Content-Type", "text/event-stream"), ("Content-Disposition", "attachment")]
    assert exchange.request is not None
    assert exchange.request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert exchange.request.query == "alt=sse"
    assert json.loads(exchange.request.body) == {"contents": [{"parts": [{"text": "Hi"}], "role": "user"}]}
    default = GeminiScript().text("a b").to_exchange()
    assert [chunk.t for chunk in default.chunks] == [DEFAULT_PACE, 2 * DEFAULT_PACE]
    untimed = GeminiScript().text("a b").to_exchange(pace=None)
    assert not untimed.timed and untimed.head_t is None


def test_save_writes_a_recorded_fixture_that_loads_back(tmp_path: Path) -> None:
    script = GeminiScript().text("Saved and loaded.")
    script.save(tmp_path / "s.jsonl")
    fixture = load_fixture(tmp_path / "s.jsonl")
    assert fixture == script.to_fixture()
    assert fixture.exchanges[0].body == b"".join(script.events())


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.text(min_size=1, max_size=30)),
        st.tuples(st.just("thought"), st.text(min_size=1, max_size=30)),
        st.tuples(
            st.just("call"),
            st.dictionaries(st.text(max_size=4), st.integers(-(2**53), 2**53) | st.text(max_size=4), max_size=3),
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(_steps)
def test_any_script_is_parsed_by_google_genai_and_merged_back_by_our_layer(steps: list[tuple[str, Any]]) -> None:
    script = GeminiScript()
    for kind, value in steps:
        if kind == "text":
            script.text(value)
        elif kind == "thought":
            script.thought(value)
        else:
            script.function_call("tool", value)
    events = script.events()
    for event in events:
        types.GenerateContentResponse._from_response(response=json.loads(event[6:]), kwargs={})
    merged = merge_responses(iter_responses(events), strict=True)
    parts = merged.candidates[0].content.parts
    answer = "".join(p.text for p in parts if p.text is not None and not p.thought)
    assert answer == "".join(value for kind, value in steps if kind == "text")
    assert [p.function_call.args for p in parts if p.function_call] == [v for k, v in steps if k == "call"]
