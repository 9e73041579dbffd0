"""Parser layer (and the Gemini layer above it): whether the optional C accelerators may be loaded.

Each layer's ``_speedups`` extension (built by setup.py where a C compiler is) mirrors Python code that
stays its reference. ``SSE_TOOLKIT_PURE_PYTHON`` set to anything non-empty makes a process use the Python
code alone (the tests run both ways); it is read once per layer, when the layer is imported.
"""

from __future__ import annotations

import os

__all__ = ["PURE_PYTHON_VARIABLE", "speedups_wanted"]

PURE_PYTHON_VARIABLE = "SSE_TOOLKIT_PURE_PYTHON"


def speedups_wanted() -> bool:
    """False when the environment asks for the pure-Python paths."""
    return not os.environ.get(PURE_PYTHON_VARIABLE)
