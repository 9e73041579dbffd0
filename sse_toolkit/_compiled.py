"""Across layers: which modules mypyc compiles, and the switch that runs them from their source instead.

The replay server's request path (reading a request, routing it, journaling it, writing the answer) is
plain typed Python that setup.py also compiles with mypyc where a C compiler is: the same source, each
module then an extension beside its ``.py``. Compiled, a request costs about a third fewer instructions
(bench/bench_instructions.py), which is what takes the server past 0.9x a raw asyncio server's throughput
(bench/bench_server.py --only tail; docs/guarantees.md). Without a compiler the build warns and the package
runs the Python source, which is the reference: the tests run both ways.

``SSE_TOOLKIT_PURE_PYTHON`` set to anything non-empty (read when ``sse_toolkit`` is first imported) makes the
process import these modules from their ``.py`` files, as it makes the parser and Gemini layers skip
their C accelerators. The compiled modules call each other directly, so they come as one group: all
compiled or all from source.

Compiled, a module's classes cannot be subclassed by Python classes nor its functions monkeypatched, and
it checks declared types where values are passed, assigned and unpacked. So the modules that build what
users subclass, set or hand in (``LoopbackServer``, ``ReplayServer``, the errors, the catalog that reads
fixtures built in Python, scenarios, the journal's entries) stay Python, and where a compiled module reads
a user's values (a handler's ``Reply``, its pieces and headers, the servers' limits and options) it reads
them as ``Any``, as Python would: tests/server/test_compiled.py holds both ways to the same answers.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMPILED", "GROUP", "compiled_in_use", "run_from_source_if_asked"]

# Read by setup.py (as a literal, without importing the package).
COMPILED = (
    "sse_toolkit.server._http",
    "sse_toolkit.server._loop",
    "sse_toolkit.replay._app",
    "sse_toolkit.replay._journal",
)
# The extension that holds the group's code (mypyc's shared library: ``<GROUP>__mypyc``).
GROUP = "sse_toolkit._request_path"

_PURE_PYTHON_VARIABLE = "SSE_TOOLKIT_PURE_PYTHON"  # as parser/_accelerators.py


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds each compiled module's ``.py`` file in its package, before the extension beside it is found."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED or not path:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for folder in path:
            source = os.path.join(folder, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def run_from_source_if_asked() -> None:
    """Under ``SSE_TOOLKIT_PURE_PYTHON``, or where the group's shared library is missing (a build that
    compiled the modules' small extensions but not it), import the compiled modules from source."""
    if any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        return
    if os.environ.get(_PURE_PYTHON_VARIABLE) or importlib.util.find_spec(GROUP + "__mypyc") is None:
        sys.meta_path.insert(0, _FromSource())


def compiled_in_use() -> bool:
    """True when the compiled modules are the ones imported (or would be, by the next import)."""
    spec = importlib.util.find_spec(COMPILED[0])
    return (
        spec is not None
        and spec.origin is not None
        and spec.origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    )
