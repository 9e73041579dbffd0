"""The public surface is exactly what ``sse_toolkit.__all__`` lists, sorted, and each name is documented."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil

import sse_toolkit


def test_all_is_sorted_and_unique() -> None:
    assert sse_toolkit.__all__ == sorted(set(sse_toolkit.__all__))


def test_every_name_in_all_exists() -> None:
    missing = [name for name in sse_toolkit.__all__ if not hasattr(sse_toolkit, name)]
    assert not missing


def test_every_public_attribute_is_in_all() -> None:
    public = {
        name
        for name, value in vars(sse_toolkit).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(sse_toolkit.__all__) | {"annotations"}


def test_public_classes_and_functions_have_docstrings() -> None:
    undocumented = [
        name
        for name in sse_toolkit.__all__
        if (inspect.isclass(getattr(sse_toolkit, name)) or inspect.isfunction(getattr(sse_toolkit, name)))
        and not inspect.getdoc(getattr(sse_toolkit, name))
    ]
    assert not undocumented


def test_private_modules_declare_all_and_export_only_what_exists() -> None:
    for info in pkgutil.iter_modules(sse_toolkit.__path__):
        if not info.name.startswith("_") or info.name in ("__main__", "_version"):
            continue
        module = importlib.import_module(f"sse_toolkit.{info.name}")
        assert hasattr(module, "__all__"), f"sse_toolkit.{info.name} declares no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"sse_toolkit.{info.name}.__all__ names missing {name!r}"


def test_package_ships_py_typed() -> None:
    assert pathlib.Path(sse_toolkit.__path__[0], "py.typed").is_file()
