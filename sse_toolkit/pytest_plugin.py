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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._replay_gemini import ReplayServer

__all__ = ["sse_replay", "sse_replay_host", "sse_replay_speed"]


@pytest.fixture
def sse_replay_host() -> str:
    """Address the ``sse_replay`` servers listen on (default ``127.0.0.1``)."""
    return "127.0.0.1"


@pytest.fixture
def sse_replay_speed() -> float:
    """Default replay speed of ``sse_replay`` servers (1.0 = recorded pace, 0 = no delays)."""
    return 1.0


def _resolve(source: Any, test_path: Path | None) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_absolute() and not path.exists() and test_path is not None:
            beside = test_path.parent / path
            if beside.exists():
                return beside
    return source


@pytest.fixture
def sse_replay(
    request: pytest.FixtureRequest, sse_replay_host: str, sse_replay_speed: float
) -> Iterator[Callable[..., ReplayServer]]:
    """Factory: ``sse_replay(source, **options) -> ReplayServer``, started now, stopped after the test."""
    started: list[tuple[ReplayServer, bool]] = []
    test_path = Path(str(request.node.fspath)) if getattr(request.node, "fspath", None) else None

    def factory(source: Any, *, check: bool = True, **options: Any) -> ReplayServer:
        options.setdefault("host", sse_replay_host)
        options.setdefault("speed", sse_replay_speed)
        server = ReplayServer(_resolve(source, test_path), **options)
        server.start()
        started.append((server, check))
        return server

    yield factory
    for server, _ in started:
        if server.is_running():
            server.stop()
    for server, check in started:
        if check:
            server.check()
