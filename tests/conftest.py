"""Shared test set-up: the helper modules beside this file (``_chunking``, ``_rawhttp``, ...) are importable
from the test folders that mirror the package's layers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
