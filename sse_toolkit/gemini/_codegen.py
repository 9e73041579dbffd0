"""Gemini layer: the typed objects' decoders, generated per class as straight-line code (``register``).

A loop over a table of fields costs several times more per response than code with one ``d.get`` per
field, as the ``__init__`` that ``dataclasses`` itself generates has (bench/bench_gemini.py shows it), so
each class gets its ``from_dict`` and lazy decoders written out as source and compiled once at import. The
source is built from the class's own dataclass fields only: nothing from outside reaches ``exec``.

Where the optional C extension was built, the lazy decoders are ``_speedups.Builder`` objects made from the
same field lists: they check the JSON types of the tree in C (``tree_ok``), store each field in its slot
and hand a tree that fails to the generated Python checks, for their error. The generated decoders stay
the reference (SSE_TOOLKIT_PURE_PYTHON=1 uses them alone; tests compare the two).
"""

from __future__ import annotations

import dataclasses
from inspect import getattr_static
from typing import Any

from ..parser._accelerators import speedups_wanted
from ._message import Message, lazy_slots

__all__ = ["SPEEDUPS", "register"]


def _load_speedups() -> Any:
    if speedups_wanted():
        try:
            from . import _speedups
        except ImportError:  # not built: no C compiler at install time
            pass
        else:
            return _speedups
    return None


_speedups = _load_speedups()
SPEEDUPS = _speedups is not None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _not_a_list(key: str, value: Any) -> Any:
    raise TypeError(f"{key!r} must be a JSON array, got {type(value).__name__}")


def _not_an_object(key: str, value: Any) -> Any:
    raise TypeError(f"{key!r}: expected a JSON object, got {type(value).__name__}")


def _check_lines(cls: type[Message], var: str, pad: str, namespace: dict[str, Any], depth: int) -> list[str]:
    """Source that checks the JSON types of the tree under dict ``var`` (a ``cls`` object), inlined.

    Where an object or an array belongs, another JSON type raises ``TypeError``, as ``from_dict`` would fail
    on it. One function for the whole tree: a call per level cost more than the checks themselves. Keys that
    are usually there are looked up one by one; the others are skipped together by one C-speed test.
    """
    lines: list[str] = []
    rare = [spec for spec in cls._NESTED if not spec[3]]  # type: ignore[attr-defined]
    common = [spec for spec in cls._NESTED if spec[3]]  # type: ignore[attr-defined]
    if rare:
        skip = f"skip_{cls.__name__}"
        namespace[skip] = frozenset(key for key, _, _, _ in rare).isdisjoint
        lines.append(f"{pad}if not {skip}({var}):")
        lines += _check_keys(rare, var, pad + "    ", namespace, depth)
    return _check_keys(common, var, pad, namespace, depth) + lines


def _check_keys(specs: list[Any], var: str, pad: str, namespace: dict[str, Any], depth: int) -> list[str]:
    value, item = f"v{depth}", f"x{depth}"
    lines = []
    for key, is_list, item_cls, _ in specs:
        # "in" and a subscript are plain bytecodes, cheaper than a call to get.
        lines += [
            f"{pad}{value} = {var}[{key!r}] if {key!r} in {var} else None",
            f"{pad}if {value} is not None:",
        ]
        if is_list:
            lines += [
                f"{pad}    if type({value}) is not list: not_a_list({key!r}, {value})",
                f"{pad}    for {item} in {value}:",
                f"{pad}        if type({item}) is not dict: not_an_object({key!r}, {item})",
                *_check_lines(item_cls, item, pad + "        ", namespace, depth + 1),
            ]
        else:
            lines += [
                f"{pad}    if type({value}) is not dict: not_an_object({key!r}, {value})",
                *_check_lines(item_cls, value, pad + "    ", namespace, depth + 1),
            ]
    return lines


def register(cls: type[Message], common: tuple[str, ...] = (), **nested: Any) -> None:
    """Fill ``_OUT`` and ``_LAZY`` of ``cls`` and generate its ``from_dict`` and lazy decoders.

    ``nested`` maps a field to its class, or to ``[class]`` for a list; ``common`` names the nested fields
    that are nearly always there (the checker looks those up first). The generated decoders are straight-line
    code, one ``d.get`` per field (see the module docstring).

    - ``from_dict``: builds the whole tree.
    - ``_lazy_from_dict``: checks the types of the whole tree, builds this object and its single nested
      objects (their own lazy decoders), and leaves the lists of objects unset (``_LazySlot``).
    - ``_lazy_build``: the same for a dict already checked (what ``_LazySlot`` uses), with no checks.
    """
    known = set()
    out = []
    lazy = {}
    nested_keys = []
    eager = ["def from_dict(cls, d):", "    get = d.get", "    obj = new(cls)"]
    build = ["def lazy_build(d):", "    obj = new(cls)"]
    checked = ["def lazy_from_dict_checked(d):", "    obj = new(cls)"]
    namespace: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "not_a_list": _not_a_list,
        "not_an_object": _not_an_object,
    }
    for f in dataclasses.fields(cls):
        if f.name in ("extra", "_order", "_raw"):
            continue
        key = _camel(f.name)
        known.add(key)
        kind_of = nested.get(f.name)
        if kind_of is None:
            out.append((f.name, key, 0))
            eager.append(f"    obj.{f.name} = get({key!r})")
            # "in" and a subscript are plain bytecodes, cheaper than a call to get.
            build.append(f"    obj.{f.name} = d[{key!r}] if {key!r} in d else None")
            checked.append(f"    obj.{f.name} = d[{key!r}] if {key!r} in d else None")
            continue
        item_cls = kind_of[0] if isinstance(kind_of, list) else kind_of
        spec = (key, isinstance(kind_of, list), item_cls, f.name in common)
        nested_keys.append(spec)
        namespace[f"d_{f.name}"] = item_cls.from_dict
        namespace[f"b_{f.name}"] = item_cls._lazy_build
        namespace[f"c_{f.name}"] = item_cls._lazy_from_dict
        eager.append(f"    v = get({key!r})")
        build.append(f"    v = d[{key!r}] if {key!r} in d else None")
        checked.append(f"    v = d[{key!r}] if {key!r} in d else None")
        if isinstance(kind_of, list):
            # Lists (candidates, parts, token details, ...) hold the bulk: built on first access. A key that
            # is absent is None at once: no _LazySlot round trip for it.
            out.append((f.name, key, 2))
            lazy[f.name] = (key, item_cls._lazy_build)
            eager.append(
                f"    obj._set_{f.name} = None if v is None else [d_{f.name}(x) for x in v] "
                f"if type(v) is list else not_a_list({key!r}, v)"
            )
            build.append(f"    if v is None: obj._set_{f.name} = None")
            checked += [
                f"    if v is None: obj._set_{f.name} = None",
                "    else:",
                f"        if type(v) is not list: not_a_list({key!r}, v)",
                "        for x0 in v:",
                f"            if type(x0) is not dict: not_an_object({key!r}, x0)",
                *_check_lines(item_cls, "x0", "            ", namespace, 1),
            ]
        else:
            # A single object (usage, content, a function call) is built at once, its own lists lazily:
            # cheaper than the _LazySlot round trip when it is read, as usage and content nearly always are.
            out.append((f.name, key, 1))
            eager.append(f"    obj.{f.name} = None if v is None else d_{f.name}(v)")
            build.append(f"    obj.{f.name} = None if v is None else b_{f.name}(v)")
            checked.append(
                f"    obj.{f.name} = None if v is None else c_{f.name}(v) if type(v) is dict "
                f"else not_an_object({key!r}, v)"
            )
    cls._NESTED = tuple(nested_keys)  # type: ignore[attr-defined]
    # Where objects and arrays of objects belong, for the C check: (key, is_list, the child's tree).
    cls._TREE = tuple((key, is_list, item._TREE) for key, is_list, item, _ in nested_keys)  # type: ignore[attr-defined]
    namespace["known"] = frozenset(known)
    namespace["issuperset"] = namespace["known"].issuperset
    prefix = "_set_" if lazy else ""
    tail = [
        f"    obj.{prefix}extra = None if issuperset(d) else "
        "{k: v for k, v in d.items() if k not in known}",
        f"    obj.{prefix}_order = tuple(d)",
    ]
    eager += [*tail, "    obj._raw = None", "    return obj"]
    # An object that keeps its dict (it has lists) makes ``extra`` and ``_order`` from it when they are read.
    lazy_tail = ["    obj._raw = d"] if lazy else [*tail, "    obj._raw = None"]
    build += [*lazy_tail, "    return obj"]
    checked += [*lazy_tail, "    return obj"]
    if lazy:
        # The slots an object decoded lazily may leave unset read through a descriptor that makes them; the
        # decoders set them as ``_set_<name>``, the plain slot (_message.py).
        lazy_slots(cls, ("extra", "_order", *lazy))
    exec("\n".join(eager + build + checked), namespace)
    cls._OUT = tuple(out)
    cls._LAZY = lazy
    cls._KNOWN = namespace["known"]
    cls._FIELDS = tuple(f.name for f in dataclasses.fields(cls))
    from_dict = namespace["from_dict"]
    from_dict.__doc__ = Message.from_dict.__doc__
    cls.from_dict = classmethod(from_dict)  # type: ignore[assignment,method-assign]
    checked_decoder, build_decoder = namespace["lazy_from_dict_checked"], namespace["lazy_build"]
    cls._lazy_from_dict_checked = staticmethod(checked_decoder)  # type: ignore[attr-defined]
    cls._lazy_build_reference = staticmethod(build_decoder)  # type: ignore[attr-defined]
    decoders = None if _speedups is None else _c_decoders(cls, checked_decoder, build_decoder)
    if decoders is not None:
        checked_decoder, build_decoder = decoders
    cls._lazy_from_dict = staticmethod(checked_decoder)  # type: ignore[method-assign]
    cls._lazy_build = staticmethod(build_decoder)  # type: ignore[attr-defined]


def _c_decoders(cls: type[Message], checks: Any, build: Any) -> tuple[Any, Any] | None:
    """``(lazy_from_dict, lazy_build)`` of ``cls`` as C ``Builder``s, or None if a slot is not a plain one.

    Made from what ``register`` stored (``_OUT``, ``_NESTED``, ``_LAZY``); each hands what it leaves to
    Python to the generated decoder it stands for (``checks``, ``build``). A list of objects is stored, like
    the generated code stores it, through its plain slot ``_set_<name>``."""

    def slot(name: str) -> Any:  # the slot's descriptor itself, from the first class that defines it
        return getattr_static(cls, name)

    items = {key: item for key, _, item, _ in cls._NESTED}  # type: ignore[attr-defined]
    fields = tuple(
        (
            kind,
            key,
            slot(f"_set_{name}" if kind == 2 else name),
            items[key]._lazy_build if kind == 1 else None,
        )
        for name, key, kind in cls._OUT
    )
    extra, order = (None, None) if cls._LAZY else (slot("extra"), slot("_order"))
    try:
        made = [
            _speedups.Builder(cls, fields, slot("_raw"), extra, order, cls._KNOWN, *ends)
            for ends in ((cls._TREE, checks), (None, build))  # type: ignore[attr-defined]
        ]
    except TypeError:  # a field whose store is not a plain slot store: the Python decoders do it
        return None
    return made[0], made[1]
