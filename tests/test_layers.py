"""The layers of DESIGN.md hold: each layer is a subpackage; a module imports only from its own layer or
lower ones; the sans-IO layers (parser, gemini) import nothing that does I/O; the server layer knows no
fixture; no module imports another module's private (underscored) name."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sse_toolkit"

# Lower number = lower layer. A module's layer is its subpackage; the top-level modules are the surface.
_LAYERS = ["parser", "gemini", "fixture", "server", "replay", "record", "surface"]
_RANK = {name: rank for rank, name in enumerate(_LAYERS)}
# replay and record are one floor: neither imports the other.
_RANK["record"] = _RANK["replay"]
_TOP_LEVEL_BELOW_ALL = {"_version"}  # a leaf every layer may read
_NO_IO = {
    "socket",
    "socketserver",
    "http",
    "ssl",
    "selectors",
    "subprocess",
    "threading",
    "urllib",
    "asyncio",
}


def _module_name(path: pathlib.Path) -> str:
    """Dotted name inside the package: ``parser._parser``, ``cli``, ``__init__``."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(rel.parts)


def _layer(module: str) -> str:
    head = module.split(".")[0]
    if head in _RANK and head != "surface":
        return head
    if head in _TOP_LEVEL_BELOW_ALL:
        return "parser"
    return "surface"


def _resolve(importer: str, level: int, module: str | None) -> str:
    """The dotted name inside the package that a relative import names."""
    package = importer.split(".")[:-1]
    if importer.endswith("__init__"):
        package = importer.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    parts = base + (module.split(".") if module else [])
    return ".".join(parts) or "__init__"


def _imports(path: pathlib.Path) -> tuple[list[tuple[str, list[str]]], set[str]]:
    """([(package module, names taken)], other top-level modules) that ``path`` imports at any level."""
    me = _module_name(path)
    ours: list[tuple[str, list[str]]] = []
    others: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                target = _resolve(me, node.level, node.module)
                if node.module is None:  # from . import x
                    ours.extend((f"{target}.{n}".lstrip("."), []) for n in names)
                else:
                    ours.append((target, names))
            elif node.module and node.module.split(".")[0] == "sse_toolkit":
                ours.append((node.module.partition(".")[2] or "__init__", names))
            elif node.module:
                others.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == "sse_toolkit":
                    ours.append((rest or "__init__", []))
                else:
                    others.add(top)
    return ours, others


MODULES = sorted(PACKAGE.rglob("*.py"))
IDS = [_module_name(p) for p in MODULES]


def test_every_layer_is_a_subpackage() -> None:
    for layer in _LAYERS[:-1]:
        assert (PACKAGE / layer / "__init__.py").is_file(), f"layer {layer} has no subpackage"


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_module_imports_only_its_own_layer_or_lower(path: pathlib.Path) -> None:
    me = _module_name(path)
    rank = _RANK[_layer(me)]
    ours, _ = _imports(path)
    wrong = sorted(
        target
        for target, _ in ours
        if _RANK[_layer(target)] > rank or (_RANK[_layer(target)] == rank and _layer(target) != _layer(me))
    )
    assert not wrong, f"{me} ({_layer(me)} layer) imports modules of a higher or sibling layer: {wrong}"


@pytest.mark.parametrize(
    "path", [p for p in MODULES if _layer(_module_name(p)) in ("parser", "gemini")], ids=str
)
def test_sans_io_layers_import_no_io_modules(path: pathlib.Path) -> None:
    _, others = _imports(path)
    assert not (others & _NO_IO), f"{path.name} is sans-IO but imports {sorted(others & _NO_IO)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "server").rglob("*.py")), ids=str)
def test_server_layer_knows_no_fixture(path: pathlib.Path) -> None:
    ours, _ = _imports(path)
    assert not [t for t, _ in ours if _layer(t) in ("fixture", "gemini")], f"{path.name} imports {ours}"


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_no_private_name_is_imported_across_modules(path: pathlib.Path) -> None:
    ours, _ = _imports(path)
    private = sorted(
        f"{t}.{n}" for t, names in ours for n in names if n.startswith("_") and n != "__version__"
    )
    assert not private, f"{_module_name(path)} imports private names {private}; export them or move the code"


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_module_docstring_names_its_layer_and_concern(path: pathlib.Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path} has no module docstring saying which concern it holds"
    first = doc.splitlines()[0].lower()
    assert "layer" in first or path.stem in ("__init__", "__main__", "_version"), (
        f"{_module_name(path)}: first line should name its layer: {first!r}"
    )
