"""Fuzz: a coverage-guided atheris (libFuzzer) harness for the parser layer (needs `pip install atheris`).

It runs the same invariant checks as fuzz_parser.py (parser whole/bytewise/random splits, with and without
a tiny ``max_event_size``; the curl -i head splitter) but lets libFuzzer steer the inputs by coverage:

    python fuzz/atheris_parser.py -max_total_time=300 -max_len=4096 fuzz/corpus/

Any broken invariant (``fuzz_parser.Failure``) or any exception that is not an ``SSEError`` is a crash;
libFuzzer then writes the input to ``crash-<sha1>`` in the current directory. To fuzz on past a known
bug, name its kind(s) in ``FUZZ_IGNORE`` (comma-separated, e.g. ``FUZZ_IGNORE=parser-chunking-error``).
"""

from __future__ import annotations

import os
import random
import sys

try:
    import atheris  # type: ignore[import-untyped]
except ImportError:  # optional: fuzz_parser.py needs nothing beyond the package
    sys.exit("atheris is not installed: pip install atheris (or run fuzz/fuzz_parser.py instead)")

with atheris.instrument_imports():
    import fuzz_parser

    import sse_toolkit  # noqa: F401 - instrumented for coverage feedback

_LIMITS = (1, 2, 3, 5, 8, 13, 32, 100, None)
_IGNORE = {kind.strip() for kind in os.environ.get("FUZZ_IGNORE", "").split(",") if kind.strip()}


def test_one_input(raw: bytes) -> None:
    provider = atheris.FuzzedDataProvider(raw)
    limit = _LIMITS[provider.ConsumeIntInRange(0, len(_LIMITS) - 1)]
    split_seed = provider.ConsumeUInt(4)
    data = provider.ConsumeBytes(provider.remaining_bytes())
    try:
        fuzz_parser.check_parser(data, random.Random(split_seed), limit=limit)
        fuzz_parser.check_head(data, random.Random(split_seed))
    except fuzz_parser.Failure as failure:
        if failure.kind not in _IGNORE:
            raise


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
