"""Writing recordings (issue 13, items 7, 9 and 12): each exchange is appended (the tee appends each chunk),
so a ``kill -9`` keeps what was received and an exchange costs its own size; leftovers of a crash are
removed at the next start; every write failure is reported, also one in the last instant before a
signal, and the exit status says so; one failed write does not make the later ones fail; at shutdown
one line says how many exchanges the file holds and how many were cut.

Write failures are real: the recorder runs in a child process whose file size limit (``RLIMIT_FSIZE``)
is below what one exchange needs, so the kernel refuses the write (EFBIG), as a full disk would.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest
from _in_flight import streaming_request
from _record_upstream import Script, Upstream

from sse_toolkit import End, load_fixture
from sse_toolkit.fixture import FixtureWarning
from sse_toolkit.fixture._jsonl import dump_exchange
from sse_toolkit.record._proxy import RecordingProxy

SSE_RECORD = str(Path(sys.executable).parent / "sse-record")
EVENT = b'data: {"n": 1}\r\n\r\n'
BIG = b"data: " + b"x" * 20_000 + b"\r\n\r\n"


def _wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _proxy_process(
    upstream: str, out: Path, file_limit: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    process = subprocess.Popen(
        [SSE_RECORD, "--upstream", upstream, "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().decode().strip()


def _load_quietly(path: Path):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixtureWarning)
        return load_fixture(path)


# -- append-only ---------------------------------------------------------------------------------------


def test_each_exchange_is_appended_to_the_same_file_without_rewriting_it(tmp_path) -> None:
    out = tmp_path / "append.jsonl"
    with Upstream(Script([(0, EVENT)])) as up, RecordingProxy(up.url, out) as proxy, httpx.Client() as client:
        client.get(proxy.url + "/0")
        inode, before = out.stat().st_ino, out.read_bytes()
        for n in range(1, 6):
            client.get(proxy.url + f"/{n}")
            after = out.read_bytes()
            assert out.stat().st_ino == inode  # the same file, not a new one put in its place
            assert after.startswith(before)  # nothing written before was touched
            added = load_fixture(out).exchanges[-1]
            assert after[len(before) :] == dump_exchange(added, n + 1)  # it grew by this exchange alone
            before = after
        assert proxy.exchange_count == 6


def test_kill_9_of_the_proxy_keeps_every_exchange_that_ended(tmp_path) -> None:
    out = tmp_path / "killed.jsonl"
    with Upstream(Script([(0, EVENT)])) as up:
        process, url = _proxy_process(up.url, out)
        try:
            for n in range(3):
                assert httpx.get(f"{url}/{n}").content == EVENT
        finally:
            process.kill()
            process.communicate(timeout=10)
    fixture = load_fixture(out)
    assert [ex.request.path for ex in fixture.exchanges if ex.request] == ["/0", "/1", "/2"]
    assert fixture.truncated is None


def test_kill_9_of_the_tee_keeps_every_chunk_received(tmp_path) -> None:
    out = tmp_path / "tee.jsonl"
    process = subprocess.Popen(
        [SSE_RECORD, "--out", str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    events = [b"data: %d\r\n\r\n" % n for n in range(5)]
    try:
        for event in events:
            process.stdin.write(event)
            process.stdin.flush()
            assert process.stdout.read(len(event)) == event  # passed on at once
            time.sleep(0.01)  # separate reads: one chunk each
        _wait_for(lambda: out.exists() and _load_quietly(out).exchanges[0].body == b"".join(events))
    finally:
        process.kill()
        process.communicate(timeout=10)
    with pytest.warns(FixtureWarning, match="ends inside exchange 1"):
        fixture = load_fixture(out)
    exchange = fixture.exchanges[0]
    assert exchange.body == b"".join(events)
    assert exchange.end == End.RESET and exchange.timed
    assert fixture.truncated is not None and "a recording cut short" in fixture.truncated


@pytest.mark.parametrize("mode", ["proxy", "tee"])
def test_temporary_files_a_crash_left_are_removed_at_the_next_start_and_reported(tmp_path, mode: str) -> None:
    out = tmp_path / "rec.jsonl"
    leftover = tmp_path / ".rec.jsonl.0badc0de.tmp"
    leftover.write_bytes(b"x" * 1000)
    unrelated = tmp_path / ".other.jsonl.0badc0de.tmp"
    unrelated.write_bytes(b"y")
    if mode == "tee":
        result = subprocess.run([SSE_RECORD, "--out", str(out)], input=EVENT, capture_output=True, timeout=30)
        err = result.stderr
        assert result.returncode == 0, err
    else:
        with Upstream() as up:
            process, _ = _proxy_process(up.url, out)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=10)
    assert not leftover.exists()
    assert unrelated.exists()
    assert f"removed {leftover} (1000 bytes), a temporary file left by an earlier crash".encode() in err


# -- failures reported -----------------------------------------------------------------------------------


def test_a_write_failing_in_the_last_instant_is_reported_and_the_exit_status_is_1(tmp_path) -> None:
    out = tmp_path / "full.jsonl"
    with Upstream(Script([(0, BIG)])) as up:
        process, url = _proxy_process(up.url, out, file_limit=4096)
        assert httpx.get(url + "/big").content == BIG  # the client got everything...
        process.send_signal(signal.SIGTERM)  # ...and the recorder is stopped at once
        _, err = process.communicate(timeout=10)
    text = err.decode()
    assert process.returncode == 1, text
    assert "sse-record: error: cannot write" in text
    assert "1 exchanges could not be written" in text  # retried at the stop, then given up
    assert text.rstrip().splitlines()[-1].startswith("sse-record: 0 exchanges in")


def test_every_write_failure_is_reported_not_one_per_poll(tmp_path) -> None:
    out = tmp_path / "full.jsonl"
    with Upstream(Script([(0, BIG)])) as up:
        process, url = _proxy_process(up.url, out, file_limit=4096)
        with httpx.Client() as client:
            for n in range(20):
                client.get(f"{url}/{n}")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    text = err.decode()
    assert process.returncode == 1
    assert text.count("sse-record: error: cannot write") == 20
    assert "20 exchanges could not be written" in text


def test_after_a_failed_write_the_later_exchanges_are_written(tmp_path) -> None:
    out = tmp_path / "partly.jsonl"
    with Upstream(Script([(0, BIG)]), Script([(0, EVENT)])) as up:
        process, url = _proxy_process(up.url, out, file_limit=4096)
        with httpx.Client() as client:
            for n in range(4):  # the first is too big for the file; the three after it fit
                client.get(f"{url}/{n}")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 1
    fixture = load_fixture(out)
    assert [ex.request.path for ex in fixture.exchanges if ex.request] == ["/1", "/2", "/3"]
    assert b"could not be written" in err and b"GET /0" in err
    assert err.rstrip().splitlines()[-1].startswith(b"sse-record: 3 exchanges in")


def test_the_shutdown_line_counts_the_exchanges_and_the_one_cut_in_flight(tmp_path) -> None:
    out = tmp_path / "summary.jsonl"
    with Upstream(Script([(0, EVENT)]), Script([(0, EVENT)], end="hang")) as up:
        process, url = _proxy_process(up.url, out)
        httpx.get(url + "/done")
        with streaming_request("GET", url + "/hangs"):
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    last = err.decode().rstrip().splitlines()[-1]
    assert last == f"sse-record: 1 exchange in {out}; 1 still streaming when stopped, not recorded"


def test_a_tee_whose_writes_fail_still_copies_everything_and_exits_1(tmp_path) -> None:
    out = tmp_path / "tee-full.jsonl"
    body = b"".join(b"data: %d %s\r\n\r\n" % (n, b"y" * 1000) for n in range(20))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = subprocess.run(
        [SSE_RECORD, "--out", str(out)], input=body, capture_output=True, timeout=30, preexec_fn=limit
    )
    assert result.stdout == body  # the pipe was never held up
    assert result.returncode == 1
    assert b"cannot write the recording" in result.stderr and b"Traceback" not in result.stderr


def test_proxy_check_and_take_errors_give_every_error_once(tmp_path) -> None:
    out = tmp_path / "blocked"
    with Upstream(Script([(0, EVENT)])) as up, RecordingProxy(up.url, out) as proxy:
        out.mkdir()  # the fixture path is a directory: every write fails
        for n in range(3):
            httpx.get(f"{proxy.url}/{n}")
        errors = proxy.take_errors()
        assert len(errors) == 3 and all("cannot write" in str(e) for e in errors)
        assert proxy.take_errors() == []
        out.rmdir()
        httpx.get(f"{proxy.url}/3")  # the three waiting exchanges go in first
        proxy.check()
    assert [ex.request.path for ex in load_fixture(out).exchanges if ex.request] == ["/0", "/1", "/2", "/3"]


def test_a_fixture_removed_while_recording_is_written_again(tmp_path) -> None:
    out = tmp_path / "removed.jsonl"
    lines: list[str] = []
    with Upstream(Script([(0, EVENT)])) as up, RecordingProxy(up.url, out, log=lines.append) as proxy:
        httpx.get(proxy.url + "/a")
        os.unlink(out)
        httpx.get(proxy.url + "/b")
        proxy.check()
    assert [ex.request.path for ex in load_fixture(out).exchanges if ex.request] == ["/a", "/b"]
    assert any("removed or replaced while recording" in line for line in lines)


@pytest.fixture
def small_disk(tmp_path):  # type: ignore[no-untyped-def]
    """A 64 KiB filesystem (tmpfs), where a full disk is real; skipped where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_with_no_room_to_rewrite_a_credential_learnt_later_is_overwritten_in_place(small_disk) -> None:
    key = "AIzaSyNO-ROOM-key-0123456789abcdefgh"
    out = small_disk / "full.jsonl"
    echo = Script([(0, b"data: " + b"z" * 40_000 + b" " + key.encode() + b"\r\n\r\n")])
    with (
        Upstream(echo, Script([(0, EVENT)])) as up,
        RecordingProxy(up.url, out) as proxy,
        httpx.Client() as client,
    ):
        client.get(proxy.url + "/first")  # the key unlabelled, in a body too big to copy on this disk
        assert key.encode() in out.read_bytes()
        client.get(proxy.url + "/second", params={"key": key})  # now it is a credential
        assert key.encode() not in out.read_bytes()
        errors = proxy.take_errors()
        assert (
            len(errors) == 1 and "cannot rewrite" in str(errors[0]) and "with '*' in place" in str(errors[0])
        )
        client.get(proxy.url + "/third")
        assert proxy.take_errors() == []  # reported once, not again at each retry
    fixture = load_fixture(out)
    assert [ex.request.path for ex in fixture.exchanges if ex.request] == ["/first", "/second", "/third"]
    assert fixture.exchanges[0].body.endswith(b" " + b"*" * len(key) + b"\r\n\r\n")
