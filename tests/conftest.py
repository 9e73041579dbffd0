"""Shared test set-up: the helper modules beside this file (``_chunking``, ``_rawhttp``, ...) are importable
from the test folders that mirror the package's layers; and a session refuses to start on compiled modules
older than their source (an edit not rebuilt would be tested as it was before the edit)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _stale_compiled_modules() -> list[str]:
    """The compiled modules (sse_toolkit/_compiled.py) whose ``.py`` changed after they were built."""
    from sse_toolkit._compiled import COMPILED, GROUP, compiled_in_use

    if not compiled_in_use():
        return []
    # The group's shared library holds every module's code and is rebuilt whenever one changes (a module's
    # own extension is a shim that a build may leave as it was).
    library = importlib.util.find_spec(GROUP + "__mypyc")
    if library is None or library.origin is None:
        return []
    built = os.stat(library.origin).st_mtime
    stale = []
    for name in COMPILED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin).with_name(name.rpartition(".")[2] + ".py")
        if source.is_file() and os.stat(source).st_mtime > built:
            stale.append(str(source))
    return stale


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = _stale_compiled_modules()
    if stale:
        raise pytest.UsageError(
            "compiled modules are older than their source, so the tests would run the code as it was: "
            + ", ".join(stale)
            + '. Rebuild with `pip install -e ".[test]"` (or run SSE_TOOLKIT_PURE_PYTHON=1 pytest).'
        )
