"""The optional compiled parts (everything else is in pyproject.toml), each built where a C compiler is:
  * the parser's pairs path (sse_toolkit/parser/_speedups.c) and the Gemini typed objects' type check
    (sse_toolkit/gemini/_speedups.c), hand-written C that mirrors Python code;
  * the replay server's request path, the modules sse_toolkit/_compiled.py lists, compiled from their
    own Python source by mypyc (a build requirement in pyproject.toml, never a run-time one).
Each is optional: where one cannot be built the build warns and the package runs its Python code, which
gives the same results (the tests run both ways). ``SSE_TOOLKIT_PURE_PYTHON`` set at build time skips mypyc.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from setuptools import Extension, setup


def _compiled_group() -> tuple[list[str], str]:
    """COMPILED and GROUP from sse_toolkit/_compiled.py, read as literals (the package is not importable
    while it is being built)."""
    values = {}
    for node in ast.parse(Path("sse_toolkit/_compiled.py").read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in ("COMPILED", "GROUP"):
            values[target.id] = ast.literal_eval(node.value)
    return list(values["COMPILED"]), values["GROUP"]


def _mypyc_extensions() -> list[Extension]:
    if os.environ.get("SSE_TOOLKIT_PURE_PYTHON"):
        return []
    modules, group = _compiled_group()
    paths = [module.replace(".", "/") + ".py" for module in modules]
    try:
        from mypyc.build import mypycify

        # Only the types matter here, not the project's strict settings (CI's lint): the build environment
        # holds the build requirements alone, so third-party modules are Any, and strict checks of what that
        # Any returns would fail the compile (a fresh `pip install -e .` then ran interpreted).
        args = ["--config-file=", "--ignore-missing-imports", *paths]
        extensions = mypycify(args, opt_level="3", group_name=group)
    except (Exception, SystemExit) as exc:  # mypyc missing or failing: the Python source runs
        print(
            f"warning: the request path is not compiled (mypyc: {exc!r}); it runs as Python", file=sys.stderr
        )
        return []
    for extension in extensions:
        extension.optional = True
    return extensions


setup(
    ext_modules=[
        Extension(
            "sse_toolkit.parser._speedups",
            ["sse_toolkit/parser/_speedups.c"],
            optional=True,
        ),
        Extension(
            "sse_toolkit.gemini._speedups",
            ["sse_toolkit/gemini/_speedups.c"],
            optional=True,
        ),
        *_mypyc_extensions(),
    ]
)
