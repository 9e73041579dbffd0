"""Docs tests: the fenced code blocks of a Markdown page, and the directives that say how to run them.

A directive is an HTML comment (invisible on GitHub and on the docs site) of the form
``<!-- test: WORDS -->``. Page-wide:

    <!-- test: setup replay-server fixtures/wyoming.sse -->   a ReplayServer (speed 0) for the whole page:
                                                             ``server`` in Python blocks, ``$URL`` in shell

Right before a fence (blank lines between are allowed):

    <!-- test: skip NAME -->      not run; NAME says why (``needs-api-key``, ``serves-until-ctrl-c``); the
                                  block itself must say so to the reader too
    <!-- test: pytest -->         a Python block holding test functions: run with pytest in a subprocess
    <!-- test: pytest failed=2 --> ... and exactly 2 of them are expected to fail (a demonstration)
    <!-- test: output varies -->  a console block whose figures differ from run to run: digits and the
                                  spacing around them are not compared
    <!-- test: exit 1 -->         the block's last command exits with this status
    <!-- test: stdout -->         a ``text`` block: exactly what the Python or shell block before it printed

Languages run: ``python``; ``sh``/``bash``/``shell`` (a script, ``bash -e -o pipefail``); ``console``
(``$ `` commands, each followed by the output it must print). Other fences (``text``, ``json``, ...) are
shown only, unless a ``stdout`` directive names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = frozenset({"python", "py", "pycon"})
SHELL = frozenset({"sh", "bash", "shell"})
CONSOLE = frozenset({"console"})
RUNNABLE = PYTHON | SHELL | CONSOLE

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*test:\s*(?P<words>.*?)\s*-->\s*$")
_BLOCK_DIRECTIVES = frozenset({"skip", "pytest", "output", "exit", "stdout"})


class DocsSyntaxError(Exception):
    """A directive or fence the runner cannot understand, named by page and line."""


@dataclass
class Command:
    """One ``$ `` command of a console block and the output shown under it."""

    line: int  # 1-based line of the ``$ `` in the page
    text: str
    expected: list[str]
    output_lines: tuple[int, int]  # 0-based [start, end) of the expected output lines in the page


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    source: str
    body_lines: tuple[int, int]  # 0-based [start, end) of the content lines in the page
    options: dict[str, str] = field(default_factory=dict)  # from the directive before the fence

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE or "stdout" in self.options

    def commands(self) -> list[Command]:
        """The ``$ `` commands of a console block, with continuation lines (``\\`` at the end) joined."""
        commands: list[Command] = []
        start = self.body_lines[0]
        lines = self.source.split("\n")
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                if not commands:
                    raise DocsSyntaxError(f"{self.id}: console output before the first '$ ' command")
                i += 1
                continue
            first = i
            text = lines[i][2:]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + "\n" + lines[i]
            i += 1
            out_start = i
            while i < len(lines) and not lines[i].startswith("$ "):
                i += 1
            commands.append(
                Command(start + first + 1, text, lines[out_start:i], (start + out_start, start + i))
            )
        return commands


@dataclass
class Page:
    path: str  # relative to the repository root, as shown in test ids
    blocks: list[Block]
    setup: list[list[str]]  # page-wide directives, each split into words


def _options(words: list[str], where: str) -> dict[str, str]:
    kind, rest = words[0], words[1:]
    if kind not in _BLOCK_DIRECTIVES:
        raise DocsSyntaxError(
            f"{where}: unknown directive {kind!r} (known: setup, {', '.join(sorted(_BLOCK_DIRECTIVES))})"
        )
    options = {kind: " ".join(rest) if kind in ("skip", "output", "exit") else ""}
    if kind == "skip" and not rest:
        raise DocsSyntaxError(f"{where}: 'skip' needs a name that says why")
    for word in rest if kind == "pytest" else ():
        key, sep, value = word.partition("=")
        if not sep or key != "failed" or not value.isdigit():
            raise DocsSyntaxError(f"{where}: 'pytest' takes only failed=N, not {word!r}")
        options[key] = value
    return options


def parse_page(root: Path, relpath: str) -> Page:
    """Split a Markdown page into its fenced blocks (with their directives) and its page-wide setup."""
    lines = (root / relpath).read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    setup: list[list[str]] = []
    pending: dict[str, str] | None = None
    pending_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        if directive:
            words = directive["words"].split()
            where = f"{relpath}:{i + 1}"
            if not words:
                raise DocsSyntaxError(f"{where}: empty test directive")
            if words[0] == "setup":
                setup.append(words[1:])
            else:
                if pending is not None:
                    raise DocsSyntaxError(f"{relpath}:{pending_line}: directive not followed by a code block")
                pending, pending_line = _options(words, where), i + 1
            i += 1
            continue
        fence = _FENCE.match(line)
        if not fence:
            if line.strip() and pending is not None:
                raise DocsSyntaxError(f"{relpath}:{pending_line}: directive not followed by a code block")
            i += 1
            continue
        indent, marker = len(fence["indent"]), fence["fence"]
        lang = fence["info"].strip().split(" ")[0].lower() if fence["info"].strip() else ""
        end = i + 1
        closing = re.compile(rf"^[ ]{{0,{indent + 3}}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise DocsSyntaxError(f"{relpath}:{i + 1}: code block never closed")
        body = [text[indent:] if text[:indent].strip() == "" else text for text in lines[i + 1 : end]]
        blocks.append(Block(relpath, i + 1, lang, "\n".join(body), (i + 1, end), pending or {}))
        pending = None
        i = end + 1
    if pending is not None:
        raise DocsSyntaxError(f"{relpath}:{pending_line}: directive not followed by a code block")
    return Page(relpath, blocks, setup)


def pages(root: Path) -> list[str]:
    """The pages whose examples are run: README.md, docs/**/*.md and examples/*.md."""
    found = ["README.md"] if (root / "README.md").exists() else []
    for folder in ("docs", "examples"):
        found += sorted(str(p.relative_to(root)) for p in (root / folder).rglob("*.md"))
    return found
