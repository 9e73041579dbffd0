"""Typed objects give back the API's exact JSON, and our encoder reproduces every capture byte for byte."""

from __future__ import annotations

import pathlib

import orjson
import pytest

import sse_toolkit
from sse_toolkit import (
    GenerateContentResponse,
    dumps_api_style,
    encode_json_array,
    encode_sse_event,
    error_body,
    iter_responses,
)

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
SSE_CAPTURES = sorted(path.name for path in DATA.glob("*.sse") if not path.name.startswith("openai"))


@pytest.mark.parametrize("name", SSE_CAPTURES)
def test_re_encoding_each_sse_capture_reproduces_it_byte_for_byte(name: str) -> None:
    data = (DATA / name).read_bytes()
    responses: list[GenerateContentResponse] = []
    try:
        responses.extend(iter_responses([data]))
    except sse_toolkit.ServerError:
        assert name == "error-midstream-503.sse"
    encoded = b"".join(encode_sse_event(response) for response in responses)
    if name == "error-midstream-503.sse":
        # The error that follows the events is the API's pretty error body, raw, as error_body() writes it.
        encoded += error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    assert encoded == data


@pytest.mark.parametrize("name", SSE_CAPTURES)
def test_typed_objects_round_trip_to_the_same_json_with_the_same_key_order(name: str) -> None:
    for event in sse_toolkit.parse((DATA / name).read_bytes()):
        raw = orjson.loads(event.data)
        if "error" in raw:
            continue
        response = GenerateContentResponse.from_dict(raw)
        assert orjson.dumps(response.to_dict()) == orjson.dumps(raw)
        assert dumps_api_style(response) == event.data.encode()


def test_re_encoding_the_json_array_capture_reproduces_it_byte_for_byte() -> None:
    data = (DATA / "text-thinking.jsonarray").read_bytes()
    responses = list(iter_responses([data]))
    chunks = encode_json_array(responses)
    assert len(chunks) == 3
    assert chunks[0].startswith(b"[{") and chunks[1].startswith(b"\n,\r\n{") and chunks[-1].endswith(b"}\n]")
    assert b"".join(chunks) == data
    # Each chunk completes exactly one object.
    decoder = sse_toolkit.ResponseDecoder()
    assert [len(decoder.feed(chunk)) for chunk in chunks] == [1, 1, 1]


def test_error_body_reproduces_the_429_capture() -> None:
    data = (DATA / "error-429-quota.json").read_bytes()
    error = orjson.loads(data)["error"]
    assert error_body(error["code"], error["status"], error["message"], error["details"]) == data


def test_unknown_fields_are_kept_where_they_were() -> None:
    raw = {
        "candidates": [
            {
                "content": {"parts": [{"text": "hi", "newPartField": {"x": 1}}], "role": "model"},
                "futureField": [1, 2],
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "modelStatus": {"modelStage": "PREVIEW"},
        "usageMetadata": {"promptTokenCount": 1, "trafficType": "ON_DEMAND"},
    }
    response = GenerateContentResponse.from_dict(raw)
    assert response.extra == {"modelStatus": {"modelStage": "PREVIEW"}}
    assert response.candidates is not None and response.candidates[0].extra == {"futureField": [1, 2]}
    assert list(response.to_dict()) == list(raw)
    assert list(response.to_dict()["candidates"][0]) == ["content", "futureField", "finishReason", "index"]
    assert orjson.dumps(response.to_dict()) == orjson.dumps(raw)


def test_snake_case_attributes_and_conveniences() -> None:
    (first, *_) = iter_responses([(DATA / "function-call-parallel-gemini3.sse").read_bytes()])
    candidate = first.candidates[0]  # type: ignore[index]
    part = candidate.content.parts[0]  # type: ignore[union-attr,index]
    assert part.function_call is not None and part.function_call.args == {"b": 3, "a": 2}
    assert part.thought_signature is not None and part.thought_signature.startswith("EukBCuYB")
    usage = first.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (
        161,
        16,
        45,
    )
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details[0].modality == "TEXT"
    assert first.model_version == "gemini-3-flash-preview" and first.response_id == "aiS5abqwJJf7nsEPuIy3wQQ"
    assert first.text is None and first.thoughts is None
    assert [call.id for call in first.function_calls or ()] == ["3ae8iwca"]


def test_objects_built_in_code_serialise_in_the_api_field_order() -> None:
    part = sse_toolkit.Part(thought_signature="c2ln", text="x", thought=True)
    assert list(part.to_dict()) == ["text", "thought", "thoughtSignature"]
    response = GenerateContentResponse(
        response_id="r",
        candidates=[
            sse_toolkit.Candidate(index=0, finish_reason="STOP", content=sse_toolkit.Content(parts=[part]))
        ],
        usage_metadata=sse_toolkit.UsageMetadata(total_token_count=3, prompt_token_count=1),
    )
    assert dumps_api_style(response) == (
        b'{"candidates": [{"content": {"parts": [{"text": "x","thought": true,"thoughtSignature": "c2ln"}]},'
        b'"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 1,"totalTokenCount": 3},'
        b'"responseId": "r"}'
    )
