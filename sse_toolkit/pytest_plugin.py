"""Surface layer: the pytest plugin (registered through the ``pytest11`` entry point; no conftest needed).

Fixtures (see README, "pytest plugin"):

``sse_replay`` -- scope: function; type: ``Callable[..., ReplayServer]``.
    A factory: ``server = sse_replay(source, **options)`` starts a :class:`ReplayServer` on a free
    loopback port (port 0) and returns it (``server.url`` is the base URL for any client). ``source`` is
    a fixture path or directory, fixture bytes, a ``Fixture``, an ``Exchange`` or a ``GeminiScript``; a
    relative path is looked up from the current directory, then from the test file's directory.
    ``options``: ``speed``, ``require_key``, ``faults=Faults(...)`` or fault keywords (``status=503``,
    ``rechunk=1``, ``error_after=2``, ...). Every server started is stopped after the test and then
    ``check()``-ed, so that an error in a server thread fails the test (``check=False`` opts out).
    Each test gets its own servers and ports: nothing is shared, so it is safe under pytest-xdist.

``sse_replay_host`` -- scope: function; type: ``str``; default ``"127.0.0.1"``.
    The address servers listen on; override it (e.g. ``"::1"``) in a conftest.

``sse_replay_speed`` -- scope: function; type: ``float``; default ``1.0`` (the recorded pace).
    The default ``speed`` of servers; override it to ``0`` in a conftest to replay without delays.

Option ``--sse-verdict-report``: after the run, print one row per test that used ``sse_replay`` servers:
the requests they got and the verdict's findings on the client (``server.verdict()``).

Options ``--sse-record-mode=none|once|rewrite`` and ``--sse-upstream URL`` (record modes, README
"Recording"): with ``none`` (the default) a fixture path that does not exist fails the test with the command
that records it; with ``once`` a missing fixture, and with ``rewrite`` every fixture, is recorded instead:
``sse_replay(path)`` then returns a started :class:`RecordingProxy` to ``--sse-upstream`` (default: the
Gemini API) that writes ``path`` (a relative one beside the test file); replay options do not apply to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .record._proxy import DEFAULT_UPSTREAM, RecordingProxy
from .replay._app import ReplayServer

__all__ = ["sse_replay", "sse_replay_host", "sse_replay_speed"]


@pytest.fixture
def sse_replay_host() -> str:
    """Address the ``sse_replay`` servers listen on (default ``127.0.0.1``)."""
    return "127.0.0.1"


@pytest.fixture
def sse_replay_speed() -> float:
    """Default replay speed of ``sse_replay`` servers (1.0 = recorded pace, 0 = no delays)."""
    return 1.0


_VERDICTS = pytest.StashKey[list[tuple[str, int, list[Any]]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sse-toolkit")
    group.addoption("--sse-verdict-report", action="store_true", default=False,
                    help="print a per-test table of the client-resilience verdict of sse_replay servers")
    group.addoption("--sse-record-mode", choices=("none", "once", "rewrite"), default="none",
                    help="none (default): replay only, a missing fixture fails; once: record missing fixtures "
                         "from --sse-upstream; rewrite: record every fixture again")
    group.addoption("--sse-upstream", metavar="URL", default=None,
                    help=f"the API that record modes record from (default: {DEFAULT_UPSTREAM})")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(_VERDICTS, None)
    if not config.getoption("--sse-verdict-report", False) or rows is None:
        return
    terminalreporter.section("sse-replay client verdict")
    width = max([len(name) for name, _, _ in rows] + [4])
    terminalreporter.write_line(f"{'test':<{width}}  requests  errors  warnings  findings")
    for name, count, findings in rows:
        errors = sum(f.severity == "error" for f in findings)
        codes = ", ".join(dict.fromkeys(f.code for f in findings)) or "ok"
        terminalreporter.write_line(f"{name:<{width}}  {count:>8}  {errors:>6}  {len(findings) - errors:>8}  {codes}")
        for finding in findings:
            terminalreporter.write_line(f"    {finding.severity}: {finding.message}")


def _resolve(source: Any, test_path: Path | None) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_absolute() and not path.exists() and test_path is not None:
            beside = test_path.parent / path
            if beside.exists():
                return beside
    return source


def _record_target(request: pytest.FixtureRequest, source: Any, test_path: Path | None) -> Path | None:
    """Where ``--sse-record-mode`` records ``source`` (None: replay it). A fixture path that does not exist
    fails the test in mode ``none``, with the command that records it."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    mode = request.config.getoption("--sse-record-mode", "none")
    path = Path(_resolve(source, test_path))
    if path.is_dir():
        return None  # a directory is replayed; a recording goes into one file
    if mode == "rewrite" or (mode == "once" and not path.exists()):
        if not path.exists() and not path.is_absolute() and test_path is not None:
            path = test_path.parent / path  # beside the test file, where the lookup finds it next time
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    if not path.exists():
        where = f"{Path.cwd()}" + (f" or {test_path.parent}" if test_path is not None else "")
        pytest.fail(
            f"sse_replay: fixture {os.fspath(source)!r} not found in {where}. Record it with:\n"
            f"    pytest --sse-record-mode=once --sse-upstream URL {request.node.nodeid}",
            pytrace=False,
        )
    return None


@pytest.fixture
def sse_replay(
    request: pytest.FixtureRequest, sse_replay_host: str, sse_replay_speed: float
) -> Iterator[Callable[..., ReplayServer]]:
    """Factory: ``sse_replay(source, **options) -> ReplayServer``, started now, stopped after the test."""
    started: list[tuple[ReplayServer, bool]] = []
    recorders: list[RecordingProxy] = []
    test_path = Path(str(request.node.fspath)) if getattr(request.node, "fspath", None) else None

    def factory(source: Any, *, check: bool = True, **options: Any) -> ReplayServer:
        target = _record_target(request, source, test_path)
        if target is not None:
            upstream = request.config.getoption("--sse-upstream", None) or DEFAULT_UPSTREAM
            recorder = RecordingProxy(upstream, target, host=options.get("host", sse_replay_host))
            recorder.start()
            recorders.append(recorder)
            return recorder  # type: ignore[return-value] # stands in for the server: .url, stop(), check()
        options.setdefault("host", sse_replay_host)
        options.setdefault("speed", sse_replay_speed)
        server = ReplayServer(_resolve(source, test_path), **options)
        server.start()
        started.append((server, check))
        return server

    yield factory
    for recorder in recorders:
        recorder.stop()
    for server, _ in started:
        if server.is_running():
            server.stop()
    if request.config.getoption("--sse-verdict-report", False):
        rows = request.config.stash.setdefault(_VERDICTS, [])
        for server, _ in started:
            rows.append((request.node.nodeid, len(server.requests), server.verdict(**server.verdict_options)))
    for server, check in started:
        if check:
            server.check()
    for recorder in recorders:
        recorder.check()
        if not recorder.fixture.exchanges:
            pytest.fail(f"sse_replay recorded nothing into {recorder.out}: the test made no request to its .url",
                        pytrace=False)
