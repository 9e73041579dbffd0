"""Scenario scripts: what each step sends (over real sockets, read with httpx), step validation, files."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

from sse_toolkit import ReplayError, parse
from sse_toolkit.replay import ReplayServer
from sse_toolkit.replay._scenario import load_script, parse_steps

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
WYOMING = FIXTURES / "wyoming.sse"
PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"


def _post(server: ReplayServer) -> httpx.Response:
    return httpx.post(server.url + PATH, json={"contents": []})


def test_steps_are_served_in_order_and_the_last_repeats() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.script({"status": 500}, {"status": 503}, "ok")
        assert [_post(server).status_code for _ in range(5)] == [500, 503, 200, 200, 200]
        assert [e.step for e in server.requests] == [0, 1, 2, 2, 2]
        assert [e.step_text for e in server.requests][:3] == ["status=500", "status=503", "ok"]


def test_a_429_step_sends_retry_delay_exactly_and_retry_after_rounded_up() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.script({"status": 429, "retry_after": 0.5}, {"status": 429, "retry_after": 2})
        first, second = _post(server), _post(server)
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    details = first.json()["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.500s"} in details
    assert first.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert second.headers["retry-after"] == "2"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"} in second.json()[
        "error"
    ]["details"]


def test_truncate_after_ends_cleanly_before_the_finish_reason() -> None:
    recorded = parse(WYOMING.read_bytes())
    with ReplayServer(WYOMING, speed=0) as server:
        server.script({"truncate_after": 1}, {"truncate_after": 3}, {"truncate_after": 99})
        bodies = [_post(server) for _ in range(3)]
    # wyoming.sse has 3 events and the third carries finishReason: 3 (or more) is cut back to 2.
    assert [len(parse(b.content)) for b in bodies] == [1, 2, 2]
    assert all(b.status_code == 200 and b"finishReason" not in b.content for b in bodies)
    assert parse(bodies[1].content) == recorded[:2]
    assert [e.end for e in server.requests] == ["truncated"] * 3


def test_disconnect_error_after_and_delay_steps() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.script({"disconnect_after": 1}, {"error_after": 2, "status": 503}, {"delay": 0.2})
        with pytest.raises(httpx.TransportError):
            _post(server)
        broken = _post(server)
        late = _post(server)
        journal = server.requests
    assert broken.status_code == 200 and broken.content.endswith(b'"status": "UNAVAILABLE"\n  }\n}\n')
    assert len(parse(broken.content)) == 2
    assert late.status_code == 200 and b"finishReason" in late.content
    assert [(e.end, e.events) for e in journal] == [("reset", 1), ("error", 2), ("complete", 3)]
    assert journal[2].done_t - journal[2].t > 0.19  # type: ignore[operator]  # (t is taken after the body was read)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["ok", {"status": 503, "retry_afterr": 1}], "script step 2: unknown key 'retry_afterr' (known: "),
        (["ok", "ok", {"truncate": 3, "bogus": 1}], "script step 3: unknown keys 'bogus', 'truncate'"),
        (["fine"], "script step 1: 'fine' is not a step"),
        ([3], 'script step 1: expected "ok" or a dict, got int 3'),
        ([{"status": 200}], "script step 1: fault status must be an HTTP error status (400..599), got 200"),
        ([{"status": 503, "retry_after": 1}], 'script step 1: retry_after only goes with "status": 429'),
        ([{"truncate_after": -1}], "script step 1: fault truncate_after must be a whole number >= 0"),
        ([{"delay": "soon"}], "script step 1: "),
        ([], "a script needs at least one step"),
    ],
)
def test_bad_steps_raise_a_replay_error_naming_the_step(steps: list, message: str) -> None:
    with pytest.raises(ReplayError) as caught:
        parse_steps(steps)
    assert message in str(caught.value)
    with ReplayServer(WYOMING, speed=0) as server, pytest.raises(ReplayError):
        server.script(*steps)


def test_messages_count_steps_from_one_while_step_index_stays_the_list_index() -> None:
    with pytest.raises(ReplayError, match=r"^script step 1: 'fine' is not a step"):
        parse_steps(["fine", "ok"])
    with pytest.raises(ReplayError, match=r"^script step 2: unknown key 'staus'"):
        parse_steps(["ok", {"staus": 500}])
    assert [s.index for s in parse_steps(["ok", {"status": 503}])] == [0, 1]


def test_scripts_load_from_json_files_with_the_file_named_in_errors(tmp_path: pathlib.Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"status": 429, "retry_after": 0.5}, "ok"]))
    assert [s.describe() for s in load_script(good)] == ["status=429 retry_after=0.5", "ok"]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"steps": ["ok"]}))
    assert len(load_script(wrapped)) == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(["ok", {"staus": 500}]))
    with pytest.raises(ReplayError, match=r"bad\.json: script step 2: unknown key 'staus'"):
        load_script(bad)
    (tmp_path / "broken.json").write_text("[ok")
    with pytest.raises(ReplayError, match=r"broken\.json: not JSON"):
        load_script(tmp_path / "broken.json")


def test_a_step_is_a_per_request_fault_so_fault_keywords_work_in_steps() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.script({"rechunk": 1, "event_latency": 0.01})
        response = _post(server)
    assert response.content == WYOMING.read_bytes()
    assert server.requests[0].end == "complete"


def test_truncate_after_and_a_fractional_retry_after_work_in_the_faults_header_too() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        cut = httpx.post(server.url + PATH, json={}, headers={"x-sse-replay-faults": "truncate-after=1"})
        limited = httpx.post(
            server.url + PATH, json={}, headers={"x-sse-replay-faults": "status=429, retry-after=1.25"}
        )
        denied = httpx.post(server.url + PATH, json={}, headers={"x-sse-replay-faults": "status=401"})
    assert len(parse(cut.content)) == 1 and server.requests[0].end == "truncated"
    assert limited.headers["retry-after"] == "2"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.250s"} in limited.json()[
        "error"
    ]["details"]
    assert server.requests[1].retry_delay == 1.25
    assert denied.json()["error"]["status"] == "UNAUTHENTICATED"
