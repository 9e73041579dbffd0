# Types of the optional C accelerator (_speedups.c); the decoders _codegen generates are its reference.
from typing import Any

def tree_ok(d: Any, spec: tuple[Any, ...], /) -> bool: ...

class Builder:
    """A typed class's lazy decoder in C; see _speedups.c and _codegen.register."""

    def __init__(
        self,
        cls: type,
        fields: tuple[tuple[int, str, Any, Any], ...],
        raw: Any,
        extra: Any,
        order: Any,
        known: frozenset[str],
        tree: tuple[Any, ...] | None,
        fallback: Any,
    ) -> None: ...
    def __call__(self, d: Any, /) -> Any: ...
