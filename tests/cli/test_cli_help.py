"""``--help`` of every console script, command and subcommand: complete (each option explained, each command
listed whole) and the same as docs/cli.md shows. The commands are found by walking the console scripts the
package installs, so a new command or option without help or without its page fails here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
CLI_DOCS = ROOT / "docs" / "cli.md"
TIMEOUT = 30  # seconds for one --help: generous, a hang fails instead of blocking the suite


def _scripts() -> dict[str, click.Command]:
    found = {
        entry.name: entry.load()
        for entry in entry_points(group="console_scripts")
        if entry.value.startswith("sse_toolkit.")
    }
    assert {"sse-toolkit", "sse-replay", "sse-record"} <= set(found), found
    return found


def _walk(path: str, command: click.Command) -> list[tuple[str, click.Command]]:
    """Every command below and including ``command``, each with the words that invoke it."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            found += _walk(f"{path} {name}", sub)
    return found


COMMANDS = [found for prog, command in sorted(_scripts().items()) for found in _walk(prog, command)]
IDS = [path for path, _ in COMMANDS]


def _help_via_runner(path: str) -> str:
    prog, *words = path.split()
    result = CliRunner().invoke(_scripts()[prog], [*words, "--help"], prog_name=prog)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_has_a_help_text_that_help_shows(path: str, command: click.Command) -> None:
    shown = _help_via_runner(path)
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        assert param.help and param.help.strip(), f"{path}: {param.opts[0]} has no help text"
        for opt in param.opts:
            assert re.search(rf"(^|[\s,]){re.escape(opt)}\b", shown), f"{path} --help omits {opt}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_has_a_one_line_description(path: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{path} has no description"
    first_line = _help_via_runner(path).split("\n\n")[1].strip()
    assert "\n" not in first_line and first_line.endswith("."), f"{path}: {first_line!r}"


GROUPS = [(path, command) for path, command in COMMANDS if isinstance(command, click.Group)]


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[path for path, _ in GROUPS])
def test_command_lists_read_whole(path: str, group: click.Group) -> None:
    # click cuts a description that does not fit the line with "..."; each command's short help must fit.
    listing = _help_via_runner(path).split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    lines = listing.splitlines()
    assert len(lines) == len(group.commands), listing  # one line each, none wrapped
    for line in lines:
        assert not line.rstrip().endswith("..."), line


def test_sse_replay_help_shows_the_two_main_uses_as_examples() -> None:
    shown = _help_via_runner("sse-replay")
    examples = shown.split("Examples:\n", 1)[1]
    assert re.search(r"^\s+sse-replay fixtures/cats\.sse\s", examples, re.MULTILINE), examples
    assert re.search(r"^\s+sse-replay --serve fixtures/\s", examples, re.MULTILINE), examples


# --- docs/cli.md -------------------------------------------------------------------------------------------


def _documented() -> dict[str, list[str]]:
    """``$ CMD --help`` console blocks of docs/cli.md: command -> the output lines shown."""
    text = CLI_DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"^```console\n\$ ([^\n]+?) --help\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return {command: _lines(output) for command, output in blocks}


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def test_docs_show_the_help_of_every_command_and_no_other() -> None:
    assert sorted(_documented()) == sorted(IDS)


@pytest.mark.parametrize("path", IDS)
def test_docs_show_the_exact_current_help(path: str) -> None:
    # As the docs tests run it: the real console script, on an 80-column terminal.
    prog, *words = path.split()
    exe = shutil.which(prog, path=str(Path(sys.executable).parent)) or shutil.which(prog)
    assert exe, f"the {prog} console script is not installed"
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [exe, *words, "--help"], capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr
    shown = _documented().get(path)
    assert shown is not None, f"docs/cli.md has no `$ {path} --help` block"
    regenerate = "SSE_DOCS_UPDATE=1 pytest tests/docs -k cli.md"
    assert shown == _lines(done.stdout), f"docs/cli.md shows another `{path} --help`; run {regenerate}"


def test_every_fault_is_an_sse_replay_flag_and_in_the_faults_table_of_the_docs() -> None:
    from dataclasses import fields

    from sse_toolkit.replay import Faults

    flags = {opt for param in _scripts()["sse-replay"].params for opt in getattr(param, "opts", [])}
    page = (ROOT / "docs" / "replay.md").read_text(encoding="utf-8")
    section = page.split("## Faults on demand", 1)[1].split("\n## ", 1)[0]
    for field in fields(Faults):
        flag = "--" + field.name.replace("_", "-")
        assert flag in flags, f"Faults.{field.name} has no sse-replay flag {flag}"
        assert f"`{flag}" in section, f"docs/replay.md's faults table does not list {flag}"
