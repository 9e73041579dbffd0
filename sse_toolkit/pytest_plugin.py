"""Surface layer: the pytest plugin (registered through the ``pytest11`` entry point; no conftest needed).

Fixtures (see docs/pytest.md):

``sse_replay`` -- scope: function; type: ``Callable[..., ReplayServer | RecordingProxy]``.
    A factory: ``server = sse_replay(source, **options)`` starts a :class:`ReplayServer` on a free
    loopback port (port 0) and returns it (``server.url`` is the base URL for any client). ``source`` is
    a fixture path or directory, fixture bytes, a ``Fixture``, an ``Exchange`` or a ``GeminiScript``, or
    the name of a fixture shipped with the package (``"cats"``). A relative path is looked for beside the
    test file, then in the rootdir, then in the current directory; then a bare name among the shipped
    fixtures; a path found nowhere fails the test listing every place looked.
    ``options``: ``speed``, ``require_key``, ``faults=Faults(...)`` or fault keywords (``status=503``,
    ``rechunk=1``, ``error_after=2``, ...). ``redirect=True`` points applications that build their own
    clients at the server for the rest of the test: ``GOOGLE_GEMINI_BASE_URL`` and ``GOOGLE_VERTEX_BASE_URL``
    (google-genai and what is built on it), ``OPENAI_BASE_URL`` (``{url}/v1beta/openai/``, the openai SDK),
    ``GEMINI_API_BASE`` (litellm), and a key in ``GEMINI_API_KEY``, ``GOOGLE_API_KEY`` and
    ``OPENAI_API_KEY`` (``require_key`` when it is a string); all restored after the test.
    Every server started is stopped after the test and then ``check()``-ed, so that an error in a server
    thread fails the test (``check=False`` opts out). Each test gets its own servers and ports: nothing is
    shared, so it is safe under pytest-xdist.

``sse_replay_host`` -- scope: function; type: ``str``; default ``"127.0.0.1"``.
    The address servers listen on; override it (e.g. ``"::1"``) in a conftest.

``sse_replay_speed`` -- scope: function; type: ``float``; default ``1.0`` (the recorded pace).
    The default ``speed`` of servers; override it to ``0`` in a conftest to replay without delays.

``sse_replay_blocked_hosts`` -- scope: function; type: ``tuple[str, ...]``; default ``REAL_API_HOSTS``.
    The hosts a test that uses ``sse_replay`` may not reach (``fnmatch`` patterns): while it runs, a
    connection to one of them (its name resolved, or a socket connected to it by name) raises
    :class:`RealAPIBlocked`, and the test fails at teardown naming the host and how to record, even if the
    code under test swallowed the error (as pytest-recording's ``--block-network`` and vcrpy's record
    mode ``none`` refuse the network). ``--sse-allow-network``, or an override returning ``()``, turns the
    guard off; the record modes ``once`` and ``rewrite`` turn it off as well (the recorder reaches them).

Option ``--sse-verdict-report``: after the run, print one row per test that used ``sse_replay`` servers:
the requests they got and the verdict's findings on the client (``server.verdict()``).

Options ``--sse-record-mode=none|once|rewrite`` and ``--sse-upstream URL`` (record modes, docs/pytest.md):
with ``none`` (the default) a fixture path that does not exist fails the test with the command that
records it; with ``once`` a missing fixture, and with ``rewrite`` every fixture, is recorded instead:
``sse_replay(path)`` then returns a started :class:`RecordingProxy` to ``--sse-upstream`` (default: the
Gemini API) that writes ``path`` (a relative one beside the test file); replay options do not apply to it.
Both kinds are a ``StartedServer`` (``url``, ``is_running``, ``stop``, ``check``): a test that only points
a client at ``server.url`` works the same in every mode. A shipped fixture is never rewritten: ``rewrite``
records a shipped name beside the test file.
"""

from __future__ import annotations

import fnmatch
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from .record._proxy import DEFAULT_UPSTREAM, RecordingProxy
from .replay import ReplayServer, shipped_fixture, shipped_names
from .server._protocol import StartedServer

__all__ = [
    "REAL_API_HOSTS",
    "RealAPIBlocked",
    "sse_replay",
    "sse_replay_blocked_hosts",
    "sse_replay_host",
    "sse_replay_speed",
]

# The Gemini API and Vertex AI (regional endpoints are ``{region}-aiplatform.googleapis.com``).
REAL_API_HOSTS = (
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "*-aiplatform.googleapis.com",
)
# The key a redirected application gets when the server asks for none in particular.
_DUMMY_KEY = "sse-replay-test-key"


class RealAPIBlocked(ConnectionRefusedError):
    """Code under a replayed test tried to reach the real API (a host of ``sse_replay_blocked_hosts``)."""


@pytest.fixture
def sse_replay_host() -> str:
    """Address the ``sse_replay`` servers listen on (default ``127.0.0.1``)."""
    return "127.0.0.1"


@pytest.fixture
def sse_replay_speed() -> float:
    """Default replay speed of ``sse_replay`` servers (1.0 = recorded pace, 0 = no delays)."""
    return 1.0


@pytest.fixture
def sse_replay_blocked_hosts(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """Hosts a test that uses ``sse_replay`` may not reach (default ``REAL_API_HOSTS``; none with
    ``--sse-allow-network``)."""
    if request.config.getoption("--sse-allow-network", False):
        return ()
    return REAL_API_HOSTS


_VERDICTS = pytest.StashKey[list[tuple[str, int, list[Any]]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sse-toolkit")
    group.addoption(
        "--sse-verdict-report",
        action="store_true",
        default=False,
        help="print a per-test table of the client-resilience verdict of sse_replay servers",
    )
    group.addoption(
        "--sse-record-mode",
        choices=("none", "once", "rewrite"),
        default="none",
        help="none (default): replay only, a missing fixture fails; once: record missing fixtures "
        "from --sse-upstream; rewrite: record every fixture again",
    )
    group.addoption(
        "--sse-upstream",
        metavar="URL",
        default=None,
        help=f"the API that record modes record from (default: {DEFAULT_UPSTREAM})",
    )
    group.addoption(
        "--sse-allow-network",
        action="store_true",
        default=False,
        help="let tests that use sse_replay reach the real Gemini and Vertex AI hosts (blocked by default)",
    )


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
        terminalreporter.write_line(
            f"{name:<{width}}  {count:>8}  {errors:>6}  {len(findings) - errors:>8}  {codes}"
        )
        for finding in findings:
            terminalreporter.write_line(f"    {finding.severity}: {finding.message}")


# -- finding fixtures ----------------------------------------------------------------------------------
class _Lookup:
    """Where a relative fixture path is looked for (beside the test file, the rootdir, the current
    directory), and what the error says when it is nowhere."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        path = getattr(request.node, "path", None)
        self.test_dir = Path(path).parent if path is not None else None
        self.places: list[tuple[Path, str]] = []
        if self.test_dir is not None:
            self.places.append((self.test_dir, "beside the test file"))
        self.places.append((Path(request.config.rootpath), "the rootdir"))
        self.places.append((Path.cwd(), "the current directory"))

    def find(self, source: str | os.PathLike[str]) -> tuple[Path | None, bool]:
        """The fixture ``source`` names and whether it is a shipped one (None: found nowhere)."""
        path = Path(source)
        if path.is_absolute():
            return (path, False) if path.exists() else (None, False)
        for base, _ in self.places:
            if (base / path).exists():
                return base / path, False
        shipped = shipped_fixture(os.fspath(source))
        return (shipped, True) if shipped is not None else (None, False)

    def not_found(self, source: str | os.PathLike[str], nodeid: str) -> str:
        path = Path(source)
        looked = [f"    {path}"] if path.is_absolute() else []
        if not path.is_absolute():
            seen: set[Path] = set()
            for base, what in self.places:
                if (base / path) not in seen:
                    seen.add(base / path)
                    looked.append(f"    {base / path}  ({what})")
            if "/" not in os.fspath(source) and "\\" not in os.fspath(source):
                names = ", ".join(n for n in shipped_names() if "." not in n) or "none in this install"
                looked.append(f"    the fixtures shipped with sse-toolkit ({names})")
        return (
            f"sse_replay: fixture {os.fspath(source)!r} not found. Looked in:\n"
            + "\n".join(looked)
            + f"\nRecord it with:\n    pytest --sse-record-mode=once --sse-upstream URL {nodeid}"
        )


def _recorded_nothing(recorder: RecordingProxy) -> str:
    """Why a recording test left no fixture, in words that are true of what the proxy saw."""
    head = f"sse_replay recorded nothing into {recorder.out}"
    received = recorder.requests_received
    if received == 0:
        return f"{head}: the test made no request to its .url"
    plural = "" if received == 1 else "s"
    made = f"the test made {received} request{plural} to its .url, but none could be recorded"
    reasons: list[str] = []
    failed = received - recorder.dropped
    if failed > 0:
        # The proxy answers these itself (502, 504, or 400 for a request it cannot forward).
        upstream = recorder.upstream
        if failed == received:
            who = f"the upstream {upstream} answered none of them"
        else:
            who = f"{failed} got no answer from the upstream {upstream}"
        reasons.append(
            f"{who} (unreachable, no answer within the timeout, or a request the proxy cannot forward: the "
            "test got the proxy's own 502, 504 or 400); check --sse-upstream"
        )
    if recorder.dropped:
        reasons.append(f"{recorder.dropped} still streaming when the test ended")
    return f"{head}: {made}: {'; '.join(reasons)}"


def _record_target(
    request: pytest.FixtureRequest, lookup: _Lookup, source: str | os.PathLike[str]
) -> tuple[Path | None, Path | None]:
    """``(record into, replay from)`` for a fixture path in the current record mode: a path that is found
    nowhere fails the test in mode ``none``, with every place looked and the command that records it."""
    mode = request.config.getoption("--sse-record-mode", "none")
    found, shipped = lookup.find(source)
    if found is not None and found.is_dir():
        return None, found  # a directory is replayed; a recording goes into one file
    if mode == "rewrite" or (mode == "once" and found is None):
        target = found if found is not None and not shipped else Path(source)
        if not target.is_absolute() and lookup.test_dir is not None:
            target = lookup.test_dir / target  # beside the test file, where the lookup finds it next time
        target.parent.mkdir(parents=True, exist_ok=True)
        return target, None
    if found is None:
        pytest.fail(lookup.not_found(source, request.node.nodeid), pytrace=False)
    return None, found


# -- redirection and the guard -------------------------------------------------------------------------
def _redirect(monkeypatch: pytest.MonkeyPatch, server: ReplayServer, key: str | bool | None) -> None:
    """Point applications that build their own clients at ``server`` (see the module doc)."""
    dummy = key if isinstance(key, str) and key else _DUMMY_KEY
    for name, value in (
        ("GOOGLE_GEMINI_BASE_URL", server.url),
        ("GOOGLE_VERTEX_BASE_URL", server.url),
        ("OPENAI_BASE_URL", server.url + "/v1beta/openai/"),
        ("GEMINI_API_BASE", server.url),  # litellm appends /models/... (the server takes it unversioned)
        ("GEMINI_API_KEY", dummy),
        ("GOOGLE_API_KEY", dummy),  # google-genai prefers it to GEMINI_API_KEY: the same value in both
        ("OPENAI_API_KEY", dummy),
    ):
        monkeypatch.setenv(name, value)


class _Guard:
    """Refuses connections to the blocked hosts while installed, and remembers each attempt."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = [p.lower() for p in patterns]
        self.attempts: list[str] = []
        self._lock = threading.Lock()

    def blocked(self, host: object) -> str | None:
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not isinstance(host, str):
            return None
        name = host.lower().rstrip(".")
        return name if any(fnmatch.fnmatchcase(name, p) for p in self.patterns) else None

    def refuse(self, host: str) -> RealAPIBlocked:
        with self._lock:
            if host not in self.attempts:
                self.attempts.append(host)
        return RealAPIBlocked(
            f"sse-toolkit: blocked a connection to {host} during a replayed test (point the client at the "
            "replay server, or record a fixture with --sse-record-mode=once)"
        )

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if (name := guard.blocked(host)) is not None:
                raise guard.refuse(name)
            return real_getaddrinfo(host, *args, **kwargs)

        def connect(sock: socket.socket, address: Any) -> None:
            if isinstance(address, tuple) and address and (name := guard.blocked(address[0])) is not None:
                raise guard.refuse(name)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if isinstance(address, tuple) and address and (name := guard.blocked(address[0])) is not None:
                raise guard.refuse(name)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)

    def report(self, nodeid: str) -> str:
        hosts = ", ".join(self.attempts)
        return (
            f"sse_replay: the code under test tried to reach the real API ({hosts}) during a replayed test; "
            "the connection was refused. Point its client at the replay server (server.url, or "
            "sse_replay(..., redirect=True) for an application that builds its own client), or record the "
            f"fixture with:\n    pytest --sse-record-mode=once {nodeid}\n"
            "(--sse-allow-network turns this guard off)"
        )


# -- the fixture -----------------------------------------------------------------------------------------
@pytest.fixture
def sse_replay(
    request: pytest.FixtureRequest,
    sse_replay_host: str,
    sse_replay_speed: float,
    sse_replay_blocked_hosts: tuple[str, ...],
) -> Iterator[Callable[..., ReplayServer | RecordingProxy]]:
    """Factory: ``sse_replay(source, *, check=True, redirect=False, **options) -> ReplayServer`` (a
    ``RecordingProxy`` in a record mode), started now, stopped after the test."""
    started: list[tuple[StartedServer, bool]] = []  # every server, in order, and whether to check() it
    replayed: list[ReplayServer] = []
    recorders: list[RecordingProxy] = []
    lookup = _Lookup(request)
    monkeypatch = pytest.MonkeyPatch()
    mode = request.config.getoption("--sse-record-mode", "none")
    guard = _Guard(sse_replay_blocked_hosts) if sse_replay_blocked_hosts and mode == "none" else None
    if guard is not None:
        guard.install(monkeypatch)

    def factory(
        source: Any, *, check: bool = True, redirect: bool = False, **options: Any
    ) -> ReplayServer | RecordingProxy:
        if isinstance(source, (str, os.PathLike)):
            target, source = _record_target(request, lookup, source)
            if target is not None:
                upstream = request.config.getoption("--sse-upstream", None) or DEFAULT_UPSTREAM
                recorder = RecordingProxy(upstream, target, host=options.get("host", sse_replay_host))
                recorder.start()
                recorders.append(recorder)
                started.append((recorder, True))
                return recorder
        options.setdefault("host", sse_replay_host)
        options.setdefault("speed", sse_replay_speed)
        server = ReplayServer(source, **options)
        server.start()
        replayed.append(server)
        started.append((server, check))
        if redirect:
            _redirect(monkeypatch, server, options.get("require_key"))
        return server

    try:
        yield factory
    finally:
        monkeypatch.undo()  # the environment and the socket functions, as they were
    for server, _ in started:
        if server.is_running():
            server.stop()
    if request.config.getoption("--sse-verdict-report", False):
        rows = request.config.stash.setdefault(_VERDICTS, [])
        for replay in replayed:
            rows.append((request.node.nodeid, len(replay.requests), replay.verdict(**replay.verdict_options)))
    for server, check in started:
        if check:
            server.check()
    for recorder in recorders:
        if not recorder.fixture.exchanges:
            pytest.fail(_recorded_nothing(recorder), pytrace=False)
    if guard is not None and guard.attempts:
        pytest.fail(guard.report(request.node.nodeid), pytrace=False)
