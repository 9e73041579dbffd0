"""Every file shipped in fixtures/ loads, keeps its bytes, round-trips, and is what fixtures/README.md says."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sse_toolkit import (
    GeminiAPIError,
    dumps_fixture,
    iter_responses,
    load_fixture,
    loads_fixture,
    merge_responses,
    parse,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = sorted(path for path in FIXTURES.iterdir() if path.suffix in (".sse", ".json", ".http", ".jsonl"))
GEMINI = [path for path in FILES if path.name != "ticker.sse"]


def test_the_fixture_directory_is_not_empty_and_every_file_is_documented() -> None:
    readme = (FIXTURES / "README.md").read_text()
    assert len(FILES) >= 8
    for path in FILES:
        assert f"`{path.name}`" in readme, f"{path.name} is not described in fixtures/README.md"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fixture_loads_and_round_trips(path: Path) -> None:
    fixture = load_fixture(path)
    assert fixture.exchanges
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        assert dumps_fixture(fixture) == data  # written by dumps_fixture, and stable
    else:
        # A plain body or curl -i output: the body is kept byte for byte after the heads.
        assert data.endswith(fixture.exchanges[0].body) and fixture.exchanges[0].body
        assert fixture.source == str(path)
    assert loads_fixture(dumps_fixture(fixture), fixture.source) == fixture


@pytest.mark.parametrize("path", GEMINI, ids=lambda p: p.name)
def test_gemini_fixture_is_read_by_our_gemini_layer(path: Path) -> None:
    chunks = [chunk.data for exchange in load_fixture(path).exchanges for chunk in exchange.chunks]
    responses = []
    try:
        for response in iter_responses(chunks):
            responses.append(response)
    except GeminiAPIError as error:
        assert path.name in ("midstream-error.sse", "quota-429.http")
        assert error.code in (503, 429)
    else:
        merged = merge_responses(responses, strict=True)
        assert merged.candidates[0].finish_reason == "STOP"


def test_cats_is_the_quickstarts_printed_story_framed_with_crlf() -> None:
    data = (FIXTURES / "cats.sse").read_bytes()
    seed = (FIXTURES.parent.parent / "shared" / "seed" / "gemini-streaming-rest-quickstart.txt")
    assert data.startswith(b'data: {"candidates": [{"content": {"parts": [{"text": "In the quaint, sunlit cottage')
    assert data.endswith(b"\r\n\r\n") and data.count(b"\r\n\r\n") == 2 and data.count(b"\n") == 4
    first, second = parse(data)
    texts = [event.json()["candidates"][0]["content"]["parts"][0]["text"] for event in (first, second)]
    assert texts == [
        "In the quaint, sunlit cottage nestled amidst a lush meadow, resided two feline",
        " companions named Mittens and Whiskers. Mittens, with her silky black fur and piercing green eyes, possessed an ",
    ]
    if seed.is_file():  # the first event's line is the notebook's printed line, byte for byte
        assert data.split(b"\r\n")[0] in seed.read_bytes().split(b"\n")


def test_ticker_is_a_generic_stream_with_named_events_and_ids() -> None:
    events = parse((FIXTURES / "ticker.sse").read_bytes())
    assert [(e.event, e.id) for e in events] == [("quote", "1"), ("quote", "2"), ("news", "3"), ("quote", "4")]
    assert events[2].data == "ACME opens a new factory.\nShares are up 2% today."
    assert json.loads(events[0].data) == {"symbol": "ACME", "price": 101.25}


def test_quota_429_has_its_status_from_the_curl_head() -> None:
    exchange = load_fixture(FIXTURES / "quota-429.http").exchanges[0]
    assert exchange.status == 429
    assert exchange.header("content-type") == "application/json; charset=UTF-8"


def test_scripted_fixtures_are_what_build_py_makes() -> None:
    spec = importlib.util.spec_from_file_location("fixtures_build", FIXTURES / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, fixture in build.scripted().items():
        assert (FIXTURES / name).read_bytes() == dumps_fixture(fixture), f"run python fixtures/build.py ({name})"
