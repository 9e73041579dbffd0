# Types of the optional C accelerator (_speedups.c); _parser._pairs_reference is its reference.
from ._event import Event

def pairs(partial: bytes, chunk: bytes, sep: bytes, last_id: str, /) -> tuple[list[Event], bytes] | None: ...
