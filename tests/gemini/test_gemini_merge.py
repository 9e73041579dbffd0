"""Merging a stream gives the response unary generateContent returns: text runs joined per kind, tool parts
whole and in order, the last usage/model/id, candidates by index; step by step or at the end."""

from __future__ import annotations

import pathlib

import pytest

from sse_toolkit import (
    GenerateContentResponse,
    PromptBlockedError,
    ResponseMerger,
    TruncatedStreamError,
    check_finished,
    iter_responses,
    merge_responses,
)

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def _responses(name: str) -> list[GenerateContentResponse]:
    return list(iter_responses([(DATA / name).read_bytes()]))


def test_text_deltas_merge_into_one_part_with_the_last_usage_and_finish() -> None:
    merged = merge_responses(_responses("text-stop.sse"), strict=True).to_dict()
    assert merged == {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "The capital of Wyoming is **Cheyenne**.\n"}],
                    "role": "model",
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 7,
            "candidatesTokenCount": 10,
            "totalTokenCount": 17,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
            "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
        },
        "modelVersion": "gemini-2.0-flash",
    }


def test_thoughts_and_answer_stay_two_parts_and_a_late_signature_joins_the_answer() -> None:
    merged = merge_responses(_responses("text-thinking.jsonarray"), strict=True)
    parts = merged.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert [(part.thought, part.text[:13]) for part in parts] == [(True, "**Considering"), (None, "Scoop")]  # type: ignore[index]
    assert parts[1].thought_signature is not None and parts[1].thought_signature.startswith("Eq0JCqoJ")
    assert merged.usage_metadata is not None and merged.usage_metadata.thoughts_token_count == 291
    assert merged.response_id == "IopyaseNCL-s-8YP7urOoAY"


def test_function_calls_and_code_parts_are_kept_whole_and_in_order() -> None:
    merged = merge_responses(_responses("function-call-parallel-gemini3.sse"), strict=True)
    parts = merged.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert [part.function_call.id if part.function_call else repr(part.text) for part in parts] == [
        "3ae8iwca",
        "up3kf30e",
        "ycroch25",
        "''",
    ]
    assert parts[0].thought_signature is not None  # stays on its call

    code = merge_responses(_responses("code-execution.sse"), strict=True)
    kinds = [
        "text" if p.text is not None else "code" if p.executable_code else "result"
        for p in code.candidates[0].content.parts  # type: ignore[index,union-attr]
    ]
    assert kinds == ["text", "code", "result", "text"]
    assert code.usage_metadata is not None and code.usage_metadata.tool_use_prompt_token_count == 243


def test_candidates_merge_by_index() -> None:
    merged = merge_responses(_responses("multi-candidate.synthetic.sse"), strict=True)
    texts = [
        (c.index, c.finish_reason, "".join(p.text or "" for p in c.content.parts))  # type: ignore[union-attr]
        for c in merged.candidates or ()
    ]
    assert texts == [
        (0, "STOP", "Why did the scarecrow win an award? Because he was outstanding in his field!"),
        (1, "STOP", "A pun a day keeps the doctor away."),
    ]


def test_merger_is_usable_mid_stream_and_never_changes_its_inputs() -> None:
    responses = _responses("thinking-thoughts.sse")
    before = [r.to_dict() for r in responses]
    merger = ResponseMerger()
    texts = []
    for response in responses:
        merger.add(response)
        texts.append(merger.result().text)
    assert texts[:3] == [None, None, None]
    assert texts[3] is not None and texts[4] is not None and texts[4].startswith(texts[3])
    assert merger.count == 5
    assert [r.to_dict() for r in responses] == before
    assert merger.result().to_dict() == merge_responses(responses).to_dict()


def test_nothing_is_lost_text_parts_with_unknown_fields_stay_separate() -> None:
    a = GenerateContentResponse.from_dict({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})
    b = GenerateContentResponse.from_dict(
        {"candidates": [{"content": {"parts": [{"text": "b", "newField": 1}]}}]}
    )
    c = GenerateContentResponse.from_dict(
        {"candidates": [{"content": {"parts": [{"text": "c"}]}, "finishReason": "STOP"}]}
    )
    parts = merge_responses([a, b, c]).to_dict()["candidates"][0]["content"]["parts"]
    assert parts == [{"text": "a"}, {"text": "b", "newField": 1}, {"text": "c"}]


def test_check_finished_raises_for_blocked_and_truncated() -> None:
    with pytest.raises(PromptBlockedError, match="prompt blocked: SAFETY"):
        check_finished(merge_responses(_responses("prompt-blocked-safety.sse")))
    with pytest.raises(TruncatedStreamError):
        check_finished(merge_responses(_responses("text-stop.sse")[:2]))
    with pytest.raises(TruncatedStreamError, match="before any candidate"):
        merge_responses([], strict=True)
