"""Surface layer: the command-line tools (``sse-toolkit`` and its subcommands), built with click.

Every command reads its input as it arrives (so it works on a live ``curl -N … |`` pipe), prints as it goes,
and turns any error into one line on stderr and a non-zero exit: never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, NoReturn

import click
import orjson

from ._exceptions import SSEError
from ._http_head import HeadSplitter
from ._sse_parser import EventParser
from ._version import __version__

__all__ = ["main"]

_READ_SIZE = 64 * 1024


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Chunks of a binary stream as soon as they arrive (``read1`` returns what a pipe has, not 64 KiB)."""
    read = getattr(stream, "read1", stream.read)
    while chunk := read(_READ_SIZE):
        yield chunk


def _body_chunks(stream: IO[bytes], splitter: HeadSplitter | None = None) -> Iterator[bytes]:
    """The body of a saved or live response: ``curl -i`` heads are stripped (and kept in ``splitter``)."""
    splitter = splitter if splitter is not None else HeadSplitter()
    for chunk in _read_chunks(stream):
        if body := splitter.feed(chunk):
            yield body
    if body := splitter.close():
        yield body


def _fail(message: str) -> NoReturn:
    click.echo(f"sse-toolkit: error: {message}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def _one_line_errors(source: str) -> Iterator[None]:
    """Turn the errors a user can cause into one line naming the source; a closed pipe ends quietly."""
    try:
        yield
    except SSEError as exc:
        _fail(f"{source}: {exc}")
    except BrokenPipeError:
        # `sse-toolkit parse big.sse | head`: the reader left; exit without the interpreter's complaint.
        with contextlib.suppress(OSError):
            sys.stdout = open(  # noqa: SIM115 - replaces stdout for the interpreter's final flush
                "/dev/null", "w"
            )
        sys.exit(1)
    except OSError as exc:
        _fail(f"{source}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        sys.exit(130)


def _source_name(src: IO[bytes]) -> str:
    name = getattr(src, "name", "-")
    return "<stdin>" if name in ("-", "<stdin>", 0) else str(name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sse-toolkit")
def main() -> None:
    """Parse, inspect, record and replay Server-Sent Event streams (Gemini first)."""


@main.command()
@click.argument("src", type=click.File("rb"), default="-")
def parse(src: IO[bytes]) -> None:
    """Print each event of SRC (a file, or - for stdin) as one JSON line, as soon as it arrives.

    SRC may be a plain body (curl -N) or curl -i output with HTTP heads before the body.
    Each line is {"event", "data", "id", "retry"}.
    """
    out = sys.stdout.buffer
    with _one_line_errors(_source_name(src)):
        parser = EventParser()
        for chunk in _body_chunks(src):
            events = parser.feed(chunk)
            if events:
                out.write(b"".join(orjson.dumps(event.to_dict()) + b"\n" for event in events))
                out.flush()
        parser.close()
