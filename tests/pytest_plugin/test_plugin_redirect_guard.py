"""The plugin for projects that are not this one: ``redirect=True`` points an application's own clients at
the server and puts the environment back afterwards; a replayed test that reaches for the real Gemini or
Vertex AI hosts fails, naming the host and how to record (unless told not to); fixtures shipped with the
package are found by name; a relative path is looked for beside the test file, in the rootdir and in the
current directory, and the error lists every place looked. Each case runs an inner pytest session."""

from __future__ import annotations

import os
import pathlib

import pytest

pytest_plugins = ["pytester"]

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
STORY_START = "In the quaint, sunlit cottage"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_GEMINI_BASE_URL", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://openai.example.invalid/v1/")  # the user's own setting


def test_redirect_points_own_clients_at_the_server_and_restores_the_environment(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(
        f"""
        import os

        import openai
        from google import genai

        def env():
            return {{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}}

        BEFORE = env()

        def test_redirected(sse_replay):
            server = sse_replay("cats", speed=0, redirect=True)
            assert os.environ["GOOGLE_GEMINI_BASE_URL"] == server.url
            assert os.environ["OPENAI_BASE_URL"] == server.url + "/v1beta/openai/"
            client = genai.Client()  # kept: a client that is garbage-collected closes its connection
            story = client.models.generate_content(model="gemini-2.0-flash", contents="Hi").text
            assert story.startswith({STORY_START!r})
            chat = openai.OpenAI().chat.completions.create(
                model="gemini-2.0-flash", messages=[{{"role": "user", "content": "Hi"}}]
            )
            assert chat.choices[0].message.content == story
            assert [e.header("x-goog-api-key") or e.header("authorization") for e in server.requests] == [
                "sse-replay-test-key",
                "Bearer sse-replay-test-key",
            ]

        def test_required_key_is_the_one_set(sse_replay):
            server = sse_replay("cats", speed=0, redirect=True, require_key="the-key")
            assert os.environ["GEMINI_API_KEY"] == os.environ["GOOGLE_API_KEY"] == "the-key"
            client = genai.Client()
            assert client.models.generate_content(model="m", contents="Hi").text

        def test_then_the_environment_is_as_before():
            assert env() == BEFORE
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    assert os.environ["OPENAI_BASE_URL"] == "https://openai.example.invalid/v1/"


GUARDED = """
import socket

import httpx
import pytest
from google import genai

REAL_GETADDRINFO = socket.getaddrinfo

def test_swallowed_call_to_the_gemini_api(sse_replay):
    sse_replay("cats")
    client = genai.Client(api_key="k")  # forgot the base URL: the real API
    try:
        client.models.generate_content(model="gemini-2.0-flash", contents="Hi")
    except Exception:
        pass  # an application that hides the failure

def test_regional_vertex_host(sse_replay):
    sse_replay("cats")
    with pytest.raises(httpx.ConnectError, match="blocked a connection"):
        httpx.get("https://us-central1-aiplatform.googleapis.com/v1/projects")

def test_loopback_and_other_hosts_are_left_alone(sse_replay):
    server = sse_replay("cats", speed=0)
    assert httpx.get(server.url + "/v1beta/models").status_code == 200
    assert socket.getaddrinfo("localhost", 80)

def test_no_guard_outside_replayed_tests():
    assert socket.getaddrinfo is REAL_GETADDRINFO
"""


def test_a_replayed_test_that_reaches_the_real_api_fails_naming_host_and_remedy(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_guarded=GUARDED)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=2)  # each blocked test passes its call, fails its teardown
    result.stdout.fnmatch_lines(
        [
            "*the code under test tried to reach the real API (generativelanguage.googleapis.com)*",
            "*pytest --sse-record-mode=once test_guarded.py::test_swallowed_call_to_the_gemini_api*",
            "*--sse-allow-network turns this guard off*",
            "*real API (us-central1-aiplatform.googleapis.com)*",
        ]
    )


def test_the_guard_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_guarded="""
        import socket

        def test_unguarded(sse_replay):
            sse_replay("cats")
            assert socket.getaddrinfo.__module__ == "socket"  # the real function, not the guard's
        """
    )
    pytester.runpytest("-p", "no:cacheprovider", "--sse-allow-network").assert_outcomes(passed=1)
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def sse_replay_blocked_hosts():
            return ()
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_shipped_fixtures_are_found_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import httpx

        from sse_toolkit import load_fixture

        STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"

        def body(server):
            return httpx.post(server.url + STREAM, json={{}}).content

        def test_by_name(sse_replay):
            recorded = load_fixture({str(FIXTURES / "cats.jsonl")!r}).exchanges[0].body
            assert body(sse_replay("cats", speed=0)) == recorded  # the recorded format first
            assert body(sse_replay("cats.sse", speed=0)) == open({str(FIXTURES / "cats.sse")!r}, "rb").read()
            assert b"Cheyenne" in body(sse_replay("wyoming", speed=0))
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_relative_paths_are_looked_for_beside_the_test_in_the_rootdir_and_the_cwd(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cats = (FIXTURES / "cats.sse").read_bytes()
    wyoming = (FIXTURES / "wyoming.sse").read_bytes()
    pytester.makeini("[pytest]\n")  # the rootdir
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "root.sse").write_bytes(cats)
    tests = pytester.path / "tests" / "deep"
    tests.mkdir(parents=True)
    (tests / "beside.sse").write_bytes(cats)
    (tests / "test_paths.py").write_text(
        "import httpx\n"
        "STREAM = '/v1beta/models/m:streamGenerateContent?alt=sse'\n"
        "def body(server):\n"
        "    return httpx.post(server.url + STREAM, json={}).content\n"
        "def test_found(sse_replay):\n"
        f"    assert body(sse_replay('beside.sse', speed=0)) == {cats!r}\n"
        f"    assert body(sse_replay('data/root.sse', speed=0)) == {cats!r}\n"
        f"    assert body(sse_replay('cwd.sse', speed=0)) == {wyoming!r}\n"
        "def test_missing(sse_replay):\n"
        "    sse_replay('data/dogs.sse')\n"
        "def test_missing_name(sse_replay):\n"
        "    sse_replay('dogs')\n"
    )
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "cwd.sse").write_bytes(wyoming)
    monkeypatch.chdir(elsewhere)
    result = pytester.runpytest(str(tests), f"--rootdir={pytester.path}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*sse_replay: fixture 'data/dogs.sse' not found. Looked in:",
            f"*{tests / 'data' / 'dogs.sse'}  (beside the test file)",
            f"*{pytester.path / 'data' / 'dogs.sse'}  (the rootdir)",
            f"*{elsewhere / 'data' / 'dogs.sse'}  (the current directory)",
            "*pytest --sse-record-mode=once --sse-upstream URL *test_missing*",
            "*sse_replay: fixture 'dogs' not found. Looked in:",
            "*the fixtures shipped with sse-toolkit (cats, *wyoming)",
        ]
    )
