# Types of the optional C accelerator (_speedups.c); _codegen's generated checks are its reference.
from typing import Any

def tree_ok(d: Any, spec: tuple[Any, ...], /) -> bool: ...
