"""The OpenAI-compatible shapes made from Gemini fixtures (sse_toolkit.replay._openai) read back as they
should: by the project's own compatibility parser (iter_chat_chunks / merge_chat_chunks), for any chunking,
and as Gemini's compatibility layer writes them (sorted compact JSON, finish reasons, usage when asked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _frameworks import FIXTURES, STORY, fixture_responses
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit import ClientError, ServerError, iter_chat_chunks, merge_chat_chunks
from sse_toolkit.replay._openai import (
    DONE_EVENT,
    ChatFinishReason,
    ChatRequestError,
    OpenAIRoute,
    chat_chunks,
    chat_completion,
    chat_error,
    chat_error_from_gemini,
    encode_chat_error_event,
    encode_chat_stream,
    finish_reason,
    gemini_request,
    model_object,
    models_list,
    parse_chat_request,
    parse_openai_path,
    request_key,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def _capture(name: str) -> list[dict[str, object]]:
    body = (DATA / name).read_bytes()
    return [
        json.loads(line[len(b"data: ") :]) for line in body.split(b"\r\n\r\n") if line.startswith(b"data: ")
    ]


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_the_cat_story_streams_as_chunks_with_role_text_one_finish_and_done() -> None:
    responses = fixture_responses("cats.jsonl")
    chunks = chat_chunks(responses, model="gemini-2.0-flash", created=1700000000)
    assert [c["choices"][0]["delta"]["role"] for c in chunks] == ["assistant", "assistant"]
    assert [c["choices"][0].get("finish_reason") for c in chunks] == [None, "stop"]
    assert {c["id"] for c in chunks} == {responses[0]["responseId"]}
    assert all("usage" not in c for c in chunks)  # not asked for
    body = b"".join(encode_chat_stream(chunks))
    assert body.endswith(b"\n\n" + DONE_EVENT)
    for pieces in ([body], _bytewise(body)):
        result = merge_chat_chunks(iter_chat_chunks(pieces))
        assert (result.text, result.finish_reason, result.model, result.usage) == (
            STORY,
            "stop",
            "gemini-2.0-flash",
            None,
        )


def test_the_wire_is_compact_json_with_sorted_keys_and_raw_utf8() -> None:
    responses = _capture("text-long-utf8.sse")
    events = encode_chat_stream(chat_chunks(responses, model="gemini-2.5-flash"))
    first = events[0]
    assert first.startswith(b'data: {"choices":[{"delta":{"content":"The capital of Poland')
    assert b'"created":0,"id":"4SawaZC7Oojp7M8P7KjSyAc","model":"gemini-2.5-flash"' in first
    assert first.endswith(b'"object":"chat.completion.chunk"}\n\n')
    wire = b"".join(events)
    assert b"\\u" not in wire and max(wire) >= 0x80  # non-ASCII text goes out as raw UTF-8
    text = merge_chat_chunks(iter_chat_chunks(events)).text
    assert text == "".join(p["text"] for r in responses for p in r["candidates"][0]["content"]["parts"])


def test_usage_rides_on_the_last_chunk_only_when_the_request_asks() -> None:
    chunks = chat_chunks(fixture_responses("cats.jsonl"), model="gemini-2.0-flash", include_usage=True)
    assert "usage" not in chunks[0]
    assert chunks[-1]["usage"] == {"completion_tokens": 42, "prompt_tokens": 7, "total_tokens": 49}
    assert merge_chat_chunks(iter_chat_chunks(encode_chat_stream(chunks))).usage == chunks[-1]["usage"]


def test_thinking_tokens_count_as_completion_and_thoughts_are_not_content() -> None:
    responses = fixture_responses("weather-tool.jsonl")
    chunks = chat_chunks(responses, model="gemini-2.5-flash", include_usage=True)
    result = merge_chat_chunks(iter_chat_chunks(encode_chat_stream(chunks)))
    assert result.text == "Let me look that up for you."  # the thought part is left out
    assert result.usage == {
        "completion_tokens": 45,
        "completion_tokens_details": {"reasoning_tokens": 31},
        "prompt_tokens": 9,
        "total_tokens": 54,
    }


def test_a_function_call_becomes_a_tool_call_with_an_id_and_finish_reason_tool_calls() -> None:
    chunks = chat_chunks(fixture_responses("weather-tool.jsonl"), model="gemini-2.5-flash")
    result = merge_chat_chunks(iter_chat_chunks(encode_chat_stream(chunks)))
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        {
            "function": {"arguments": '{"city":"Paris"}', "name": "get_weather"},
            "id": "call_0",
            "type": "function",
        }
    ]


def test_parallel_function_calls_keep_their_ids_and_get_indexes_in_order() -> None:
    responses = _capture("function-call-parallel-gemini3.sse")
    chunks = chat_chunks(responses, model="gemini-3-flash-preview")
    calls = [
        call for c in chunks for choice in c["choices"] for call in choice["delta"].get("tool_calls", [])
    ]
    assert [call["index"] for call in calls] == [0, 1, 2]
    wanted = [
        part["functionCall"]
        for r in responses
        for part in r["candidates"][0]["content"]["parts"]
        if "functionCall" in part
    ]
    assert [call["id"] for call in calls] == [w["id"] for w in wanted]
    assert [json.loads(call["function"]["arguments"]) for call in calls] == [w["args"] for w in wanted]
    unary = chat_completion(responses, model="gemini-3-flash-preview")
    assert unary["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["id"] for c in unary["choices"][0]["message"]["tool_calls"]] == [w["id"] for w in wanted]


@pytest.mark.parametrize(
    ("gemini", "calls", "openai"),
    [
        ("STOP", False, ChatFinishReason.STOP),
        ("STOP", True, ChatFinishReason.TOOL_CALLS),
        ("MAX_TOKENS", False, ChatFinishReason.LENGTH),
        ("SAFETY", False, ChatFinishReason.CONTENT_FILTER),
        ("RECITATION", False, ChatFinishReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", False, ChatFinishReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", False, ChatFinishReason.STOP),
        (None, False, None),
    ],
)
def test_finish_reasons_map_as_the_compatibility_layer_maps_them(
    gemini: str | None, calls: bool, openai: ChatFinishReason | None
) -> None:
    assert finish_reason(gemini, calls) == openai


def test_a_blocked_prompt_ends_the_choice_as_content_filter() -> None:
    responses = _capture("prompt-blocked-safety.sse")
    assert chat_chunks(responses, model="m")[0]["choices"] == [
        {"delta": {"role": "assistant"}, "finish_reason": "content_filter", "index": 0}
    ]
    assert chat_completion(responses, model="m")["choices"][0]["finish_reason"] == "content_filter"


def test_unary_is_one_chat_completion_with_the_whole_text_and_usage() -> None:
    responses = fixture_responses("cats.jsonl")
    body = chat_completion(responses, model="gemini-2.0-flash", created=5)
    assert body == {
        "choices": [
            {"finish_reason": "stop", "index": 0, "message": {"content": STORY, "role": "assistant"}}
        ],
        "created": 5,
        "id": responses[0]["responseId"],
        "model": "gemini-2.0-flash",
        "object": "chat.completion",
        "usage": {"completion_tokens": 42, "prompt_tokens": 7, "total_tokens": 49},
    }


def test_a_tool_call_only_answer_has_null_content() -> None:
    message = chat_completion(fixture_responses("weather-tool.jsonl"), model="m")["choices"][0]["message"]
    assert message["content"] == "Let me look that up for you."
    only_call = [r for r in fixture_responses("weather-tool.jsonl") if "functionCall" in json.dumps(r)]
    message = chat_completion(only_call, model="m")["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"]["name"] == "get_weather"


def test_several_candidates_become_several_choices() -> None:
    responses = _capture("multi-candidate.synthetic.sse")
    body = b"".join(encode_chat_stream(chat_chunks(responses, model="gemini-2.0-flash")))
    texts = [merge_chat_chunks(iter_chat_chunks([body]), choice=i).text for i in (0, 1)]
    unary = chat_completion(responses, model="gemini-2.0-flash")
    assert [c["message"]["content"] for c in unary["choices"]] == texts
    assert texts[0].startswith("Why did the") and texts[1].startswith("A")


@given(st.lists(st.text(min_size=1), min_size=1, max_size=8))
def test_any_text_deltas_survive_the_stream_and_the_unary_answer(texts: list[str]) -> None:
    responses = [
        {
            "candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}],
            "responseId": "r",
        }
        for t in texts
    ]
    responses[-1]["candidates"][0]["finishReason"] = "STOP"
    body = b"".join(encode_chat_stream(chat_chunks(responses, model="m")))
    assert merge_chat_chunks(iter_chat_chunks(_bytewise(body))).text == "".join(texts)
    assert chat_completion(responses, model="m")["choices"][0]["message"]["content"] == "".join(texts)


def test_the_error_body_is_the_stored_list_shape_and_parses_as_a_client_error() -> None:
    stored = (DATA / "openai-error-429.synthetic.json").read_bytes()
    error = chat_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
    assert json.dumps(error, indent=2).encode() + b"\n" == stored
    quota = load_quota_body()
    assert chat_error_from_gemini(quota)[0]["error"]["code"] == 429
    with pytest.raises(ClientError) as info:
        list(iter_chat_chunks([b"HTTP/1.1 429 Too Many Requests\r\n\r\n" + json.dumps(error).encode()]))
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")


def load_quota_body() -> bytes:
    return (FIXTURES / "quota-429.http").read_bytes().split(b"\r\n\r\n", 1)[1]


def test_an_error_inside_the_stream_raises_after_the_chunks_before_it() -> None:
    chunks = chat_chunks(fixture_responses("cats.jsonl"), model="m")
    event = encode_chat_error_event(chat_error(503, "UNAVAILABLE", "The model is overloaded."))
    assert (
        event
        == b'data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}\n\n'
    )
    got = []
    with pytest.raises(ServerError) as info:
        for item in iter_chat_chunks([*encode_chat_stream(chunks)[:-1], event]):
            got.append(item)
    assert len(got) == 2 and info.value.code == 503


def test_models_are_listed_as_the_compatibility_layer_lists_them() -> None:
    assert model_object("models/gemini-2.0-flash") == model_object("gemini-2.0-flash")
    assert models_list(["gemini-2.0-flash"]) == {
        "data": [{"created": 0, "id": "models/gemini-2.0-flash", "object": "model", "owned_by": "google"}],
        "object": "list",
    }


@pytest.mark.parametrize(
    ("path", "route", "model"),
    [
        ("/v1beta/openai/chat/completions", OpenAIRoute.CHAT_COMPLETIONS, None),
        ("/v1beta/openai/chat/completions/", OpenAIRoute.CHAT_COMPLETIONS, None),
        ("/v1beta/openai/models", OpenAIRoute.MODELS, None),
        ("/v1beta/openai/models/gemini-2.0-flash", OpenAIRoute.MODEL, "gemini-2.0-flash"),
        ("/v1beta/openai/models/models/gemini-2.0-flash", OpenAIRoute.MODEL, "gemini-2.0-flash"),
        ("/v1beta/openai/embeddings", OpenAIRoute.EMBEDDINGS, None),
        (
            "/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions",
            OpenAIRoute.CHAT_COMPLETIONS,
            None,
        ),
    ],
)
def test_compatibility_paths_parse(path: str, route: OpenAIRoute, model: str | None) -> None:
    parsed = parse_openai_path(path)
    assert parsed is not None and (parsed.route, parsed.model) == (route, model)


@pytest.mark.parametrize(
    "path",
    ["/v1beta/models/gemini-2.0-flash:generateContent", "/v1beta/openai/completions", "/openai/models", "/"],
)
def test_other_paths_are_not_compatibility_paths(path: str) -> None:
    assert parse_openai_path(path) is None


def test_a_chat_request_reads_as_the_gemini_request_it_stands_for() -> None:
    request = parse_chat_request(
        json.dumps(
            {
                "model": "models/gemini-2.0-flash",
                "stream": True,
                "stream_options": {"include_usage": True},
                "temperature": 0.2,
                "max_tokens": 100,
                "stop": "END",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_0",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
                "tool_choice": "required",
            }
        ).encode()
    )
    assert (request.model, request.stream, request.include_usage) == ("gemini-2.0-flash", True, True)
    assert request.gemini == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 100, "stopSequences": ["END"]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }


def test_the_quickstart_body_and_the_same_chat_request_have_one_key() -> None:
    recorded = json.loads(b'{ "contents":[{"parts":[{"text": "Write a cute story about cats."}]}]}')
    chat = gemini_request({"messages": [{"role": "user", "content": "Write a cute story about cats."}]})
    assert request_key(recorded) == request_key(chat)
    other = gemini_request({"messages": [{"role": "user", "content": "Write a sad story about cats."}]})
    assert request_key(other) != request_key(chat)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "'model'"),
        (b'{"model": "m", "messages": []}', "'messages'"),
        (b'{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}', "'stream'"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "robot"}]}',
            "messages[1].role",
        ),
        (b'{"model": "m", "messages": [{"role": "user", "content": 7}]}', "messages[0].content"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}',
            "messages[0].content[0]",
        ),
    ],
)
def test_a_bad_chat_request_is_refused_naming_the_field(body: bytes, names: str) -> None:
    with pytest.raises(ChatRequestError, match="chat request") as info:
        parse_chat_request(body)
    assert names in str(info.value)
