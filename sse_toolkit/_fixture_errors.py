"""Fixture layer: ``FixtureError``, the one error a fixture file that cannot be read or written raises.

Its message reads ``FILE:LINE: what is wrong`` (the form editors and CI logs turn into a link), and it keeps
the parts as attributes so that callers (the CLI, the replay server) can show them their own way.
"""

from __future__ import annotations

from ._exceptions import SSEError

__all__ = ["FixtureError"]


class FixtureError(SSEError):
    """A fixture file is damaged, of an unknown version, or could not be written.

    - ``path``: the file (or the ``source`` name given to ``loads_fixture``), ``None`` if unknown.
    - ``line``: the 1-based line number the problem is on, ``None`` if it concerns no one line.
    - ``detail``: the message without the ``FILE:LINE:`` prefix.
    """

    def __init__(self, detail: str, path: str | None = None, line: int | None = None) -> None:
        self.detail = detail
        self.path = path
        self.line = line
        where = path if path is not None else "<fixture>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {detail}")
