"""Streamed responses are typed lazily; these prove the laziness never shows: assigned candidates win over the
decoded JSON, a non-object event still fails where it arrives, and the decoder's merger, caught up on demand,
equals merging what was yielded."""

from __future__ import annotations

import pathlib

import pytest

from sse_toolkit import (
    Candidate,
    Content,
    GeminiDecodeError,
    Part,
    ResponseDecoder,
    iter_responses,
    merge_responses,
)

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def test_assigned_candidates_are_what_text_reads_on_a_streamed_response() -> None:
    response = next(iter_responses([(DATA / "text-stop.sse").read_bytes()]))
    assert response.text == "The"
    response.candidates = [Candidate(content=Content(parts=[Part(text="replaced")], role="model"))]
    assert response.text == "replaced"
    assert response.to_dict()["candidates"][0]["content"]["parts"] == [{"text": "replaced"}]


@pytest.mark.parametrize("event", [b'"abc"', b"[1, 2]", b"7", b"null"])
def test_an_event_that_is_json_but_no_object_fails_where_it_arrives(event: bytes) -> None:
    good = (DATA / "text-stop.sse").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    seen = []
    with pytest.raises(GeminiDecodeError):
        for response in iter_responses([good, b"data: " + event + b"\r\n\r\n"]):
            seen.append(response)
    assert [r.text for r in seen] == ["The"]


@pytest.mark.parametrize(
    "name", ["text-stop.sse", "thinking-thoughts.sse", "function-call-parallel-gemini3.sse"]
)
def test_the_decoders_merger_mid_stream_equals_merging_what_was_yielded(name: str) -> None:
    body = (DATA / name).read_bytes()
    decoder = ResponseDecoder()
    yielded = []
    for i in range(0, len(body), 97):
        yielded += decoder.feed(body[i : i + 97])
        if yielded:
            assert decoder.merger.result().to_dict() == merge_responses(yielded).to_dict()
    yielded += decoder.close()
    assert decoder.merger.result().to_dict() == merge_responses(yielded).to_dict()
