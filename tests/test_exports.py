"""The public surface: ``sse_toolkit`` re-exports the parser contract and the entry points; each layer's
subpackage re-exports its public names; every ``__all__`` is sorted, complete and documented; the names that
moved into the subpackages still resolve from the top level for one release."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
from types import ModuleType

import pytest

import sse_toolkit
from sse_toolkit._compiled import GROUP

LAYERS = ["parser", "gemini", "fixture", "server", "replay", "record"]
FACES = [sse_toolkit] + [importlib.import_module(f"sse_toolkit.{layer}") for layer in LAYERS]


@pytest.mark.parametrize("face", FACES, ids=lambda m: m.__name__)
def test_all_is_unique(face: ModuleType) -> None:
    # Its order is ruff's (RUF022, checked by the lint step of CI).
    assert len(face.__all__) == len(set(face.__all__))


@pytest.mark.parametrize("face", FACES, ids=lambda m: m.__name__)
def test_every_name_in_all_exists_and_is_documented(face: ModuleType) -> None:
    missing = [name for name in face.__all__ if not hasattr(face, name)]
    assert not missing
    undocumented = [
        name
        for name in face.__all__
        if (inspect.isclass(getattr(face, name)) or inspect.isfunction(getattr(face, name)))
        and not inspect.getdoc(getattr(face, name))
    ]
    assert not undocumented


@pytest.mark.parametrize("face", FACES, ids=lambda m: m.__name__)
def test_every_public_attribute_is_in_all(face: ModuleType) -> None:
    public = {
        name for name, value in vars(face).items() if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(face.__all__) | {"annotations"}


def test_the_top_level_surface_stays_small() -> None:
    assert len(sse_toolkit.__all__) <= 25
    for name in (
        "Event",
        "EventParser",
        "parse",
        "iter_responses",
        "load_fixture",
        "GeminiScript",
        "ReplayServer",
    ):
        assert name in sse_toolkit.__all__


def test_every_public_name_of_a_layer_is_exported_by_its_subpackage_once() -> None:
    seen: dict[str, str] = {}
    for face in FACES[1:]:
        for name in face.__all__:
            assert name not in seen, f"{name} is exported by {seen.get(name)} and {face.__name__}"
            seen[name] = face.__name__


def test_moved_names_still_resolve_from_the_top_level() -> None:
    for name, layer in sse_toolkit._MOVED.items():
        module = importlib.import_module(f"sse_toolkit.{layer}")
        assert getattr(sse_toolkit, name) is getattr(module, name)
    assert sse_toolkit.END_RESET is sse_toolkit.fixture.End.RESET
    with pytest.raises(AttributeError):
        sse_toolkit.no_such_name  # noqa: B018


def test_private_modules_declare_all_and_export_only_what_exists() -> None:
    for info in pkgutil.walk_packages(sse_toolkit.__path__, "sse_toolkit."):
        leaf = info.name.rsplit(".", 1)[-1]
        if not leaf.startswith("_") or leaf in ("__main__", "_version"):
            continue
        if info.name == GROUP + "__mypyc":  # the compiled modules' shared code (see sse_toolkit/_compiled.py)
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), f"{info.name} declares no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name!r}"


def test_package_ships_py_typed() -> None:
    assert pathlib.Path(sse_toolkit.__path__[0], "py.typed").is_file()
