"""The layers of DESIGN.md hold: a module imports only from its own layer or lower ones, and the sans-IO
layers (parser, gemini) import nothing that does I/O."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sse_toolkit"

# Lower number = lower layer. A module's layer comes from its name.
_LAYERS = [
    ("parser", ("_exceptions", "_sse_", "_http_head", "_version")),
    ("gemini", ("_gemini_",)),
    ("fixture", ("_fixture_",)),
    ("replay", ("_replay_", "_record_")),
    ("surface", ("_cli", "pytest_plugin", "__main__", "__init__")),
]
_NO_IO = {"socket", "socketserver", "http", "ssl", "selectors", "subprocess", "threading", "urllib", "asyncio"}


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(_LAYERS):
        if module.startswith(prefixes):
            return rank
    raise AssertionError(f"module {module!r} belongs to no layer of DESIGN.md; name it after its layer")


def _imports(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(package modules, other top-level modules) that ``path`` imports at any level."""
    ours, others = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from ._x import y / from . import _x
                if node.module:
                    ours.add(node.module.split(".")[0])
                else:
                    ours.update(alias.name for alias in node.names)
            elif node.module and node.module.split(".")[0] == "sse_toolkit":
                ours.add(node.module.split(".")[1] if "." in node.module else "__init__")
            elif node.module:
                others.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "sse_toolkit":
                    ours.add(alias.name.split(".")[1] if "." in alias.name else "__init__")
                else:
                    others.add(top)
    return ours, others


MODULES = sorted(p for p in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_imports_only_its_own_layer_or_lower(path: pathlib.Path) -> None:
    rank = _layer(path.stem)
    ours, _ = _imports(path)
    upward = sorted(m for m in ours if _layer(m) > rank)
    assert not upward, f"{path.name} ({_LAYERS[rank][0]} layer) imports upper-layer modules {upward}"


@pytest.mark.parametrize("path", [p for p in MODULES if _layer(p.stem) <= 1], ids=lambda p: p.stem)
def test_sans_io_layers_import_no_io_modules(path: pathlib.Path) -> None:
    _, others = _imports(path)
    assert not (others & _NO_IO), f"{path.name} is sans-IO but imports {sorted(others & _NO_IO)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_docstring_names_its_layer_and_concern(path: pathlib.Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.name} has no module docstring saying which concern it holds"
    first = doc.splitlines()[0].lower()
    assert "layer" in first or path.stem == "__init__", f"{path.name}: first line should name its layer: {first!r}"
