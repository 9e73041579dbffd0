"""Fixtures of the framework tests: replay servers of the shipped fixtures and of current-shape recordings
(helpers in ``_frameworks``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _frameworks import FIXTURES, Served, record_captures, served_fixtures, served_recordings

from sse_toolkit import ReplayServer


@pytest.fixture
def fixtures_server() -> Iterator[ReplayServer]:
    """``sse-replay --serve fixtures/``, in process, without delays."""
    with ReplayServer(FIXTURES, speed=0) as server:
        yield server


@pytest.fixture
def cats_server() -> Iterator[ReplayServer]:
    """A server with ``cats.jsonl`` alone: every model name gets the cat story."""
    with ReplayServer(FIXTURES / "cats.jsonl", speed=0) as server:
        yield server


@pytest.fixture(scope="session")
def recordings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of recordings in the recorded format, made once per session (``record_captures``)."""
    return record_captures(tmp_path_factory.mktemp("recordings"))


@pytest.fixture
def recordings_server(recordings_dir: Path) -> Iterator[ReplayServer]:
    """``sse-replay --serve`` of the recordings directory, without delays."""
    with ReplayServer(recordings_dir, speed=0) as server:
        yield server


@pytest.fixture(params=["fixtures", "recordings"])
def served(request: pytest.FixtureRequest, recordings_dir: Path) -> Iterator[Served]:
    """Each framework test runs on the shipped fixtures and on the recordings directory."""
    if request.param == "fixtures":
        with ReplayServer(FIXTURES, speed=0) as server:
            yield served_fixtures(server)
    else:
        with ReplayServer(recordings_dir, speed=0) as server:
            yield served_recordings(server)
