"""The console scripts as a user runs them, on input they cannot read: a missing file or a directory is one
line on stderr, ``PROG: error: FILE: reason``, and exit status 1 (as docs/cli.md promises), never click's
usage message (exit 2) and never a traceback; each script names itself in its errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
TIMEOUT = 30  # seconds for one command: generous, a hang fails instead of blocking the suite
MISSING = "error: nosuch.sse: No such file or directory\n"


def script(name: str) -> str:
    """An installed console script (next to this interpreter in a venv, else on PATH)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"the {name} console script is not installed"
    return found


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL
    )


# Every command that reads a file named on its command line, with that file's place in the arguments.
FILE_COMMANDS = {
    "parse": ["sse-toolkit", "parse", "{}"],
    "text": ["sse-toolkit", "text", "{}"],
    "text --thoughts": ["sse-toolkit", "text", "--thoughts", "{}"],
    "json": ["sse-toolkit", "json", "{}"],
    "stats": ["sse-toolkit", "stats", "{}"],
    "stats --json": ["sse-toolkit", "stats", "--json", "{}"],
    "har export": ["sse-toolkit", "har", "export", "{}"],
    "har import": ["sse-toolkit", "har", "import", "{}", "--out", "out.sse"],
    "sse-replay": ["sse-replay", "{}"],
    "sse-replay --serve": ["sse-replay", "--serve", "{}"],
}


def _command(template: list[str], path: str) -> list[str]:
    return [script(template[0]), *(path if word == "{}" else word for word in template[1:])]


@pytest.mark.parametrize("template", FILE_COMMANDS.values(), ids=FILE_COMMANDS.keys())
def test_a_missing_file_is_one_line_naming_it_and_exit_1(template: list[str], tmp_path: Path) -> None:
    # The line docs/cli.md promises ("Exit status"), for every command that takes a file.
    done = run(_command(template, "nosuch.sse"), tmp_path)
    prog = Path(template[0]).name
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"{prog}: {MISSING}"
    assert not (tmp_path / "out.sse").exists()  # har import wrote nothing


# sse-replay --serve takes a directory of fixtures by design.
FILE_ONLY = {name: args for name, args in FILE_COMMANDS.items() if name != "sse-replay --serve"}


@pytest.mark.parametrize("template", FILE_ONLY.values(), ids=FILE_ONLY.keys())
def test_a_directory_given_as_the_file_is_one_line_and_exit_1(template: list[str], tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    done = run(_command(template, "folder"), tmp_path)
    prog = Path(template[0]).name
    assert (done.returncode, done.stdout) == (1, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: folder: "), done.stderr


def test_python_m_names_itself_sse_toolkit(tmp_path: Path) -> None:
    done = run([sys.executable, "-m", "sse_toolkit", "stats", "nosuch.sse"], tmp_path)
    assert (done.returncode, done.stderr) == (1, "sse-toolkit: " + MISSING)


def test_har_export_to_an_unwritable_place_names_the_output(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.har"
    done = run(
        [script("sse-toolkit"), "har", "export", str(FIXTURES / "cats.sse"), "-o", str(target)], tmp_path
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"sse-toolkit: error: {target}: No such file or directory\n"


def test_har_export_of_a_missing_fixture_leaves_no_empty_output(tmp_path: Path) -> None:
    done = run([script("sse-toolkit"), "har", "export", "nosuch.sse", "-o", "out.har"], tmp_path)
    assert done.returncode == 1
    assert not (tmp_path / "out.har").exists()


def test_a_usage_error_is_still_clicks_exit_2(tmp_path: Path) -> None:
    # Bad input is exit 1; a wrong command line (here an unknown option) stays click's usage error, exit 2.
    done = run([script("sse-toolkit"), "parse", "--no-such-option"], tmp_path)
    assert done.returncode == 2 and "Usage: sse-toolkit parse" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--serve", "{fixtures}", "--script", "nosuch.json"], "nosuch.json: cannot read the script"),
        (["--serve", "{fixtures}", "--latency", "-1"], "fault latency must be >= 0"),
        (["--serve", "{fixtures}", "--rechunk", "big"], "--rechunk: expected a size in bytes or 'random'"),
        (["--serve", "{fixtures}", "--key", ""], "--key (or --require-key=KEY): the key is empty"),
        (["{fixtures}/cats.sse", "--status", "503"], "fault and key options need --serve"),
        (["{fixtures}/cats.sse", "--require-key"], "fault and key options need --serve"),
    ],
    ids=["script", "fault-value", "rechunk", "empty-key", "fault-without-serve", "key-without-serve"],
)
def test_sse_replay_errors_are_one_line_prefixed_sse_replay(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = run([script("sse-replay"), *(arg.format(fixtures=FIXTURES) for arg in args)], tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sse-replay: error: {message}"), done.stderr


@pytest.mark.skipif(os.name != "posix", reason="stdin from a pipe")
def test_stdin_still_reads_with_a_dash_and_by_default(tmp_path: Path) -> None:
    body = b"data: one\n\n"
    for args in (["parse", "-"], ["parse"]):
        done = subprocess.run(
            [script("sse-toolkit"), *args], input=body, capture_output=True, timeout=TIMEOUT, check=False
        )
        assert (done.returncode, done.stdout) == (
            0,
            b'{"event":"message","data":"one","id":"","retry":null}\n',
        )
