"""Big fixtures are streamed from disk: a plain SSE body over ``STREAM_THRESHOLD`` is split into events
incrementally (the same pieces as ``split_body``, whatever the read block size), replayed to stdout, parsed
and served byte for byte while the process's peak memory grows by a small fraction of the file size, and a
client that leaves mid-stream leaves no open file behind."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from sse_toolkit import ReplayServer, load_fixture
from sse_toolkit.fixture._io import (
    STREAM_THRESHOLD,
    iter_sse_pieces,
    preview,
    split_body,
)

MiB = 1024 * 1024
EVENT = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "'
    + b"x" * 3900
    + b'"}], "role": "model"}}]}\r\n\r\n'
)
# Runs a console script in-process and prints its peak RSS (VmHWM) to stderr on exit.
_HWM = """
import atexit, sys
def report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            sys.stderr.write(line)
atexit.register(report)
from sse_toolkit.cli import main, replay_main
command = sys.argv.pop(1)
(replay_main if command == "sse-replay" else main)(prog_name=command)
"""


def write_big(path: pathlib.Path, size: int) -> pathlib.Path:
    with open(path, "wb") as file:
        file.writelines(EVENT for _ in range(size // len(EVENT) + 1))
    return path


def peak_kib(*args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _HWM, *args], capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stderr.decode().splitlines() if x.startswith("VmHWM")][-1]
    return int(line.split()[1])


def vm_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise AssertionError(field)


_PARTS = st.sampled_from(
    [b"data: a", b"\r", b"\n", b"\r\n", b":c", b"event: e", b"x", b"\xc3\xa9", b"\n\n", b"\r\r"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PARTS, max_size=40), st.integers(1, 9))
def test_streamed_split_gives_the_pieces_of_split_body_for_any_block_size(
    parts: list[bytes], block: int
) -> None:
    body = b"".join(parts)
    with tempfile.NamedTemporaryFile(suffix=".sse") as file:
        file.write(body)
        file.flush()
        assert list(iter_sse_pieces(file.name, block)) == split_body(body)


def test_a_big_plain_body_loads_lazily_and_serves_byte_for_byte(tmp_path: pathlib.Path) -> None:
    path = write_big(tmp_path / "big.sse", STREAM_THRESHOLD + MiB)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    exchange = load_fixture(path).exchanges[0]
    assert not isinstance(exchange.chunks, list)  # read from disk on each iteration
    assert 64 * 1024 <= len(preview(exchange).body) < 128 * 1024
    assert next(iter(exchange.chunks)).data == EVENT
    with ReplayServer(path, speed=0) as server:
        fds_before = len(os.listdir("/proc/self/fd"))
        # The loaded fixtures read the file through descriptors held from load (no reopening by path).
        held = _fds_on(path)
        # Served as the generic stream and as a Gemini stream (it names no model: the only fixture).
        for target in ("/big", "/v1beta/models/any:streamGenerateContent?alt=sse"):
            hasher = hashlib.sha256()
            with httpx.stream("POST", server.url + target, content=b"{}", timeout=60) as response:
                assert response.status_code == 200
                for data in response.iter_raw():
                    hasher.update(data)
            assert hasher.hexdigest() == digest
        # Clients that leave mid-stream: nothing they opened stays open.
        for _ in range(5):
            with httpx.stream("GET", server.url + "/big", timeout=60) as response:
                next(response.iter_raw())
        deadline = time.monotonic() + 5
        while len(os.listdir("/proc/self/fd")) > fds_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir("/proc/self/fd")) <= fds_before
        assert _fds_on(path) == held
        server.check()


def _fds_on(path: pathlib.Path) -> int:
    """How many of this process's descriptors are open on ``path``."""
    return sum(1 for f in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{f}") == str(path))


def test_replaying_parsing_and_serving_a_big_file_keeps_memory_flat(tmp_path: pathlib.Path) -> None:
    size = 80 * MiB
    big = write_big(tmp_path / "big.sse", size)
    small = tmp_path / "small.sse"
    small.write_bytes(EVENT * 3)
    bound = size // 1024 // 4  # growth well under the file size: a quarter of it, in KiB
    for command in (["sse-replay", "--speed", "0"], ["sse-toolkit", "parse"]):
        baseline = peak_kib(*command, str(small))
        peak = peak_kib(*command, str(big))
        print(f"{command[0]}: peak RSS {baseline} KiB for 12 KB, {peak} KiB for {size // MiB} MiB")
        assert peak - baseline < bound, (command, baseline, peak)
    # A served stream, read by curl: the server's own peak memory.
    script = "from sse_toolkit.cli import replay_main; replay_main(prog_name='sse-replay')"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "--serve", "--speed", "0", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        before = vm_kib(proc.pid, "VmHWM")
        result = subprocess.run(
            ["curl", "-sS", "-o", os.devnull, "-w", "%{size_download}", url + "/big"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert int(result.stdout) == big.stat().st_size
        peak = vm_kib(proc.pid, "VmHWM")
        print(f"sse-replay --serve: peak RSS {before} KiB before, {peak} KiB after serving {size // MiB} MiB")
        assert peak - before < bound
    finally:
        proc.terminate()
        proc.wait(10)
