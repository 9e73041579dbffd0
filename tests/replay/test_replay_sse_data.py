"""The replay server reads the data of a recorded SSE event as a browser does (one space after ``data:``
is dropped, no more), so the forms it derives (the JSON array, the unary answer) hold the recorded
objects whatever the spacing of the data lines."""

from __future__ import annotations

import json
import pathlib

import httpx

from sse_toolkit.gemini import iter_responses, merge_responses
from sse_toolkit.parser import parse
from sse_toolkit.replay import ReplayServer

STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
UNARY = "/v1beta/models/gemini-2.0-flash:generateContent"


def _response(text: str, finish: bool = False) -> dict[str, object]:
    candidate: dict[str, object] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "modelVersion": "gemini-2.0-flash"}


def _write(tmp_path: pathlib.Path, body: bytes) -> pathlib.Path:
    path = tmp_path / "spaced.sse"
    path.write_bytes(body)
    return path


def test_data_values_starting_with_two_spaces_are_served_as_the_recorded_objects(
    tmp_path: pathlib.Path,
) -> None:
    first, last = _response("Hello"), _response(" world", finish=True)
    # The data value of each event starts with a space (after the one the spec drops), and the second
    # event's JSON is spread over data lines that each start with two spaces.
    spread = json.dumps(last, indent=1).replace("\n", "\r\ndata:  ")
    body = f"data:  {json.dumps(first)}\r\n\r\ndata:  {spread}\r\n\r\n".encode()
    assert all(event.data.startswith(" ") for event in parse(body))
    path = _write(tmp_path, body)
    with ReplayServer(path, speed=0) as server:
        as_array = httpx.post(server.url + STREAM, json={})
        unary = httpx.post(server.url + UNARY, json={})
        as_sse = httpx.post(server.url + STREAM + "?alt=sse", json={})
    assert as_array.status_code == 200
    assert as_array.json() == [first, last]
    assert unary.json() == merge_responses(iter_responses([body])).to_dict()
    assert unary.json()["candidates"][0]["content"]["parts"][0]["text"] == "Hello world"
    assert as_sse.content == body  # the recorded form is still served byte for byte
