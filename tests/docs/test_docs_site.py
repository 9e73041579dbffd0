"""Docs tests: README.md stays a front door whose links resolve, and the docs site builds with no warning."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _docblocks import parse_page

ROOT = Path(__file__).resolve().parents[2]
README_LIMIT = 12 * 1024  # the front door: what it is, install, the main uses, links into docs/


def test_readme_is_a_front_door_under_12_kb() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_LIMIT, f"README.md is {size} bytes; move detail into docs/ (limit {README_LIMIT})"


def test_readme_keeps_the_setup_commands_ci_reads() -> None:
    shell = [b.source for b in parse_page(ROOT, "README.md").blocks if b.lang in ("sh", "bash", "shell")]
    commands = {line.split("#")[0].strip() for source in shell for line in source.splitlines()}
    assert 'pip install -e ".[test]"' in commands
    assert "pytest" in commands


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md", "examples/README.md"])
def test_relative_links_of_pages_outside_docs_resolve(page: str) -> None:
    # docs/ is checked by `mkdocs build --strict`; these pages are read on the forge, outside the site.
    text = (ROOT / page).read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are not links
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = (ROOT / page).parent / target.split("#")[0]
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page}: links to missing files: {broken}"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason='needs the docs extra: pip install -e ".[docs]"',
)
def test_docs_site_builds_strict(tmp_path: Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (tmp_path / "site" / "reference" / "gemini" / "index.html").exists()
