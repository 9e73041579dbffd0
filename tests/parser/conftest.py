"""Tests: options for the parser tests. ``--diff-seed``/``--diff-n`` choose the streams of the differential
run against Chromium (tests/parser/test_browser_differential.py); CI uses the defaults there.

    pytest tests/parser/test_browser_differential.py --diff-seed 7 --diff-n 1000
"""

from __future__ import annotations

import argparse

import pytest


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--diff-n takes a whole number of streams >= 1, got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sse-toolkit browser differential")
    group.addoption("--diff-seed", type=int, default=None, help="seed of the streams served to Chromium")
    group.addoption("--diff-n", type=_positive, default=None, help="how many streams to serve to Chromium")
