"""``sse-toolkit stats`` and ``fixture_stats``: the numbers of a fixture, exact for timed fixtures built here,
``null``/"unknown" (never invented) for untimed ones, and the ``--plot`` timeline."""

from __future__ import annotations

import pathlib
import statistics
import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit import (
    Chunk,
    Exchange,
    Fixture,
    GeminiScript,
    RecordedRequest,
    fixture_stats,
    load_fixture,
    save_fixture,
)
from sse_toolkit._cli import main
from sse_toolkit._fixture_stats import percentile

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
TEXT_STOP = FIXTURES / "wyoming.sse"  # byte for byte the capture text-stop.sse: 3 events, untimed
MIDSTREAM_ERROR = FIXTURES / "midstream-error.sse"  # the capture error-midstream-503.sse


def gemini_event(text: str | None, candidates: int | None = None, thoughts: int | None = None) -> bytes:
    """One Gemini SSE event in the API's byte style, with running usage totals."""
    response: dict[str, object] = {}
    if text is not None:
        response["candidates"] = [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}]
    usage: dict[str, int] = {"promptTokenCount": 5}
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    response["usageMetadata"] = usage
    response["modelVersion"] = "gemini-2.5-flash"
    return b"data: " + orjson.dumps(response) + b"\r\n\r\n"


def timed_gemini_exchange() -> Exchange:
    """Four events; the second is split over two chunks (it arrives with the later one); the first has no
    text, so the first token is the second event's."""
    e1 = gemini_event("", thoughts=20)
    e2 = gemini_event("Hello", candidates=2, thoughts=20)
    e3 = gemini_event(" there", candidates=4, thoughts=20)
    e4 = gemini_event(" friend", candidates=6, thoughts=20)
    chunks = [
        Chunk(e1, 0.200),
        Chunk(e2[:10], 0.250),
        Chunk(e2[10:], 0.300),  # event 2 completes here: 100 ms after event 1
        Chunk(e3, 0.500),  # 200 ms
        Chunk(e4, 1.000),  # 500 ms
    ]
    return Exchange(
        request=RecordedRequest("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "alt=sse"),
        headers=[("Content-Type", "text/event-stream")],
        chunks=chunks,
        head_t=0.150,
    )


def run_stats(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["stats", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def timed_fixture(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "timed.jsonl"
    save_fixture(path, Fixture([timed_gemini_exchange()], source="built in test_stats"))
    return path


def test_json_gives_the_documented_numbers_of_a_timed_gemini_stream(timed_fixture: pathlib.Path) -> None:
    code, out, err = run_stats("--json", str(timed_fixture))
    assert code == 0, err
    data = orjson.loads(out)
    assert {"events", "bytes", "duration_s", "ttfb_ms", "gaps_ms", "tokens_per_s"} <= data.keys()
    assert data["events"] == 4
    assert data["bytes"] == len(load_fixture(timed_fixture).exchanges[0].body)
    assert data["duration_s"] == 1.0
    assert data["ttfb_ms"] == 150.0  # the head's time, not the first chunk's
    assert data["ttft_ms"] == 300.0  # the first event with text completes at 0.300
    # gaps 100, 200, 500 ms; linear interpolation between ranks
    assert data["gaps_ms"] == {"p50": 200.0, "p90": 440.0, "p99": 494.0, "max": 500.0}
    assert data["tokens"] == 26  # candidates 6 + thoughts 20 of the last event
    assert data["tokens_per_s"] == 26.0  # over the 1.0 s from request to last event
    assert data["timed"] is True
    [exchange] = data["exchanges"]
    assert exchange["gemini"] is True and exchange["format"] == "sse" and exchange["error"] is None
    assert exchange["path"].endswith(":streamGenerateContent")


def test_time_to_first_byte_is_the_first_chunk_when_the_head_time_is_missing() -> None:
    exchange = timed_gemini_exchange()
    exchange.head_t = None
    stats = fixture_stats(Fixture([exchange])).to_dict()
    assert stats["ttfb_ms"] == 200.0


def test_an_untimed_fixture_reports_timing_as_unknown_not_invented() -> None:
    stats = fixture_stats(load_fixture(TEXT_STOP)).to_dict()
    assert stats["timed"] is False
    assert (stats["events"], stats["bytes"], stats["tokens"]) == (3, 882, 10)
    assert stats["duration_s"] is None and stats["ttfb_ms"] is None and stats["ttft_ms"] is None
    assert stats["gaps_ms"] == {"p50": None, "p90": None, "p99": None, "max": None}
    assert stats["tokens_per_s"] is None


def test_the_human_form_is_an_aligned_table_saying_unknown_for_untimed() -> None:
    code, out, _ = run_stats(str(TEXT_STOP))
    assert code == 0
    lines = out.splitlines()
    values = {line[:22].strip(): line[22:] for line in lines}
    assert values["events"] == "3"
    assert values["bytes"] == "882"
    assert values["tokens"] == "10"
    assert values["duration"] == "unknown (no recorded times)"
    assert values["first byte"] == values["tokens/s"] == "unknown"
    assert len({len(line) - len(line[22:]) for line in lines}) == 1  # one value column


def test_the_human_form_of_a_timed_fixture(timed_fixture: pathlib.Path) -> None:
    code, out, _ = run_stats(str(timed_fixture))
    assert code == 0
    assert "gaps p50/p90/p99/max  200.0 / 440.0 / 494.0 / 500.0 ms" in out
    assert "first token           300.0 ms" in out
    assert "tokens/s              26.0" in out


def test_a_generic_event_stream_has_no_tokens_and_first_token_is_the_first_event_with_data() -> None:
    chunks = [
        Chunk(b"retry: 3000\n\n", 0.1),  # no data: no event
        Chunk(b"event: quote\ndata: \n\n", 0.2),  # an event with empty data: not a token
        Chunk(b'event: quote\ndata: {"price": 1}\n\n', 0.35),
        Chunk(b"data: plain text, not JSON\n\n", 0.4),
    ]
    stats = fixture_stats(Fixture([Exchange(chunks=chunks, head_t=0.05)])).to_dict()
    assert stats["events"] == 3
    assert stats["ttft_ms"] == 350.0
    assert stats["tokens"] is None and stats["tokens_per_s"] is None
    [exchange] = stats["exchanges"]
    assert exchange["gemini"] is False and exchange["error"] is None  # not Gemini is no error
    assert stats["gaps_ms"]["max"] == pytest.approx(150.0)


def test_a_json_array_stream_counts_responses_arriving_when_their_object_closes() -> None:
    body = b'[{"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": {"candidatesTokenCount": 1}}'
    body2 = b',\r\n{"candidates": [{"content": {"parts": [{"text": "b"}]}}], "usageMetadata": {"candidatesTokenCount": 3}}]'
    chunks = [Chunk(body[:30], 0.1), Chunk(body[30:], 0.4), Chunk(body2, 0.9)]
    exchange = Exchange(headers=[("Content-Type", "application/json")], chunks=chunks, head_t=0.05)
    stats = fixture_stats(Fixture([exchange])).to_dict()
    assert stats["events"] == 2
    assert stats["exchanges"][0]["format"] == "json-array"
    assert stats["ttft_ms"] == 400.0
    assert stats["gaps_ms"]["max"] == 500.0
    assert stats["tokens"] == 3
    assert stats["tokens_per_s"] == pytest.approx(3 / 0.9, abs=0.01)


def test_a_mid_stream_error_is_reported_with_the_events_before_it() -> None:
    stats = fixture_stats(load_fixture(MIDSTREAM_ERROR)).to_dict()
    assert stats["events"] == 2
    assert stats["errors"] == 1
    assert "503" in stats["exchanges"][0]["error"]
    code, out, _ = run_stats(str(MIDSTREAM_ERROR))
    assert code == 0
    assert any(line.startswith("error ") and "503" in line for line in out.splitlines())


def test_several_exchanges_sum_and_pool_and_list_each(tmp_path: pathlib.Path) -> None:
    second = GeminiScript().text("one two three").usage(candidates=9).to_exchange(pace=0.25)
    path = tmp_path / "two.jsonl"
    save_fixture(path, Fixture([timed_gemini_exchange(), second]))
    data = orjson.loads(run_stats("--json", str(path))[1])
    assert data["exchanges_count"] == 2
    assert data["events"] == 4 + 3
    assert data["duration_s"] == 1.0 + 0.75
    assert data["ttfb_ms"] == 150.0  # the first exchange's
    assert data["gaps_ms"]["p50"] == 250.0  # pooled: 100, 200, 500, 250, 250
    assert data["tokens"] == 26 + 9
    assert data["tokens_per_s"] == pytest.approx(35 / 1.75, abs=0.01)
    out = run_stats(str(path))[1]
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["#", "status", "events"]
    assert [row.split()[:3] for row in table[1:]] == [["1", "200", "4"], ["2", "200", "3"]]


def test_scripted_fixture_tokens_per_second_is_tokens_over_the_time_to_the_last_event(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "scripted.jsonl"
    GeminiScript().thought("hmm").text("a b c d").usage(candidates=8, thoughts=12).save(path, pace=0.1)
    data = orjson.loads(run_stats("--json", str(path))[1])
    assert data["events"] == 5
    assert data["ttft_ms"] == 100.0  # a thought summary is generated text too
    assert data["tokens"] == 20
    assert data["tokens_per_s"] == pytest.approx(20 / 0.5)
    assert data["gaps_ms"] == {"p50": 100.0, "p90": 100.0, "p99": 100.0, "max": 100.0}


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=50))
def test_percentiles_match_the_standard_library_linear_method(values: list[float]) -> None:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for p in (50, 90, 99):
        assert percentile(values, p) == pytest.approx(cuts[p - 1], rel=1e-9, abs=1e-6)
    assert percentile(values, 100) == max(values)


def test_a_damaged_fixture_is_one_line_and_exit_1(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"sse_toolkit_fixture": 1}\n{"response": {"status": "x"}}\n')
    code, out, err = run_stats(str(path))
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "broken.jsonl:2" in err


# -- --plot ----------------------------------------------------------------------------------------------


def test_plot_draws_a_png_and_an_svg_timeline(timed_fixture: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    assert run_stats("--plot", str(png), str(timed_fixture))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    code, out, _ = run_stats("--json", "--plot", str(svg), str(timed_fixture))
    assert code == 0 and orjson.loads(out)["events"] == 4  # --plot goes with --json
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text


def test_plot_of_an_untimed_fixture_is_drawn_against_event_numbers(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    svg = tmp_path / "u.svg"
    assert run_stats("--plot", str(svg), str(TEXT_STOP))[0] == 0
    assert svg.stat().st_size > 5_000


def test_plot_with_an_unknown_suffix_is_a_one_line_error(timed_fixture: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = run_stats("--plot", str(tmp_path / "t.nope"), str(timed_fixture))
    assert code == 1
    assert len(err.splitlines()) == 1 and ".svg or .png" in err


def test_plot_without_matplotlib_names_the_extra_to_install(timed_fixture: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # A real process in which importing matplotlib fails, as on an install without the extra.
    script = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
        "from sse_toolkit._cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "stats", "--plot", str(tmp_path / "t.png"), str(timed_fixture)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert 'pip install "sse-toolkit[plot]"' in result.stderr
    assert not (tmp_path / "t.png").exists()
