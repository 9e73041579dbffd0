"""pytest record modes: ``--sse-record-mode=none|once|rewrite`` and ``--sse-upstream URL``.

Each case runs an inner pytest session (pytester) whose test calls ``sse_replay("story.jsonl")`` with httpx;
the upstream is a loopback server of this outer test, so nothing leaves the machine.
"""

from __future__ import annotations

import socket

import pytest
from _record_upstream import Script, Upstream

from sse_toolkit import load_fixture

pytest_plugins = ["pytester"]

EVENTS = [b'data: {"n": 1}\r\n\r\n', b'data: {"n": 2}\r\n\r\n']
KEY = "AIzaSyPLUGIN-secret-key-0123456789"

INNER_TEST = f'''
import httpx

from sse_toolkit.server._protocol import StartedServer

def test_story(sse_replay):
    server = sse_replay("story.jsonl")
    assert isinstance(server, StartedServer)  # a recorder in a record mode, a replay server otherwise
    response = httpx.post(
        server.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        json={{"contents": []}}, headers={{"x-goog-api-key": "{KEY}"}},
    )
    assert response.content == {b"".join(EVENTS)!r}
'''


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_inner=INNER_TEST)
    return pytester


def test_default_mode_fails_on_a_missing_fixture_and_says_how_to_record(inner: pytest.Pytester) -> None:
    result = inner.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*story.jsonl*", "*--sse-record-mode=once*"])


def test_once_records_a_missing_fixture_then_replays_it_without_the_upstream(inner: pytest.Pytester) -> None:
    script = Script([(0, EVENTS[0]), (0.05, EVENTS[1])])
    with Upstream(script) as up:
        result = inner.runpytest("--sse-record-mode=once", f"--sse-upstream={up.url}")
    result.assert_outcomes(passed=1)
    assert len(up.requests) == 1 and ("x-goog-api-key", KEY) in up.requests[0][2]
    written = inner.path / "story.jsonl"
    exchange = load_fixture(written).exchanges[0]
    assert exchange.body == b"".join(EVENTS) and exchange.timed
    assert KEY.encode() not in written.read_bytes()
    # The upstream is gone now: the default mode replays the recording.
    inner.runpytest().assert_outcomes(passed=1)
    # once with the fixture present: replayed, the upstream is not asked.
    with Upstream(script) as up:
        inner.runpytest("--sse-record-mode=once", f"--sse-upstream={up.url}").assert_outcomes(passed=1)
    assert up.requests == []


def test_rewrite_records_again_over_an_existing_fixture(inner: pytest.Pytester) -> None:
    (inner.path / "story.jsonl").write_bytes(b"data: old\r\n\r\n")
    with Upstream(Script([(0, EVENTS[0]), (0, EVENTS[1])])) as up:
        result = inner.runpytest("--sse-record-mode=rewrite", f"--sse-upstream={up.url}")
    result.assert_outcomes(passed=1)
    assert len(up.requests) == 1
    assert load_fixture(inner.path / "story.jsonl").exchanges[0].body == b"".join(EVENTS)


def test_a_recording_test_that_makes_no_request_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_idle="def test_idle(sse_replay):\n    sse_replay('idle.jsonl')\n")
    with Upstream() as up:
        result = pytester.runpytest("--sse-record-mode=once", f"--sse-upstream={up.url}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*recorded nothing*idle.jsonl*"])
    assert not (pytester.path / "idle.jsonl").exists()


def test_a_recording_test_whose_upstream_refuses_says_it_made_a_request_that_could_not_be_recorded(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_refused=(
            "import httpx\n\n"
            "def test_refused(sse_replay):\n"
            "    server = sse_replay('refused.jsonl')\n"
            "    path = '/v1beta/models/m:streamGenerateContent?alt=sse'\n"
            "    response = httpx.post(server.url + path, json={})\n"
            "    assert response.status_code == 502\n"
        )
    )
    # A port that was just bound and closed, so nothing listens there: the upstream refuses.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = pytester.runpytest("--sse-record-mode=once", f"--sse-upstream=http://127.0.0.1:{port}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*recorded nothing into*refused.jsonl: the test made 1 request to its .url, but none could be "
            f"recorded: the upstream http://127.0.0.1:{port} answered none of them (unreachable*"
        ]
    )
    result.stdout.no_fnmatch_line("*made no request*")
    assert not (pytester.path / "refused.jsonl").exists()
