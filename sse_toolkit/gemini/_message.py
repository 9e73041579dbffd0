"""Gemini layer: ``Message``, the base of the typed objects: exact ``to_dict``, and lists built on first use.

``to_dict`` gives back exactly the API's camelCase JSON: keys the API sent that a class does not model are
kept in ``extra`` and written back, and a decoded object remembers its key order, so
``from_dict(d).to_dict() == d`` with the same key order (``bench/bench_gemini.py`` and the wire tests rely
on it).

An object decoded lazily (``_lazy_from_dict``, what the stream decoder uses on the dicts orjson just made for
it) keeps that dict in ``_raw`` and leaves its lists of objects (candidates, parts, token details, ...) as
unset slots, which are built from the kept dict on first access and cached; a list built is
marked ``BUILT`` in the dict (those slots are ``_LazySlot`` descriptors). Equality, repr, ``to_dict``,
copy and pickle read attributes, so they see the
same values either way. The decoders themselves are generated per class by ``register`` (_codegen.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from inspect import getattr_static
from typing import Any, ClassVar, TypeVar

__all__ = ["BUILT", "Message", "clear_raw_on_assign", "lazy_slots"]

_M = TypeVar("_M", bound="Message")
# Marks a list in a lazily decoded object's kept dict as built (its slot holds the objects now).
BUILT: Any = object()


@dataclass(slots=True)
class Message:
    """Base of every typed object: the unknown keys and the key order that make ``to_dict`` exact."""

    # Keys the API sent that this class does not model, with their raw JSON values (camelCase).
    extra: dict[str, Any] | None = field(default=None, kw_only=True, repr=False)
    # Key order of the dict this object was decoded from; None for objects built in code.
    _order: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)
    # Lazily decoded objects with lists: the dict they came from. A list is replaced there by ``BUILT`` once
    # built (keeping the key order). None for objects built in code or by ``from_dict``, and those without
    # lists.
    _raw: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    # (attribute, key, kind) in field order; kind 0 plain, 1 object, 2 list of objects.
    _OUT: ClassVar[tuple[tuple[str, str, int], ...]]
    # Lists of objects, built on first access in a lazily decoded object: attribute -> (key, item builder).
    _LAZY: ClassVar[dict[str, tuple[str, Callable[[dict[str, Any]], Any]]]] = {}
    _KNOWN: ClassVar[frozenset[str]] = frozenset()
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # copy and pickle: build what is still lazy, so that no two objects share the kept dict.
        state = {name: getattr(self, name) for name in self._FIELDS}
        state["_raw"] = None
        return None, state

    @staticmethod
    def _lazy_from_dict(d: dict[str, Any]) -> Any:
        """Decode a dict that only the caller holds (it is kept and changed); type errors as ``from_dict``."""
        raise NotImplementedError  # replaced per class by ``register`` (_codegen.py)

    @classmethod
    def from_dict(cls: type[_M], d: dict[str, Any]) -> _M:
        """Decode the API's JSON object (camelCase keys, as ``orjson.loads`` returns it).

        Scalars are taken as they are; where an object or an array belongs, a value of another JSON type
        raises ``TypeError`` or ``AttributeError`` (``iter_responses`` turns them into GeminiDecodeError).
        """
        raise NotImplementedError  # replaced per class by ``register`` (_codegen.py)

    def to_dict(self) -> dict[str, Any]:
        """The API's camelCase JSON object: the known fields set, then ``extra``, in the original order."""
        out: dict[str, Any] = {}
        order = self._order
        for attr, key, kind in self._OUT:
            value = getattr(self, attr)
            if value is None:
                if order is not None and key in order:
                    out[key] = None  # an explicit null the API sent (it never does; a hand-written file may)
                continue
            if kind == 1:
                value = value.to_dict()
            elif kind == 2:
                value = [item.to_dict() for item in value]
            out[key] = value
        if self.extra:
            out.update(self.extra)
        if order is not None and tuple(out) != order:
            # Put keys back where the API had them; keys set since decoding go last.
            ordered = {key: out.pop(key) for key in order if key in out}
            ordered.update(out)
            out = ordered
        return out


def _unset(obj: Message, name: str) -> Any:
    """The value of slot ``name``, unset in ``obj``: in a lazily decoded object, a list of objects, ``extra``
    or ``_order``, made now from the kept dict and cached in the slot; else the usual AttributeError."""
    try:
        raw = obj._raw  # an object not set up yet (copy, pickle) has no _raw
    except AttributeError:
        raw = None
    if raw is None:
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")
    if name == "_order":
        value: Any = tuple(raw)
    elif name == "extra":
        known = obj._KNOWN
        value = None if known.issuperset(raw) else {k: v for k, v in raw.items() if k not in known}
    else:
        spec = obj._LAZY.get(name)
        if spec is None or raw.get(spec[0]) is BUILT:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")
        key, build = spec
        value = raw.get(key)
        if value is not None:
            raw[key] = BUILT
            value = [build(item) for item in value]
    object.__setattr__(obj, name, value)
    return value


class _LazySlot:
    """A slot that a lazily decoded object may leave unset (see the module docstring): read, an unset one is
    made by ``_unset``. Only these slots have a Python-level ``__get__``: a ``__getattr__`` on ``Message``
    would make every attribute read of every object go through CPython's slower hook (~5x a slot read)."""

    __slots__ = ("name", "slot")

    def __init__(self, slot: Any, name: str) -> None:
        self.slot = slot
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        try:
            return self.slot.__get__(obj, owner)
        except AttributeError:
            return _unset(obj, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.slot.__delete__(obj)


def lazy_slots(cls: type[Message], names: Any) -> None:
    """Make the slots ``names`` of ``cls`` ``_LazySlot``s in ``cls`` (inherited ones too, for ``cls`` only).

    Each plain slot descriptor stays reachable as ``_set_<name>``, for the decoders: a store through it is
    a plain slot store at C speed (CPython specializes it by the descriptor, whatever its name), where one
    through ``_LazySlot.__set__`` would be a Python call.
    """
    for name in names:
        slot = getattr_static(cls, name)  # the descriptor itself, from the first class that defines it
        if isinstance(slot, _LazySlot):
            slot = slot.slot
        setattr(cls, name, _LazySlot(slot, name))
        setattr(cls, f"_set_{name}", slot)


class _ClearsRaw:
    """A slot that, when assigned, marks its key ``BUILT`` in the kept dict, so that code reading the kept
    dict while the list is unbuilt (``GenerateContentResponse.text``) sees the assignment."""

    __slots__ = ("key", "raw", "slot")

    def __init__(self, slot: Any, raw: Any, key: str) -> None:
        self.slot = slot
        self.raw = raw
        self.key = key

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else self.slot.__get__(obj, owner)

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)
        try:
            raw = self.raw.__get__(obj)
        except AttributeError:  # not set up yet: dataclass __init__, copy
            return
        if raw is not None and self.key in raw:
            raw[self.key] = BUILT

    def __delete__(self, obj: Any) -> None:
        raw = self.raw.__get__(obj)
        if raw is not None and raw.get(self.key, BUILT) is not BUILT:
            raw[self.key] = BUILT  # not built yet: the slot is empty, and stays so
            return
        self.slot.__delete__(obj)


def clear_raw_on_assign(cls: type[Message], attr: str, key: str) -> None:
    """Make assigning ``cls.attr`` (JSON ``key``, a lazily built list) end reads from the kept dict."""
    # The ``_raw`` slot as instances of ``cls`` see it: on Python 3.10 ``dataclass(slots=True)`` declares the
    # inherited fields' slots again in each subclass, and the base's slot then stays empty.
    raw = getattr_static(cls, "_raw")
    setattr(cls, attr, _ClearsRaw(cls.__dict__[attr], raw, key))
