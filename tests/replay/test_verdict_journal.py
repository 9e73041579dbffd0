"""The journal and the reserved /_sse/ endpoints (for clients in any language), ``sse-replay --script``,
and the pytest ``--sse-verdict-report`` table."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import httpx
import pytest

from sse_toolkit.replay import ReplayServer

pytest_plugins = ["pytester"]

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
WYOMING = FIXTURES / "wyoming.sse"
PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
KEY = "AIzaSyTHIS-IS-NOT-A-REAL-KEY-0123456789"


def test_the_journal_records_what_each_request_asked_and_got() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        server.script({"status": 503}, "ok")
        before = time.time()
        httpx.post(
            server.url + PATH + "?alt=sse&key=" + KEY,
            json={"contents": "a"},
            headers={"Authorization": "Bearer tok-123456789"},
        )
        ok = httpx.post(
            server.url + PATH + "?alt=sse", json={"contents": "a"}, headers={"x-goog-api-key": KEY}
        )
        first, second = server.requests
    assert (first.index, first.method, first.path, first.model, first.kind) == (
        0,
        "POST",
        PATH,
        "gemini-2.0-flash",
        "stream",
    )
    assert first.query == "alt=sse&key=REDACTED" and ("Authorization", "Bearer REDACTED") in first.headers
    assert ("x-goog-api-key", "REDACTED") in second.headers
    assert KEY not in json.dumps([first.to_dict(), second.to_dict()])
    assert second.header("x-goog-api-key") == KEY and first.params["key"] == KEY  # as received, for tests
    assert json.loads(first.body) == {"contents": "a"}
    assert (first.status, first.step, first.end, first.events, first.outcome) == (
        503,
        0,
        "complete",
        0,
        "server-error",
    )
    assert (second.status, second.step, second.end, second.events, second.finished) == (
        200,
        1,
        "complete",
        3,
        True,
    )
    assert second.bytes == len(ok.content) == WYOMING.stat().st_size
    assert second.full_text == "The capital of Wyoming is **Cheyenne**.\n"
    assert before <= first.wall <= second.wall <= time.time()
    assert first.t < first.done_t <= second.t < second.done_t  # type: ignore[operator]


def test_control_endpoints_set_the_script_return_journal_and_verdict_and_reset() -> None:
    with ReplayServer(WYOMING, speed=0) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/_sse/script", json=[{"status": 400}, "ok"]).json() == {"steps": 2}
        assert client.get("/_sse/script").json() == {"steps": [{"status": 400}, "ok"]}
        assert client.post(PATH + "?alt=sse", json={}).status_code == 400
        assert client.post(PATH + "?alt=sse", json={}).status_code == 200
        journal = client.get("/_sse/journal").json()["requests"]
        assert [(r["index"], r["status"], r["step"], r["outcome"]) for r in journal] == [
            (0, 400, 0, "client-error"),
            (1, 200, 1, "ok"),
        ]
        verdict = client.get("/_sse/verdict").json()
        assert verdict["passed"] is False and verdict["requests"] == 2
        assert [f["code"] for f in verdict["findings"]] == ["retried-non-retryable"]
        assert verdict["findings"][0]["requests"] == [0, 1]
        assert "1 error" in verdict["report"]
        assert (
            client.post("/_sse/verdict", json={"result_text": "nope"}).json()["findings"][-1]["code"]
            == "wrong-answer"
        )
        assert client.post("/_sse/reset").json() == {"reset": True}
        assert client.get("/_sse/journal").json() == {"requests": []}
        assert client.get("/_sse/verdict").json()["passed"] is True
        assert client.get("/_sse/script").json() == {"steps": []}
        assert server.requests == []  # control requests are never journaled


def test_a_bad_script_over_http_is_a_400_naming_the_step() -> None:
    with ReplayServer(WYOMING, speed=0) as server:
        response = httpx.post(server.url + "/_sse/script", json=["ok", {"status": 503, "after": 2}])
        assert response.status_code == 400
        assert "script step 2: unknown key 'after'" in response.json()["error"]["message"]
        assert httpx.get(server.url + "/_sse/nothing").status_code == 404
        assert httpx.post(server.url + "/_sse/script", content=b"[").status_code == 400


def test_sse_replay_serve_with_a_script_file(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "scenario.json"
    script.write_text(json.dumps([{"status": 429, "retry_after": 0.5}, "ok"]))
    command = [sys.executable, "-c", "from sse_toolkit.cli import replay_main; replay_main()"]
    proc = subprocess.Popen(
        [*command, "--serve", str(WYOMING), "--speed", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        limited = httpx.post(url + PATH + "?alt=sse", json={})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert httpx.post(url + PATH + "?alt=sse", json={}).status_code == 200
        findings = httpx.get(url + "/_sse/verdict").json()["findings"]
        assert [f["code"] for f in findings] == ["retry-too-soon"]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"stauts": 500}]))
    result = subprocess.run(
        [*command, "--serve", str(WYOMING), "--script", str(bad)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert b"bad.json: script step 1: unknown key 'stauts'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_verdict_report_prints_a_table_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import time
        import httpx

        WYOMING = {str(WYOMING)!r}
        PATH = {PATH + "?alt=sse"!r}

        def test_hasty(sse_replay):
            server = sse_replay(WYOMING, speed=0)
            server.script({{"status": 429, "retry_after": 0.3}}, "ok")
            with httpx.Client() as client:  # one client: a new one per request takes long on a busy machine
                while client.post(server.url + PATH, json={{}}).status_code != 200:
                    pass

        def test_patient(sse_replay):
            server = sse_replay(WYOMING, speed=0)
            server.script({{"status": 429, "retry_after": 0.1}}, "ok")
            while httpx.post(server.url + PATH, json={{}}).status_code != 200:
                time.sleep(0.1)
            server.assert_resilient()

        def test_without_servers():
            pass
        """
    )
    result = pytester.runpytest_inprocess("--sse-verdict-report", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*sse-replay client verdict*",
            "test*requests*errors*warnings*findings",
            "test_verdict_report_prints_a_table_per_test.py::test_hasty*2*1*0*retry-too-soon",
            "*error: request #1 retried the 429 of request #0 after 0.0*",
            "test_verdict_report_prints_a_table_per_test.py::test_patient*2*0*0*ok",
        ]
    )
    assert "test_without_servers" not in result.stdout.str().split("client verdict")[1]
    plain = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert "client verdict" not in plain.stdout.str()


def test_a_client_that_leaves_mid_stream_is_journaled_with_what_it_was_sent_not_what_was_planned() -> None:
    import socket

    with ReplayServer(WYOMING, speed=0.05) as server:  # 3 events, the finishReason in the last, paced
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                b"POST " + PATH.encode() + b"?alt=sse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            )
            assert b"data: " in sock.recv(65536)  # the head and the first event; then the client goes
        deadline = time.monotonic() + 20
        while server.requests[-1].end.value == "pending" and time.monotonic() < deadline:
            time.sleep(0.01)
        entry = server.requests[-1]
    assert entry.end.value == "client-gone" and not entry.finished and entry.events < 3
