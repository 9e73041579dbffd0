"""The C type check of the typed objects (``sse_toolkit/gemini/_speedups.c``, where built) says yes or no
exactly where the generated Python checks do, and a response decoded through it equals one decoded by the
Python checks alone: on the real captures' responses, and on those with any node replaced by a value of
another JSON type."""

from __future__ import annotations

import copy
import os
import pathlib
import subprocess
import sys
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse_toolkit import GeminiDecodeError, GenerateContentResponse, iter_events, iter_responses
from sse_toolkit.gemini import _codegen

try:
    from sse_toolkit.gemini._speedups import tree_ok
except ImportError:  # not built: no C compiler at install time
    tree_ok = None  # type: ignore[assignment]

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


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place under ``node`` (keys of dicts, indexes of lists), parents first."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


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
        paths = _paths(d)
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
