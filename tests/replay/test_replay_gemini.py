"""The replay server speaks the Gemini REST API as the real one does: routes, both stream formats, unary
answers, countTokens, models, keys, CORS, generic SSE and the matching rules (httpx as the client)."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

from sse_toolkit.fixture._builder import GeminiScript
from sse_toolkit.fixture._io import load_fixture
from sse_toolkit.fixture._model import (
    Chunk,
    End,
    Exchange,
    Fixture,
    RecordedRequest,
)
from sse_toolkit.gemini._merge import merge_responses
from sse_toolkit.gemini._stream import iter_responses
from sse_toolkit.gemini._wire import encode_json_array, encode_sse_event
from sse_toolkit.parser._parser import parse
from sse_toolkit.replay import ReplayServer
from sse_toolkit.server._loop import ReplayError

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
GEMINI_SSE = ["cats.sse", "function-call.sse", "midstream-error.sse", "thinking.sse", "wyoming.sse"]
STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"


def _objects(body: bytes) -> list[dict]:
    return [json.loads(event.data) for event in parse(body)]


@pytest.mark.parametrize("name", GEMINI_SSE)
def test_alt_sse_replays_the_recorded_bytes_exactly_with_the_api_headers(name: str) -> None:
    with ReplayServer(FIXTURES / name, speed=0) as server:
        response = httpx.post(server.url + STREAM + "?alt=sse", json={"contents": []})
    assert response.status_code == 200
    assert response.content == (FIXTURES / name).read_bytes()
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize(
    "query", ["", "?alt=json", "?%24alt=json%3Benum-encoding%3Dint", "?$alt=json;enum-encoding=int"]
)
def test_without_alt_sse_the_same_responses_stream_as_a_json_array(query: str) -> None:
    body = (FIXTURES / "wyoming.sse").read_bytes()
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0) as server:
        response = httpx.post(server.url + STREAM + query, json={})
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.content == b"".join(encode_json_array(_objects(body)))
    assert json.loads(response.content) == _objects(body)


def test_a_json_array_recording_is_exact_without_alt_and_converted_with_alt_sse() -> None:
    path = FIXTURES / "thinking-array.json"
    recorded = path.read_bytes()
    with ReplayServer(path, speed=0) as server:
        as_array = httpx.post(server.url + STREAM, json={})
        as_sse = httpx.post(server.url + STREAM + "?alt=sse", json={})
    assert as_array.content == recorded
    assert as_sse.headers["content-type"] == "text/event-stream"
    assert as_sse.content == b"".join(encode_sse_event(obj) for obj in json.loads(recorded))


def test_generate_content_answers_the_merged_stream_pretty_printed() -> None:
    path = FIXTURES / "thinking.sse"
    with ReplayServer(path, speed=0) as server:
        response = httpx.post(server.url + "/v1/models/gemini-2.5-flash:generateContent", json={})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.content.startswith(b'{\n  "candidates": [\n')
    expected = merge_responses(iter_responses([path.read_bytes()])).to_dict()
    assert response.json() == expected


def test_generate_content_of_a_stream_that_failed_answers_its_error_status() -> None:
    with ReplayServer(FIXTURES / "midstream-error.sse", speed=0) as server:
        response = httpx.post(server.url + "/v1beta/models/gemini-2.0-flash:generateContent", json={})
    assert response.status_code == 503
    assert response.json()["error"]["status"] == "UNAVAILABLE"


def test_count_tokens_is_the_prompt_token_count_of_the_recorded_usage() -> None:
    body = (FIXTURES / "wyoming.sse").read_bytes()
    usage = _objects(body)[-1]["usageMetadata"]
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0) as server:
        response = httpx.post(server.url + "/v1beta/models/gemini-2.0-flash:countTokens", json={})
    assert response.json()["totalTokens"] == usage["promptTokenCount"]
    assert response.json()["promptTokensDetails"] == usage["promptTokensDetails"]


def test_models_lists_the_models_the_fixtures_name_with_their_token_limits() -> None:
    with ReplayServer(FIXTURES, speed=0) as server:
        listing = httpx.get(server.url + "/v1beta/models").json()
        one = httpx.get(server.url + "/v1/models/gemini-2.0-flash")
    names = [m["name"] for m in listing["models"]]
    assert "models/gemini-2.0-flash" in names and "models/gemini-2.5-flash" in names
    assert names == sorted(names)
    assert all(m["inputTokenLimit"] > m["outputTokenLimit"] > 0 for m in listing["models"])
    assert one.json()["name"] == "models/gemini-2.0-flash"
    assert (one.json()["inputTokenLimit"], one.json()["outputTokenLimit"]) == (1_048_576, 8_192)


@pytest.mark.parametrize(
    ("source", "model", "status"),
    [
        # cats.sse names no model: generation answers any model with it, so the lookup does too
        (["cats.sse", "wyoming.sse"], "no-such-model", 200),
        (["thinking.sse", "wyoming.sse"], "no-such-model", 404),
        (["thinking.sse", "wyoming.sse"], "gemini-2.0-flash", 200),
        (["thinking.sse", "wyoming.sse"], "gemini-2.5", 200),  # gemini-2.5-flash by its prefix
        (["thinking.sse", "wyoming.sse"], "wyoming", 200),  # by file name
        (["thinking.sse", "wyoming.sse"], "wyoming.sse", 200),
        (["thinking.sse"], "any-model-at-all", 200),  # a single fixture answers every model
    ],
)
def test_a_model_lookup_answers_as_generation_does(source: list[str], model: str, status: int) -> None:
    with ReplayServer([FIXTURES / name for name in source], speed=0) as server:
        lookup = httpx.get(f"{server.url}/v1beta/models/{model}")
        generation = httpx.post(f"{server.url}/v1beta/models/{model}:generateContent", json={})
    assert lookup.status_code == generation.status_code == status
    if status == 200:
        assert lookup.json()["name"] == f"models/{model}" and lookup.json()["inputTokenLimit"] > 0


def test_require_key_answers_the_real_403_and_400_bodies() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, require_key="secret") as server:
        missing = httpx.post(server.url + STREAM + "?alt=sse", json={})
        wrong = httpx.post(server.url + STREAM + "?alt=sse&key=nope", json={})
        by_query = httpx.post(server.url + STREAM + "?alt=sse&key=secret", json={})
        by_header = httpx.post(
            server.url + STREAM + "?alt=sse", json={}, headers={"x-goog-api-key": "secret"}
        )
    assert missing.status_code == 403
    assert missing.json() == {
        "error": {
            "code": 403,
            "message": "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
            "status": "PERMISSION_DENIED",
        }
    }
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert (error["status"], error["message"]) == (
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    )
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert by_query.status_code == by_header.status_code == 200


def test_require_key_true_accepts_any_key() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, require_key=True) as server:
        assert httpx.post(server.url + STREAM + "?alt=sse", json={}).status_code == 403
        assert httpx.post(server.url + STREAM + "?alt=sse&key=anything", json={}).status_code == 200


def test_cors_preflight_and_allow_origin_on_every_response() -> None:
    origin = "http://127.0.0.1:9999"
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, require_key=True) as server:
        preflight = httpx.request(
            "OPTIONS",
            server.url + STREAM + "?alt=sse",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-goog-api-key",
            },
        )
        answer = httpx.post(server.url + STREAM + "?alt=sse&key=k", json={}, headers={"Origin": origin})
        denied = httpx.post(server.url + STREAM + "?alt=sse", json={}, headers={"Origin": origin})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type,x-goog-api-key"
    assert answer.headers["access-control-allow-origin"] == origin
    assert denied.headers["access-control-allow-origin"] == origin  # so that a page can read the error


def test_get_is_allowed_on_the_stream_endpoint() -> None:
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0) as server:
        response = httpx.get(server.url + STREAM + "?alt=sse&key=k")
    assert response.content == (FIXTURES / "wyoming.sse").read_bytes()


def test_generic_sse_is_served_on_any_other_path() -> None:
    body = (FIXTURES / "ticker.sse").read_bytes()
    with ReplayServer(FIXTURES / "ticker.sse", speed=0) as server:
        response = httpx.get(server.url + "/stream/anything")
    assert response.content == body
    assert response.headers["content-type"].startswith("text/event-stream")
    with ReplayServer(FIXTURES, speed=0) as server:
        assert httpx.get(server.url + "/ticker").content == body  # picked by file name


def test_a_directory_matches_by_model_then_prefers_a_clean_stream(tmp_path: pathlib.Path) -> None:
    # The plain bodies of the fixture set (none recorded with its request: matched by their bodies' models)
    for name in ("cats.sse", "midstream-error.sse", "thinking.sse", "thinking-array.json", "wyoming.sse"):
        (tmp_path / name).write_bytes((FIXTURES / name).read_bytes())
    with ReplayServer(tmp_path, speed=0) as server:
        flash20 = httpx.post(server.url + STREAM + "?alt=sse", json={})
        by_name = httpx.post(server.url + "/v1beta/models/cats:streamGenerateContent?alt=sse", json={})
        versioned = httpx.post(
            server.url + "/v1beta/models/gemini-2.5:streamGenerateContent?alt=sse", json={}
        )
    # wyoming.sse and midstream-error.sse both name gemini-2.0-flash: the one without an error wins
    assert flash20.content == (FIXTURES / "wyoming.sse").read_bytes()
    assert by_name.content == (FIXTURES / "cats.sse").read_bytes()
    assert versioned.status_code == 200 and _objects(versioned.content)[0]["modelVersion"].startswith(
        "gemini-2.5"
    )


def test_an_unmatched_request_gets_a_404_naming_it_and_what_is_available() -> None:
    script = GeminiScript("gemini-2.5-flash").text("hi").to_fixture()
    with ReplayServer([script, FIXTURES / "wyoming.sse"], speed=0) as server:
        response = httpx.post(
            server.url + "/v1beta/models/gemini-9-ultra:streamGenerateContent?alt=sse", json={}
        )
    assert response.status_code == 404
    error = response.json()["error"]
    assert "gemini-9-ultra" in error["message"]
    assert error["request"]["path"] == "/v1beta/models/gemini-9-ultra:streamGenerateContent"
    available = {model for entry in error["available"] for model in entry.get("models", [])}
    assert {"gemini-2.5-flash", "gemini-2.0-flash"} <= available


def test_the_recorded_request_body_picks_among_fixtures_of_one_model() -> None:
    def fixture(prompt: str, answer: str) -> Fixture:
        return GeminiScript("gemini-2.5-flash", prompt=prompt).text(answer).to_fixture()

    with ReplayServer([fixture("cats?", "Meow."), fixture("dogs?", "Woof.")], speed=0) as server:
        url = server.url + "/v1beta/models/gemini-2.5-flash:generateContent"
        for prompt, answer in [("dogs?", "Woof."), ("cats?", "Meow.")]:
            body = {"contents": [{"parts": [{"text": prompt}], "role": "user"}]}
            merged = httpx.post(url, json=body).json()
            assert merged["candidates"][0]["content"]["parts"][0]["text"] == answer


def test_several_exchanges_are_served_in_order_and_the_last_repeats() -> None:
    exchanges = [
        GeminiScript("gemini-2.5-flash").text(f"answer {n}", words=None).to_exchange() for n in (1, 2)
    ]
    with ReplayServer(Fixture(exchanges), speed=0) as server:
        texts = [
            _objects(httpx.post(server.url + STREAM + "?alt=sse", json={}).content)[0]["candidates"][0][
                "content"
            ]["parts"][0]["text"]
            for _ in range(3)
        ]
    assert texts == ["answer 1", "answer 2", "answer 2"]


def test_a_recorded_error_status_is_replayed_with_its_status_and_body() -> None:
    fixture = load_fixture(FIXTURES / "quota-429.http")
    with ReplayServer(fixture, speed=0) as server:
        response = httpx.post(server.url + STREAM + "?alt=sse", json={})
    assert response.status_code == 429
    assert response.content == fixture.exchanges[0].body
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_a_recorded_break_is_replayed_as_an_abrupt_close() -> None:
    exchange = Exchange(
        request=RecordedRequest("POST", STREAM, "alt=sse"),
        headers=[("Content-Type", "text/event-stream")],
        chunks=[Chunk(b'data: {"candidates": []}\r\n\r\n', 0.0)],
        end=End.RESET,
    )
    received = b""
    with ReplayServer(exchange, speed=0) as server:
        with (
            pytest.raises(httpx.TransportError),
            httpx.stream("POST", server.url + STREAM + "?alt=sse") as response,
        ):
            for chunk in response.iter_raw():
                received += chunk
        assert received == exchange.body
        server.check()


def test_a_gemini_script_is_served_directly() -> None:
    script = GeminiScript("gemini-2.5-flash").text("Hello there world")
    with ReplayServer(script, speed=0) as server:
        body = httpx.post(
            server.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json={}
        ).content
    assert body == b"".join(script.events())


def test_bad_sources_raise_replay_or_fixture_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ReplayError, match="no fixture files"):
        ReplayServer(tmp_path)
    with pytest.raises(ReplayError, match="cannot serve"):
        ReplayServer(42)
    with pytest.raises(FileNotFoundError):
        ReplayServer(tmp_path / "missing.sse")
