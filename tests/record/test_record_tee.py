"""The tee, ``CMD | sse-record --out FILE``: stdin reaches stdout unchanged and at once, and the recording
keeps the bytes, their timing (+-50 ms), ``curl -i`` status and headers (redacted), and breaks."""

from __future__ import annotations

import itertools
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _record_upstream import Script, Upstream
from click.testing import CliRunner

from sse_toolkit import End, load_fixture
from sse_toolkit.cli import record_main
from sse_toolkit.fixture._redact import REDACTED, Redactor
from sse_toolkit.record._tee import REDACT_WINDOW, record_tee

SSE_RECORD = str(Path(sys.executable).parent / "sse-record")
EVENTS = [b"data: one\r\n\r\n", b"data: two\r\n\r\n", b"data: three\r\n\r\n", b"data: four\r\n\r\n"]
CURL_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nSet-Cookie: sid=tee-cookie-secret-1; Path=/\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _read_exactly(fd: int, size: int, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        piece = os.read(fd, size - len(data))
        if not piece:
            break
        data += piece
    return data


def _tee(out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SSE_RECORD, "--out", str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _feed_live(process: subprocess.Popen[bytes], pieces: list[tuple[float, bytes]]) -> list[float]:
    """Write each piece after its delay and insist it is on stdout before the next one is written."""
    assert process.stdin is not None and process.stdout is not None
    sent = []
    for delay, piece in pieces:
        time.sleep(delay)
        sent.append(time.monotonic())
        process.stdin.write(piece)
        process.stdin.flush()
        assert _read_exactly(process.stdout.fileno(), len(piece)) == piece
    return sent


def test_tee_copies_each_piece_at_once_and_records_bytes_and_gaps(tmp_path) -> None:
    out = tmp_path / "tee.jsonl"
    process = _tee(out)
    delays = [0.0, 0.15, 0.05, 0.1]
    sent = _feed_live(process, list(zip(delays, EVENTS, strict=False)))
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == b"".join(EVENTS)
    assert [chunk.data for chunk in exchange.chunks] == EVENTS
    assert exchange.end == End.COMPLETE and exchange.request is None
    # From the second piece on: the first was written while the tee was still starting up.
    times = [chunk.t for chunk in exchange.chunks][1:]
    sent = sent[1:]
    for recorded, expected in zip(
        [b - a for a, b in itertools.pairwise(times)],
        [b - a for a, b in itertools.pairwise(sent)],
        strict=False,
    ):
        assert abs(recorded - expected) <= 0.05
    assert b"4 chunks" in err


def test_curl_i_heads_are_recorded_as_status_and_headers_and_passed_through(tmp_path) -> None:
    out = tmp_path / "heads.jsonl"
    process = _tee(out)
    _feed_live(
        process, [(0, b"HTTP/1.1 100 Continue\r\n\r\n" + CURL_HEAD), (0.05, EVENTS[0]), (0.05, EVENTS[1])]
    )
    process.communicate(timeout=10)
    exchange = load_fixture(out).exchanges[0]
    assert (exchange.status, exchange.reason) == (200, "OK")
    assert exchange.header("Content-Type") == "text/event-stream"
    assert exchange.header("Set-Cookie") == f"sid={REDACTED}; Path=/"
    assert exchange.header("Transfer-Encoding") is None  # curl already removed the chunking
    assert exchange.body == EVENTS[0] + EVENTS[1]
    assert exchange.head_t is not None and exchange.head_t <= exchange.chunks[0].t
    assert b"tee-cookie-secret-1" not in out.read_bytes()


def test_a_body_shorter_than_content_length_is_recorded_as_a_break(tmp_path) -> None:
    head = b"HTTP/2 200\r\ncontent-type: text/event-stream\r\ncontent-length: 1000\r\n\r\n"
    result = CliRunner().invoke(record_main, ["--out", str(tmp_path / "short.jsonl")], input=head + EVENTS[0])
    assert result.exit_code == 0, result.output
    exchange = load_fixture(tmp_path / "short.jsonl").exchanges[0]
    assert (exchange.body, exchange.end) == (EVENTS[0], End.RESET)


def test_a_tee_into_a_file_named_sse_warns_in_one_line_and_still_records(tmp_path) -> None:
    body = EVENTS[0] + EVENTS[1]
    named_sse = tmp_path / "story.SSE"
    result = subprocess.run(
        [SSE_RECORD, "--out", str(named_sse)], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == body  # the tee's copy is untouched by the warning
    warnings = [line for line in result.stderr.decode().splitlines() if "warning" in line]
    assert warnings == [
        f"sse-record: warning: {named_sse} holds the recorded JSON Lines format, not a plain SSE body; "
        "name it .jsonl"
    ]
    assert load_fixture(named_sse).exchanges[0].body == body
    named_jsonl = tmp_path / "story.jsonl"
    quiet = subprocess.run(
        [SSE_RECORD, "--out", str(named_jsonl)], input=body, capture_output=True, timeout=30, check=False
    )
    assert quiet.returncode == 0 and b"warning" not in quiet.stderr, quiet.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_tee_keeps_what_came_as_a_break(tmp_path, sig: int) -> None:
    out = tmp_path / "cut.jsonl"
    process = _tee(out)
    _feed_live(process, [(0, EVENTS[0]), (0.02, EVENTS[1])])
    process.send_signal(sig)
    process.wait(timeout=30)  # stdin still open: closing it first could end the stream before the signal
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    exchange = load_fixture(out).exchanges[0]
    assert (exchange.body, exchange.end) == (EVENTS[0] + EVENTS[1], End.RESET)


def _sleeping(tid: int) -> bool:
    """Whether thread ``tid`` of this process is blocked (state S in /proc)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "S"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to see the reader block")
def test_a_signal_another_thread_catches_ends_the_tee_without_waiting_for_input(tmp_path) -> None:
    # The kernel may hand a signal to any thread; its handler then waits for the main thread to come back
    # to the interpreter. A tee blocked reading an input that stays open never would (and a signal that
    # comes in the instant before the read blocks is the same case): the tee must wait so it can wake.
    src_r, src_w = os.pipe()
    echo_r, echo_w = os.pipe()
    main = threading.get_native_id()
    over = threading.Event()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    def signal_from_another_thread() -> None:
        os.write(src_w, EVENTS[0])
        assert _read_exactly(echo_r, len(EVENTS[0])) == EVENTS[0]
        deadline = time.monotonic() + 10
        while not _sleeping(main) and time.monotonic() < deadline:
            time.sleep(0.001)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # this thread runs the C handler
        if not over.wait(10):
            os.write(src_w, EVENTS[1])  # let a tee that did not wake see input, so the test fails, not hangs

    previous = signal.signal(signal.SIGUSR1, interrupt)
    helper = threading.Thread(target=signal_from_another_thread)
    try:
        with open(src_r, "rb") as src, open(echo_w, "wb") as dst:
            helper.start()
            start = time.monotonic()
            fixture = record_tee(src, dst, tmp_path / "cut.jsonl")
            took = time.monotonic() - start
    finally:
        over.set()
        helper.join()
        signal.signal(signal.SIGUSR1, previous)
        os.close(src_w)
        os.close(echo_r)
    assert took < 10
    assert (fixture.exchanges[0].body, fixture.exchanges[0].end) == (EVENTS[0], End.RESET)


def test_a_reader_that_leaves_does_not_stop_the_recording(tmp_path) -> None:
    out = tmp_path / "head.jsonl"
    body = b"".join(EVENTS) * 2000
    shell = f"printf '' | cat - {tmp_path / 'in'} | {SSE_RECORD} --out {out} | head -c 10 >/dev/null"
    (tmp_path / "in").write_bytes(body)
    subprocess.run(["sh", "-c", shell], check=True, timeout=20)
    assert load_fixture(out).exchanges[0].body == body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("include", [False, True], ids=["curl -N", "curl -i"])
def test_curl_piped_into_the_tee(tmp_path, include: bool) -> None:
    # Event 2 waits until event 1 came out of the tee, so the tee is surely running when the timed part
    # (a 0.2 s pause before event 3) flows.
    tee_is_live = threading.Event()
    script = Script([(0, EVENTS[0]), (0, EVENTS[1]), (0.2, EVENTS[2])], wait_for={1: tee_is_live})
    out = tmp_path / "curl.jsonl"
    with Upstream(script) as up:
        flags = "-sNi" if include else "-sN"
        process = subprocess.Popen(
            ["sh", "-c", f"curl {flags} {up.url}/stream | {SSE_RECORD} --out {out}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        seen = b""
        while not seen.endswith(EVENTS[0]) and (piece := process.stdout.read1(65536)):
            seen += piece
        tee_is_live.set()
        rest, err = process.communicate(timeout=20)
    stdout = seen + rest
    assert process.returncode == 0, err
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == script.body
    if include:
        assert stdout.startswith(b"HTTP/1.1 200 OK\r\n") and stdout.endswith(script.body)
        assert exchange.header("Content-Disposition") == "attachment"
    else:
        assert stdout == script.body
    assert [chunk.data for chunk in exchange.chunks][-2:] == EVENTS[1:3]
    last, before = exchange.chunks[-1].t, exchange.chunks[-2].t
    assert last is not None and before is not None
    assert abs(last - before - 0.2) <= 0.05  # the pause was recorded


def test_without_a_pipe_on_stdin_sse_record_is_a_proxy(tmp_path) -> None:
    # stdin is /dev/null (a background job): proxy mode, with the Gemini host as the default upstream,
    # which is never contacted because no request is made.
    process = subprocess.Popen(
        [SSE_RECORD, "--out", str(tmp_path / "p.jsonl")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith(b"http://127.0.0.1:")
    process.terminate()
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert not (tmp_path / "p.jsonl").exists()


# -- redaction while writing as it comes (issue 13, items 4 and 9) ---------------------------------------


class _Reads:
    """A source whose reads are ``pieces``; before each read after the first, ``check(n, file bytes)``
    looks at the recording, which the tee has then written for the ``n`` pieces before."""

    def __init__(self, pieces: list[bytes], out: Path, check) -> None:  # type: ignore[no-untyped-def]
        self.pieces = list(pieces)
        self.out = out
        self.check = check
        self.count = 0

    def read1(self, size: int = -1) -> bytes:
        if self.count:
            self.check(self.count, self.out.read_bytes() if self.out.exists() else b"")
        self.count += 1
        return self.pieces.pop(0) if self.pieces else b""

    read = read1


def test_the_tee_holds_back_a_chunk_that_ends_with_the_beginning_of_a_known_secret(tmp_path) -> None:
    cookie = "tee-cookie-value-0123456789"
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nSet-Cookie: sid={cookie}\r\n\r\n".encode()
    pieces = [
        head + b"data: one\r\n\r\n",
        b"data: echo " + cookie[:12].encode(),
        cookie[12:].encode() + b"\r\n\r\n",
    ]
    seen: dict[int, bytes] = {}
    out = tmp_path / "hold.jsonl"
    record_tee(_Reads(pieces, out, lambda n, data: seen.setdefault(n, data)), None, out)
    assert b"data: one" in seen[1]
    assert cookie[:12].encode() not in seen[2]  # held back: it might have been (and was) the cookie
    exchange = load_fixture(out).exchanges[0]
    assert exchange.body == f"data: one\r\n\r\ndata: echo {REDACTED}\r\n\r\n".encode()
    assert cookie.encode() not in out.read_bytes()


def test_a_match_that_reaches_into_chunks_already_written_rewrites_them(tmp_path) -> None:
    pieces = [b"data: tok-12345", b"67890 rest\r\n\r\n", b"data: after\r\n\r\n"]
    seen: dict[int, bytes] = {}
    out = tmp_path / "rewind.jsonl"
    record_tee(
        _Reads(pieces, out, lambda n, data: seen.setdefault(n, data)),
        None,
        out,
        redact=Redactor([r"tok-\d{10}"]),
    )
    assert b"tok-12345" in seen[1]  # not a match yet: written as it came
    assert (
        b"tok-12345" not in seen[2] and REDACTED.encode() in seen[2]
    )  # the match found: cut back, rewritten
    exchange = load_fixture(out).exchanges[0]
    assert [chunk.data for chunk in exchange.chunks] == [
        f"data: {REDACTED}".encode(),
        b" rest\r\n\r\n",
        b"data: after\r\n\r\n",
    ]


def test_a_match_longer_than_the_window_is_found_at_the_end(tmp_path) -> None:
    middle = b"m" * (3 * REDACT_WINDOW)
    body = b"data: BEGIN" + middle + b"END\r\n\r\n"
    pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    out = tmp_path / "long.jsonl"
    record_tee(_Reads(pieces, out, lambda n, data: None), None, out, redact=Redactor([r"BEGIN[^!]*END"]))
    assert load_fixture(out).exchanges[0].body == f"data: {REDACTED}\r\n\r\n".encode()
    assert b"BEGIN" not in out.read_bytes()
