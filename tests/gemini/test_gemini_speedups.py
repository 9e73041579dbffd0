"""The C decoders of the typed objects (``sse_toolkit/gemini/_speedups.c``, where built) do what the
generated Python decoders do: the type check says yes or no exactly where the Python checks do, on the real
captures' responses and on those with any node replaced by a value of another JSON type; a ``Builder``
leaves every slot of every object as the Python decoder leaves it (set, unset for a lazy list, the same
values), so equality, repr, ``to_dict``, pickling and the lazy lists come out the same."""

from __future__ import annotations

import abc
import copy
import os
import pathlib
import pickle
import subprocess
import sys
from inspect import getattr_static
from typing import Any

import orjson
import pytest
from _captures import json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_toolkit import GeminiDecodeError, GenerateContentResponse, iter_events, iter_responses
from sse_toolkit.gemini import _codegen, _types
from sse_toolkit.gemini._message import Message as _Message

try:
    from sse_toolkit.gemini import _speedups
    from sse_toolkit.gemini._speedups import tree_ok
except ImportError:  # not built: no C compiler at install time
    _speedups = tree_ok = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(tree_ok is None, reason="the C extension is not built here")
_G: Any = GenerateContentResponse

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
RESPONSES = [
    orjson.loads(event.data)
    for path in sorted(DATA.glob("*.sse"))
    for event in iter_events([path.read_bytes()])
    if event.data.startswith("{") and '"error"' not in event.data
]
_OTHER_TYPES = [1, 2.5, "x", True, None, [], [1], ["x"], [{}], {}, {"text": 1}, [[{}]]]


def _python_says_ok(d: dict[str, Any]) -> bool:
    try:
        _G._lazy_from_dict_checked(d)
    except TypeError:
        return False
    return True


def test_the_captures_have_responses_with_nested_objects_to_check() -> None:
    assert len(RESPONSES) > 20
    assert all(tree_ok(d, _G._TREE) for d in RESPONSES)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_c_check_and_the_python_checks_agree_on_every_broken_tree(data: st.DataObject) -> None:
    d = copy.deepcopy(data.draw(st.sampled_from(RESPONSES), label="response"))
    for _ in range(data.draw(st.integers(0, 2), label="breaks")):
        paths = json_paths(d)[1:]
        if not paths:
            break
        *parents, last = data.draw(st.sampled_from(paths), label="where")
        node = d
        for step in parents:
            node = node[step]
        node[last] = copy.deepcopy(data.draw(st.sampled_from(_OTHER_TYPES), label="what"))
    ok = tree_ok(d, _G._TREE)
    assert ok == _python_says_ok(d)
    if ok:
        fast, checked = _G._lazy_from_dict(copy.deepcopy(d)), _G._lazy_from_dict_checked(copy.deepcopy(d))
        assert fast == checked
        assert fast.to_dict() == checked.to_dict() == d


def test_a_broken_tree_fails_with_the_python_checks_message() -> None:
    good = (DATA / "text-stop.sse").read_bytes().split(b"\r\n\r\n")[0]
    broken = good.replace(b'"parts": [', b'"parts": [7, ', 1)
    assert broken != good
    with pytest.raises(GeminiDecodeError, match=r"'parts'.*JSON object, got int"):
        list(iter_responses([broken + b"\r\n\r\n"]))


@pytest.mark.parametrize("spec", [[("a", False, ())], (("a", False),), (("a", False, 7),)])
def test_a_spec_of_the_wrong_shape_is_a_python_error(spec: Any) -> None:
    with pytest.raises(TypeError):
        tree_ok({"a": {}}, spec)


def test_keys_whose_comparison_raises_or_changes_the_dict_end_cleanly() -> None:
    class Nasty(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            held.clear()
            raise RuntimeError("no")

    held = {Nasty("candidates"): [{}]}
    with pytest.raises(RuntimeError, match="no"):
        tree_ok(held, (("candidates", True, ()),))
    assert tree_ok({"candidates": "x"}, (("candidates", True, ()),)) is False
    assert tree_ok([], (("candidates", True, ()),)) is False


def test_sse_toolkit_pure_python_decodes_with_the_python_checks_alone() -> None:
    code = (
        "from sse_toolkit.gemini import _codegen, GenerateContentResponse as G; "
        "print(_codegen.SPEEDUPS, G._lazy_from_dict.__name__)"
    )
    env = {**os.environ, "SSE_TOOLKIT_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "lazy_from_dict_checked"]
    in_use = _codegen.SPEEDUPS
    assert in_use is not bool(os.environ.get("SSE_TOOLKIT_PURE_PYTHON"))


# -- the C decoders (Builder) against the generated Python ones ----------------------------------------------

_CLASSES = sorted(
    {cls for cls in vars(_types).values() if isinstance(cls, type) and hasattr(cls, "_lazy_build_reference")},
    key=lambda cls: cls.__name__,
)


def _slots(cls: type) -> list[Any]:
    """Every slot descriptor of ``cls`` by name, as instances see them (the first in the MRO)."""
    names = {name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())}
    return [
        next(k.__dict__[n] for k in cls.__mro__ if n in k.__dict__ and hasattr(k.__dict__[n], "__get__"))
        for n in sorted(names)
    ]


def _state(obj: Any) -> Any:
    """What each slot of ``obj`` holds, read through the plain slot (unset stays unset); nested ones too."""
    if not isinstance(obj, _Message):
        return obj
    state = {}
    for slot in _slots(type(obj)):
        raw_slot = getattr(slot, "slot", slot)  # a _LazySlot or _ClearsRaw wraps the plain one
        raw_slot = getattr(raw_slot, "slot", raw_slot)
        try:
            value = raw_slot.__get__(obj, type(obj))
        except AttributeError:
            state[raw_slot.__name__] = "<unset>"
            continue
        state[raw_slot.__name__] = _state(value)
    return (type(obj).__name__, state)


def test_every_typed_class_decodes_through_a_c_builder() -> None:
    assert len(_CLASSES) > 15
    if os.environ.get("SSE_TOOLKIT_PURE_PYTHON"):
        assert all(cls._lazy_build is cls._lazy_build_reference for cls in _CLASSES)
        return
    assert all(type(cls._lazy_build).__name__ == "Builder" for cls in _CLASSES)
    assert all(type(cls._lazy_from_dict).__name__ == "Builder" for cls in _CLASSES)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_c_builder_leaves_every_slot_as_the_python_decoder_does(data: st.DataObject) -> None:
    d = data.draw(st.sampled_from(RESPONSES), label="response")
    d = copy.deepcopy(d)
    if data.draw(st.booleans(), label="unknown keys"):  # keys no class models go to extra, in order
        for node in [d, *(v for v in d.values() if isinstance(v, dict))]:
            node[data.draw(st.sampled_from(["zz", "newField", "text"]))] = data.draw(
                st.sampled_from([1, None, []])
            )
    fast, reference = _G._lazy_build(copy.deepcopy(d)), _G._lazy_build_reference(copy.deepcopy(d))
    assert _state(fast) == _state(reference)
    assert fast == reference and repr(fast) == repr(reference)
    assert fast.to_dict() == reference.to_dict() == d
    assert _state(fast) == _state(reference)  # equality and to_dict built the lazy lists alike
    assert pickle.loads(pickle.dumps(fast)) == reference


@pytest.mark.parametrize("cls", _CLASSES, ids=lambda cls: cls.__name__)
def test_each_c_builder_equals_its_python_decoder_on_an_empty_and_a_null_object(cls: Any) -> None:
    for d in ({}, dict.fromkeys((key for _, key, _ in cls._OUT), None), {"unknown": 1}):
        assert _state(cls._lazy_build(dict(d))) == _state(cls._lazy_build_reference(dict(d)))


def test_a_builder_refuses_what_is_not_a_plain_slot_of_its_class() -> None:
    Builder = _speedups.Builder
    part = _types.Part
    raw = getattr_static(part, "_raw")
    text = part.__dict__["text"]
    known = part._KNOWN
    with pytest.raises(TypeError):  # a property is no slot
        Builder(part, ((0, "text", property(lambda s: 1), None),), raw, raw, raw, known, None, repr)
    with pytest.raises(TypeError):  # another class's slot
        Builder(int, ((0, "text", text, None),), raw, raw, raw, known, None, repr)
    with pytest.raises(TypeError):  # no Python decoder to fall back on
        Builder(part, (), raw, raw, raw, known, (), None)
    with pytest.raises(TypeError):  # an object field whose child cannot be called
        Builder(part, ((1, "text", text, 1),), raw, raw, raw, known, None, repr)
    with pytest.raises(TypeError):  # no such kind
        Builder(part, ((3, "text", text, None),), raw, raw, raw, known, None, repr)


def test_a_builder_whose_child_raises_frees_what_it_made_and_raises() -> None:
    content = _types.Candidate
    raw, slot = getattr_static(content, "_raw"), getattr_static(content, "content")

    def child(value: Any) -> Any:
        raise ValueError("child")

    name, (key, _) = next(iter(content._LAZY.items()))
    fields = ((1, "content", slot, child), (2, key, content.__dict__[f"_set_{name}"], None))
    build = _speedups.Builder(content, fields, raw, None, None, None, None, repr)
    with pytest.raises(ValueError, match="child"):
        build({"content": {}})
    assert build([]) == "[]"  # anything but a dict goes to the Python decoder (here repr)
    with pytest.raises(TypeError):
        build({}, {})


def _outcome(decode: Any, d: dict[Any, Any]) -> Any:
    try:
        return _state(decode(d))
    except Exception as exc:
        return type(exc), str(exc)


class _Clears:
    """A dict key whose hash, once armed, empties the dict: what no JSON decoder makes. Read borrowed while
    the dict was walked, its key and value were freed under the C (before such keys went to Python)."""

    def __init__(self) -> None:
        self.d: dict[Any, Any] | None = None

    def __hash__(self) -> int:
        if self.d is not None:
            d, self.d = self.d, None
            d.clear()
        return 12345


def _hostile() -> dict[Any, Any]:
    key = _Clears()
    d: dict[Any, Any] = {"name": "f", 1.5: "a float key", key: object()}
    key.d = d
    return d


@pytest.mark.parametrize(
    "pair", [("_lazy_build", "_lazy_build_reference"), ("_lazy_from_dict", "_lazy_from_dict_checked")]
)
def test_a_key_that_is_not_a_str_is_left_to_the_python_decoder(pair: tuple[str, str]) -> None:
    function_call = _types.FunctionCall
    fast, reference = (getattr(function_call, name) for name in pair)
    assert _outcome(fast, _hostile()) == _outcome(reference, _hostile())
    assert _outcome(fast, {"name": "f", 1.5: 2}) == _outcome(reference, {"name": "f", 1.5: 2})


def _part_slots() -> tuple[Any, ...]:
    return tuple(getattr_static(_types.Part, name) for name in ("_raw", "extra", "_order", "text"))


def test_builders_nested_deeper_than_the_recursion_limit_raise_recursion_error() -> None:
    part = _types.Part
    raw, extra, order, text = _part_slots()
    build = _speedups.Builder(part, (), raw, extra, order, frozenset(), None, repr)
    for _ in range(3000):
        field = ((1, "text", text, build),)
        build = _speedups.Builder(part, field, raw, extra, order, frozenset({"text"}), None, repr)
    d: dict[str, Any] = {}
    node = d
    for _ in range(3000):
        node["text"] = node = {}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(500)
    try:
        with pytest.raises(RecursionError):
            build(d)
    finally:
        sys.setrecursionlimit(limit)


def test_an_abstract_class_is_left_to_the_python_decoder() -> None:
    raw, extra, order, _ = _part_slots()

    class Abstract(_types.Part, metaclass=abc.ABCMeta):  # type: ignore[misc]
        __slots__ = ()

        @abc.abstractmethod
        def f(self) -> None: ...

    def reference(d: dict[str, Any]) -> Any:  # as the generated decoder starts
        return object.__new__(Abstract)

    build = _speedups.Builder(Abstract, (), raw, extra, order, frozenset(), None, reference)
    with pytest.raises(TypeError, match="abstract"):
        build({})


def test_builders_chained_through_their_fallbacks_raise_recursion_error() -> None:
    raw, extra, order, _ = _part_slots()
    build: Any = repr
    for _ in range(3000):
        build = _speedups.Builder(_types.Part, (), raw, extra, order, frozenset(), None, build)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(500)
    try:
        with pytest.raises(RecursionError):
            build([])  # not a dict: each hands it to the next
    finally:
        sys.setrecursionlimit(limit)


def test_a_builder_reads_the_fields_in_the_dataclass_order_as_the_python_decoder() -> None:
    # A nested object's key, when hashed, changes a later field of its parent: the two decoders must read
    # that field at the same moment (only keys no JSON decoder makes can do this).
    class Changes:
        def __init__(self, parent: dict[Any, Any]) -> None:
            self.parent, self.armed = parent, False

        def __hash__(self) -> int:
            if self.armed:
                self.parent["thought"] = "changed"
            return 1

    def part() -> dict[Any, Any]:
        d: dict[Any, Any] = {"text": "a", "thought": "first"}
        key = Changes(d)
        d["inlineData"] = {"mimeType": "x", key: 1}
        key.armed = True  # from now on, not while the dict was built
        return d

    fast, reference = _types.Part._lazy_build(part()), _types.Part._lazy_build_reference(part())
    assert fast.thought == reference.thought == "changed"
    assert (fast.text, len(fast.inline_data.extra)) == (reference.text, len(reference.inline_data.extra))
