"""The optional C accelerators (everything else is in pyproject.toml): the parser's pairs path
(sse_toolkit/parser/_speedups.c) and the Gemini typed objects' type check (sse_toolkit/gemini/_speedups.c).
``optional=True``: without a C compiler the build warns and the package installs pure Python, which gives
the same results (the Python code each one mirrors is its reference)."""

from setuptools import Extension, setup

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
    ]
)
