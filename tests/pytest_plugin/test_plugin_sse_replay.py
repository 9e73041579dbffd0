"""The pytest plugin, used as a user would: a test file with no conftest, run by pytest in a fresh process
(the ``pytest11`` entry point loads the plugin; the first test runs pytest in a fresh process to prove it,
the others run it in-process, which loads entry-point plugins the same way, to stay fast)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

pytest_plugins = ["pytester"]

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"


def test_sse_replay_serves_a_fixture_and_stops_it_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import httpx
        from google import genai
        from google.genai import types

        CATS = {str(FIXTURES / "cats.sse")!r}
        seen = []

        def test_with_httpx(sse_replay):
            server = sse_replay(CATS, speed=0)
            seen.append(server)
            assert server.url.startswith("http://127.0.0.1:")
            path = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
            body = httpx.post(server.url + path, json={{}}).content
            assert body == open(CATS, "rb").read()

        def test_with_genai_and_faults(sse_replay):
            server = sse_replay(CATS, speed=0, status=503)
            client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url))
            try:
                client.models.generate_content(model="gemini-2.0-flash", contents="hi")
            except genai.errors.ServerError as exc:
                assert exc.code == 503
            else:
                raise AssertionError("no 503")

        def test_previous_servers_were_stopped():
            assert seen and not seen[0].is_running()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_an_error_in_a_server_thread_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import httpx

        def broken(request):
            raise RuntimeError("handler exploded")

        def test_checked(sse_replay):
            server = sse_replay({str(FIXTURES / "cats.sse")!r}, speed=0)
            server.handler = broken
            assert httpx.get(server.url + "/x").status_code == 500

        def test_unchecked(sse_replay):
            server = sse_replay({str(FIXTURES / "cats.sse")!r}, speed=0, check=False)
            server.handler = broken
            assert httpx.get(server.url + "/x").status_code == 500
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_checked*", "*handler exploded*"])


def test_relative_paths_resolve_beside_the_test_file_and_speed_can_be_overridden(
    pytester: pytest.Pytester,
) -> None:
    sub = pytester.mkpydir("suite")
    (sub / "data").mkdir()
    (sub / "data" / "wyoming.sse").write_bytes((FIXTURES / "wyoming.sse").read_bytes())
    (sub / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef sse_replay_speed():\n    return 0\n"
    )
    (sub / "test_relative.py").write_text(
        "import httpx, time\n"
        "def test_it(sse_replay):\n"
        "    server = sse_replay('data/wyoming.sse')\n"
        "    start = time.monotonic()\n"
        "    body = httpx.post(server.url + '/v1/models/x:streamGenerateContent?alt=sse', json={}).content\n"
        "    assert body.count(b'data: ') == 3\n"
        "    assert server.app.speed == 0\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", str(sub))
    result.assert_outcomes(passed=1)


def test_no_state_leaks_between_tests(pytester: pytest.Pytester) -> None:
    # Each test gets its own server: the exchange order restarts, ports differ, nothing is shared.
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from sse_toolkit.fixture._model import Fixture
        from sse_toolkit.fixture._builder import GeminiScript

        FIXTURE = Fixture([GeminiScript().text(f"answer {n}", words=None).to_exchange() for n in (1, 2)])
        URL = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"

        @pytest.mark.parametrize("run", [1, 2])
        def test_first_answer_each_time(sse_replay, run):
            server = sse_replay(FIXTURE, speed=0)
            assert b"answer 1" in httpx.post(server.url + URL, json={}).content
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_safe_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import httpx, pytest

        @pytest.mark.parametrize("n", range(4))
        def test_parallel(sse_replay, n):
            server = sse_replay({str(FIXTURES / "cats.sse")!r}, speed=0)
            assert httpx.get(server.url + "/v1/models/x:streamGenerateContent?alt=sse").status_code == 200
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)
