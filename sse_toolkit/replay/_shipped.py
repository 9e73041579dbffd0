"""Replay layer: the fixtures shipped with the package, found by name (``sse_replay("cats")``).

A wheel carries the repository's ``fixtures/`` folder as the package data directory ``sse_toolkit/shipped``
(a ``package-dir`` mapping in ``pyproject.toml``, not a copy). A source checkout (an editable install) has no
such directory: the ``fixtures/`` folder beside the package is used instead.

A name picks a file of that directory: its exact file name (``"cats.sse"``), or its name without
extensions (``"cats"``), the recorded format (``.jsonl``) first when several files share it, since that is
the one in today's wire shape with its request.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from ._catalog import fixture_files

__all__ = ["shipped_fixture", "shipped_fixtures", "shipped_names"]

_PACKAGE = "sse_toolkit"
_DATA = "shipped"


def shipped_fixtures() -> Path | None:
    """The directory of the shipped fixtures, or None when this install has none."""
    packaged = importlib.resources.files(_PACKAGE) / _DATA
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]  # the repository root of a source checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "fixtures").is_dir():
        return checkout / "fixtures"
    return None


def shipped_names() -> list[str]:
    """The names the shipped fixtures answer to (each file name, and each name without extensions)."""
    directory = shipped_fixtures()
    if directory is None:
        return []
    files = fixture_files(directory)
    return sorted({p.name for p in files} | {p.name.split(".")[0] for p in files})


def shipped_fixture(name: str) -> Path | None:
    """The shipped fixture called ``name`` (``"cats"``, ``"cats.sse"``), or None when there is none (a
    name with a directory in it never names one)."""
    directory = shipped_fixtures()
    if directory is None or not name or "/" in name or "\\" in name or name in (".", ".."):
        return None
    files = fixture_files(directory)
    exact = [p for p in files if p.name == name]
    if exact:
        return exact[0]
    stem = [p for p in files if p.name.split(".")[0] == name]
    recorded = [p for p in stem if p.suffix == ".jsonl"]
    found = recorded or stem
    return found[0] if found else None
