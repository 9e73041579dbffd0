"""Docs site hook: the docstrings cross-reference with Sphinx roles (":class:`ReplayServer`"), which
mkdocstrings renders as literal text before the code span; drop the role so that only the name shows."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|mod|data|obj):(<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(r"\1", html)
