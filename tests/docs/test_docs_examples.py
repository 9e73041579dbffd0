"""Docs tests: every Python and shell example of README.md, docs/ and examples/*.md runs as pasted.

Each runnable fenced block is one test, named ``page:line``. The blocks of a page run in order, in one
namespace (Python) and one working directory that holds a copy of the repository's ``fixtures/`` and
``examples/``, as a reader would paste them one after another in a clone. A page-wide
``<!-- test: setup ... -->`` directive gives blocks that need a server a running one; see ``_docblocks``
for every directive.

``SSE_DOCS_UPDATE=1 pytest tests/docs`` rewrites the output shown under console commands (and ``stdout``
blocks) that no longer matches, e.g. after a ``--help`` text changed; review the diff before committing.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _docblocks import CONSOLE, PYTHON, SHELL, Block, Page, pages, parse_page

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # a generous bound for one shell command; every example finishes in seconds
UPDATE = os.environ.get("SSE_DOCS_UPDATE") == "1"
PLUGIN = ("-p", "sse_toolkit.pytest_plugin")

PAGES: dict[str, Page] = {path: parse_page(ROOT, path) for path in pages(ROOT)}
BLOCKS: list[Block] = [block for page in PAGES.values() for block in page.blocks if block.runnable]


class OutputMismatch(AssertionError):
    """A block ran but printed other than the page shows; the blocks after it do not depend on that."""


def _normalise(lines: list[str], varies: bool) -> list[str]:
    out = [line.rstrip() for line in lines]
    if varies:
        # Figures differ between runs and machines (timings, ports): compare the words around them.
        out = [re.sub(r"\s+", " ", re.sub(r"\d+(?:[.,:]\d+)*", "N", line)).strip() for line in out]
    while out and not out[-1]:
        out.pop()
    return out


def _diff(expected: list[str], actual: list[str]) -> str:
    import difflib

    return "\n".join(difflib.unified_diff(expected, actual, "shown in the docs", "printed", lineterm=""))


class PageRun:
    """The state one page's blocks share: namespace, working directory, setup server, last output."""

    def __init__(self, page: Page, updates: list[tuple[str, tuple[int, int], list[str]]]) -> None:
        self.page = page
        self.updates = updates
        self.dir = Path(tempfile.mkdtemp(prefix="sse-docs-"))
        for folder in ("fixtures", "examples"):
            if (ROOT / folder).is_dir():
                shutil.copytree(ROOT / folder, self.dir / folder)
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.env = dict(os.environ)
        self.env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", "")
        self.env.update(COLUMNS="80", NO_COLOR="1", TERM="dumb")
        self.env.pop("GEMINI_API_KEY", None)
        self.env.pop("GOOGLE_API_KEY", None)
        self.next = 0  # index into page.blocks of the next block to run
        self.failed: str | None = None
        self.stdout: str | None = None  # what the last Python or shell block printed
        self.servers: list[Any] = []
        for words in page.setup:
            self._setup(words)

    def _setup(self, words: list[str]) -> None:
        if len(words) == 2 and words[0] == "replay-server":
            from sse_toolkit import ReplayServer

            server = ReplayServer(str(self.dir / words[1]), speed=0)
            server.start()
            self.servers.append(server)
            self.namespace["server"] = server
            self.env["URL"] = server.url
            return
        raise AssertionError(
            f"{self.page.path}: unknown setup {' '.join(words)!r} (known: replay-server PATH)"
        )

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        try:
            for server in self.servers:
                server.check()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def run_through(self, target: Block) -> None:
        """Run the page's blocks up to and including ``target``, each once per process."""
        index = self.page.blocks.index(target)
        while self.next <= index:
            block = self.page.blocks[self.next]
            self.next += 1
            if not block.runnable or "skip" in block.options:
                continue
            if self.failed:
                pytest.fail(f"not run: the earlier block {self.failed} failed", pytrace=False)
            try:
                self._run(block)
            except OutputMismatch:
                if block is not target:
                    continue  # its own test reports it; what it printed does not feed the blocks after it
                raise
            except BaseException:
                self.failed = block.id
                if block is not target:
                    pytest.fail(
                        f"the earlier block {block.id} failed:\n{traceback.format_exc()}", pytrace=False
                    )
                raise

    def _run(self, block: Block) -> None:
        if "stdout" in block.options:
            self._check_stdout(block)
        elif "pytest" in block.options:
            self._pytest(block)
        elif block.lang in PYTHON:
            self._python(block)
        elif block.lang in SHELL:
            self._shell(block)
        elif block.lang in CONSOLE:
            self._console(block)

    def _python(self, block: Block) -> None:
        if block.source.lstrip().startswith(">>> "):
            self._doctest(block)
            return
        code = compile(block.source, block.id, "exec")
        out = io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.dir)
        try:
            with contextlib.redirect_stdout(out):
                exec(code, self.namespace)
        finally:
            os.chdir(cwd)
            self.stdout = out.getvalue()
            sys.stdout.write(self.stdout)

    def _doctest(self, block: Block) -> None:
        """A block written as an interactive session: each ``>>>`` statement must print what is shown."""
        import doctest

        test = doctest.DocTestParser().get_doctest(
            block.source, self.namespace, block.id, block.page, block.body_lines[0]
        )
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        cwd = os.getcwd()
        os.chdir(self.dir)
        try:
            result = runner.run(test, out=report.write, clear_globs=False)
        finally:
            os.chdir(cwd)
            self.namespace.update(test.globs)  # DocTest runs in a copy; later blocks see what this defined
        if result.failed:
            raise OutputMismatch(
                f"{block.id}: the session differs from what the page shows:\n{report.getvalue()}"
            )

    def _bash(self, script: str, *, merge: bool) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", script],
                cwd=self.dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"still running after {TIMEOUT:.0f} s: {script}") from error

    def _expected_exit(self, block: Block) -> int:
        return int(block.options.get("exit", "0") or "0")

    def _shell(self, block: Block) -> None:
        result = self._bash(block.source, merge=False)
        self.stdout = result.stdout
        want = self._expected_exit(block)
        assert result.returncode == want, (
            f"{block.id}: exit status {result.returncode}, expected {want}\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )

    def _console(self, block: Block) -> None:
        varies = block.options.get("output") == "varies"
        commands = block.commands()
        for n, command in enumerate(commands):
            result = self._bash(command.text, merge=True)
            want = self._expected_exit(block) if n == len(commands) - 1 else 0
            assert result.returncode == want, (
                f"{block.page}:{command.line}: `{command.text}` exited {result.returncode}, expected {want}\n"
                f"{result.stdout}"
            )
            actual = result.stdout.split("\n")
            self._compare(block, command.output_lines, command.expected, actual, varies, command.text)

    def _compare(
        self,
        block: Block,
        span: tuple[int, int],
        expected: list[str],
        actual: list[str],
        varies: bool,
        what: str,
    ) -> None:
        want, got = _normalise(expected, varies), _normalise(actual, varies)
        if want == got:
            return
        if UPDATE and not varies:
            self.updates.append((block.page, span, _normalise(actual, False)))
            return
        raise OutputMismatch(
            f"{block.id}: the output of `{what}` differs from what the page shows"
            f" (SSE_DOCS_UPDATE=1 rewrites it):\n{_diff(want, got)}"
        )

    def _check_stdout(self, block: Block) -> None:
        assert self.stdout is not None, f"{block.id}: a stdout block needs a Python or shell block before it"
        lines = block.source.split("\n")
        self._compare(block, block.body_lines, lines, self.stdout.split("\n"), False, "the block before")

    def _pytest(self, block: Block) -> None:
        test_file = self.dir / f"test_docs_{block.line}.py"
        test_file.write_text(block.source + "\n", encoding="utf-8")
        # Only sse_toolkit's plugin is loaded: the entry point that loads it for a reader is tested in
        # tests/pytest_plugin, and the other plugins of this environment only slow the start down.
        env = dict(self.env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PLUGIN, test_file.name],
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        finally:
            test_file.unlink()
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        failed = int(m[1]) if (m := re.search(r"(\d+) failed", summary)) else 0
        passed = int(m[1]) if (m := re.search(r"(\d+) passed", summary)) else 0
        want = int(block.options.get("failed", "0"))
        assert failed == want and passed + failed > 0, (
            f"{block.id}: pytest ran {passed} passed, {failed} failed; expected {want} failed\n"
            f"{result.stdout[-4000:]}{result.stderr[-2000:]}"
        )


def _apply_updates(updates: list[tuple[str, tuple[int, int], list[str]]]) -> None:
    by_page: dict[str, list[tuple[tuple[int, int], list[str]]]] = {}
    for page, span, lines in updates:
        by_page.setdefault(page, []).append((span, lines))
    for page, edits in by_page.items():
        path = ROOT / page
        text = path.read_text(encoding="utf-8").split("\n")
        for (start, end), lines in sorted(edits, key=lambda edit: edit[0][0], reverse=True):
            text[start:end] = lines
        path.write_text("\n".join(text), encoding="utf-8")


@pytest.fixture(scope="module")
def page_runs() -> Iterator[dict[str, PageRun]]:
    runs: dict[str, PageRun] = {}
    updates: list[tuple[str, tuple[int, int], list[str]]] = []

    class Runs(dict[str, PageRun]):
        def __missing__(self, path: str) -> PageRun:
            run = runs[path] = self[path] = PageRun(PAGES[path], updates)
            return run

    yield Runs()
    errors = []
    for run in runs.values():
        try:
            run.close()
        except Exception as error:  # a server-thread error still fails the run, after every page is closed
            errors.append(f"{run.page.path}: {error!r}")
    if updates:
        _apply_updates(updates)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_example_runs_as_pasted(block: Block, page_runs: dict[str, PageRun]) -> None:
    if "skip" in block.options:
        pytest.skip(f"{block.id}: {block.options['skip']}")
    page_runs[block.page].run_through(block)
