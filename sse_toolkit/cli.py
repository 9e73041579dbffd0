"""Surface layer: the command-line tools (``sse-toolkit`` and its subcommands), built with click.

Every command reads its input as it arrives (so it works on a live ``curl -N … |`` pipe), prints as it goes,
and turns any error into one line on stderr and a non-zero exit: never a traceback.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn

import click
import orjson

from ._compiled import compiled_in_use
from ._terminal import TextPrinter
from ._version import __version__
from .gemini._codegen import SPEEDUPS as _GEMINI_SPEEDUPS
from .parser._exceptions import SSEError
from .parser._http_head import HeadSplitter
from .parser._parser import SPEEDUPS as _PARSER_SPEEDUPS
from .parser._parser import EventParser

__all__ = ["main", "replay_main"]

_READ_SIZE = 64 * 1024
# --version says whether the optional C accelerators and the compiled request path (server) were built
# (setup.py) and are in use.
_ACCELERATED = [
    name
    for name, on in (
        ("parser", _PARSER_SPEEDUPS),
        ("gemini", _GEMINI_SPEEDUPS),
        ("server", compiled_in_use()),
    )
    if on
]
_VERSION_MESSAGE = "%(prog)s, version %(version)s " + (
    f"(C speedups: {', '.join(_ACCELERATED)})" if _ACCELERATED else "(pure Python)"
)


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


def _program() -> str:
    """The console script running: the name of the root command (``@click.command("sse-replay")``).

    Each console script names its own errors; a command not (yet) named so falls back to ``sse-toolkit``.
    """
    ctx = click.get_current_context(silent=True)
    name = ctx.find_root().command.name if ctx is not None else None
    return name if name and name.startswith("sse-") else "sse-toolkit"


def _fail(message: str, prog: str | None = None) -> NoReturn:
    """One line ``PROG: error: MESSAGE`` on stderr, exit 1; ``prog`` defaults to the running command's."""
    click.echo(f"{prog or _program()}: error: {message}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def _open_input(path: str) -> Iterator[IO[bytes]]:
    """The file at ``path`` (``-``: stdin), opened inside the command (within :func:`_one_line_errors`) so
    that a missing or unreadable file is one line and exit 1, not click's usage message and exit 2."""
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as src:
        yield src


def _input_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


# Input paths are checked by opening them inside the command (one line, exit 1), not by click (exit 2).
_INPUT = click.Path(allow_dash=True, path_type=str)  # a stream: a file, or - for stdin
_FIXTURE = click.Path(path_type=str)  # a fixture file (loading it reports a missing one)


@contextlib.contextmanager
def _one_line_errors(source: str) -> Iterator[None]:
    """Turn the errors a user can cause into one line naming the source; a closed pipe ends quietly."""
    try:
        yield
    except SSEError as exc:
        # A FixtureError already starts with FILE:LINE; don't name the file twice.
        _fail(str(exc) if getattr(exc, "path", None) else f"{source}: {exc}")
    except BrokenPipeError:
        # `sse-toolkit parse big.sse | head`: the reader took what it wanted and left. Not a failure (exit 0,
        # as ripgrep does: a pipeline under `set -o pipefail` must not fail by how fast `head` was), and
        # without the interpreter's complaint.
        with contextlib.suppress(OSError):
            sys.stdout = open(  # noqa: SIM115 - replaces stdout for the interpreter's final flush
                "/dev/null", "w"
            )
        sys.exit(0)
    except OSError as exc:
        _fail(f"{source}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        sys.exit(130)


_MAIN_EPILOG = """\b
Examples:
  sse-toolkit parse saved.sse              each event as one JSON line
  curl -sN URL | sse-toolkit text          a Gemini answer as readable text
  sse-toolkit stats recorded.jsonl         events, timing, tokens per second

Also installed: sse-replay (play a fixture, or serve fixtures as a local Gemini API) and sse-record (record
a stream into a fixture). Each has --help.
"""


@click.group("sse-toolkit", context_settings={"help_option_names": ["-h", "--help"]}, epilog=_MAIN_EPILOG)
@click.version_option(__version__, prog_name="sse-toolkit", message=_VERSION_MESSAGE)
def main() -> None:
    """Parse, inspect and convert Server-Sent Event streams (Gemini first)."""


@main.command(short_help="Print each event of a stream as one JSON line.")
@click.argument("src", type=_INPUT, default="-")
def parse(src: str) -> None:
    """Print each event of SRC (a file, or - for stdin) as one JSON line.

    Each event is printed as soon as it arrives, so a live curl -N pipe works. SRC may be a plain body
    (curl -N) or curl -i output with HTTP heads before the body. Each line is {"event", "data", "id",
    "retry"}.
    """
    out = sys.stdout.buffer
    with _one_line_errors(_input_name(src)), _open_input(src) as stream:
        parser = EventParser()
        for chunk in _body_chunks(stream):
            events = parser.feed(chunk)
            if events:
                out.write(b"".join(orjson.dumps(event.to_dict()) + b"\n" for event in events))
                out.flush()
        parser.close()


@main.command(short_help="Print the numbers of a fixture: events, timing, tokens per second.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object.")
@click.option(
    "--plot",
    "plot_out",
    metavar="OUT.svg|OUT.png",
    type=click.Path(dir_okay=False, path_type=str),
    help='Also draw a timeline (events, cumulative tokens); needs pip install "sse-toolkit[plot]".',
)
@click.argument("fixture", type=_FIXTURE)
def stats(as_json: bool, plot_out: str | None, fixture: str) -> None:
    """Print statistics of the fixture FIXTURE.

    Events, bytes, duration, time to first byte and first token, the gaps between events (p50/p90/p99/max),
    tokens per second. Times need a recorded fixture; they are "unknown" (null in --json) for a plain body.
    """
    from .fixture._io import load_fixture
    from .fixture._stats import fixture_stats, render_stats

    with _one_line_errors(fixture):
        result = fixture_stats(load_fixture(fixture), source=fixture)
        if plot_out is not None:
            from .fixture._plot import plot_stats

            plot_stats(result, plot_out)
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        else:
            click.echo(render_stats(result))


# ---------------------------------------------------------------------------------------------------------
# sse-replay (console script): play a fixture to stdout, or serve fixtures as the Gemini API.


def _fault_options(func: Any) -> Any:
    """The fault flags of ``sse-replay --serve`` (each is a field of ``sse_toolkit.Faults``)."""
    options = [
        click.option(
            "--status", type=int, help="Answer every request with this error status (429, 500, 503)."
        ),
        click.option(
            "--retry-after",
            type=float,
            default=7,
            show_default=True,
            help="Seconds in the 429's RetryInfo (exact) and Retry-After header (rounded up).",
        ),
        click.option(
            "--error-after", type=int, metavar="N", help="Send the API's mid-stream error after N events."
        ),
        click.option(
            "--error-code", type=int, default=503, show_default=True, help="Status of that mid-stream error."
        ),
        click.option(
            "--truncate-after",
            type=int,
            metavar="N",
            help="End the stream cleanly after N events, before the one with the finishReason.",
        ),
        click.option(
            "--disconnect-after", type=int, metavar="N", help="Reset the connection after N events."
        ),
        click.option(
            "--disconnect-after-bytes", type=int, metavar="N", help="Reset the connection after N bytes."
        ),
        click.option(
            "--rechunk", metavar="SIZE|random", help="Re-split the body: SIZE bytes per chunk, or random."
        ),
        click.option("--latency", type=float, default=0.0, help="Seconds before the first byte."),
        click.option(
            "--event-latency", type=float, default=0.0, help="Extra seconds before each later event."
        ),
        click.option(
            "--jitter", type=float, default=0.0, help="Random 0..JITTER seconds added to each delay."
        ),
        click.option("--seed", type=int, help="Seed for random rechunk sizes and jitter."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class _ReplayCommand(click.Command):
    """``sse-replay``: ``--require-key`` is a plain flag (so ``--require-key fixtures/`` leaves the path
    alone) and ``--key KEY`` names the key; the documented ``--require-key=KEY`` is read as ``--key KEY``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":  # what follows is arguments, not options
                rewritten += args[index:]
                break
            if arg.startswith("--require-key="):
                rewritten += ["--key", arg.partition("=")[2]]
            else:
                rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


_REPLAY_EPILOG = """\b
Examples:
  sse-replay fixtures/cats.sse                watch a recorded answer stream in
  sse-replay --serve fixtures/                serve them as a local Gemini API
  sse-replay --serve fixtures/ --status 503   every request gets the API's 503

Then point the client's base URL at the URL it prints; see docs/replay.md.
"""


@click.command(
    "sse-replay",
    cls=_ReplayCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_REPLAY_EPILOG,
)
@click.version_option(__version__, prog_name="sse-replay", message=_VERSION_MESSAGE)
@click.argument("path", type=click.Path(dir_okay=True, path_type=str))
@click.option("--serve", is_flag=True, help="Serve PATH (a fixture or a directory) as a local Gemini API.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="2 = twice as fast, 0 = no delays.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (with --serve).")
@click.option("--port", type=int, default=0, show_default=True, help="Port to listen on; 0 picks a free one.")
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send its request line and headers (with --serve).",
)
@click.option(
    "--require-key",
    is_flag=True,
    help="Demand an API key (?key= or x-goog-api-key), any key (with --serve).",
)
@click.option(
    "--key",
    metavar="KEY",
    help="Demand exactly this API key (with --serve); --require-key=KEY says the same.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Write the recorded bytes exactly, even on a terminal (piped output always is).",
)
@click.option(
    "--script",
    "script_file",
    type=click.Path(path_type=str),
    metavar="FILE.json",
    help="With --serve: a JSON list of steps that successive requests get (see docs/verdict.md).",
)
@_fault_options
def replay_main(
    path: str,
    serve: bool,
    speed: float,
    host: str,
    port: int,
    header_timeout: float,
    require_key: bool,
    key: str | None,
    raw: bool = False,
    script_file: str | None = None,
    **faults: Any,
) -> None:
    """Play a recorded stream, or serve fixtures as a local Gemini API.

    sse-replay FILE plays the recorded stream at its recorded pace. On a terminal it shows the events as
    they arrive (a Gemini answer as readable text; a fixture without timing at one event every 0.4 s) and
    ends with one line: events, duration, how the stream ended. Piped, or with --raw, it writes the
    recorded body byte for byte (a fixture without timing at 50 ms per event), flushing each chunk.

    sse-replay --serve PATH prints its base URL (http://127.0.0.1:PORT) and serves PATH (a fixture or a
    directory of them) as the Gemini REST API until SIGINT or SIGTERM.
    """
    from .fixture._errors import FixtureError
    from .fixture._io import load_fixture
    from .fixture._pace import play
    from .replay import ReplayServer
    from .replay._faults import Faults

    with _one_line_errors(path), _fixture_errors_name_their_file(FixtureError):
        if faults["rechunk"] is not None and faults["rechunk"] != "random":
            try:
                faults["rechunk"] = int(faults["rechunk"])
            except ValueError:
                _fail(f"--rechunk: expected a size in bytes or 'random', got {faults['rechunk']!r}")
        if key == "":
            _fail("--key (or --require-key=KEY): the key is empty; use --require-key alone for any key")
        try:
            fault = Faults(**faults)
        except SSEError as exc:  # a bad fault value is the option's problem, not PATH's
            _fail(str(exc))
        if serve:
            from .replay._scenario import load_script

            try:
                steps = load_script(script_file) if script_file else None
            except SSEError as exc:  # names the script file already
                _fail(str(exc))
            server = ReplayServer(
                path,
                host=host,
                port=port,
                speed=speed,
                faults=fault,
                require_key=key if key is not None else (True if require_key else None),
                script=steps,
            )
            server.header_timeout = header_timeout
            # This process only serves. The fixtures just loaded live as long as it does: move them out of
            # the cyclic garbage collector's sight, whose full collections (they scan every live object)
            # otherwise land inside bursts of requests (docs/guarantees.md has the figures).
            gc.collect()
            gc.freeze()
            _serve_until_signal(server)
            return
        if fault.active or require_key or key is not None or script_file:
            _fail("fault and key options need --serve")
        fixture = load_fixture(path)
        if not raw and sys.stdout.isatty():
            from ._terminal import show_fixture

            show_fixture(fixture, path, speed)
            return
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)
            out.flush()

        for exchange in fixture.exchanges:
            play(exchange, write, speed)


@contextlib.contextmanager
def _fixture_errors_name_their_file(fixture_error: type[Exception]) -> Iterator[None]:
    """A FixtureError already reads ``FILE:LINE: ...``: print it as it is, not prefixed with the path."""
    try:
        yield
    except fixture_error as exc:
        _fail(str(exc))


def _serve_until_signal(server: Any, prog: str = "sse-replay") -> None:
    def check() -> None:
        try:
            server.check()
        except SSEError as exc:  # one request failed; report it in one line and keep serving
            click.echo(f"{prog}: error: {str(exc).splitlines()[0]}", err=True)

    _run_until_signal(server, prog, "fixtures and recordings", check)


def _run_until_signal(server: Any, prog: str, holds: str, poll: Callable[[], None]) -> None:
    """Start ``server`` (the replay server or the recording proxy), print its URL (and a warning when it
    listens beyond loopback, where ``holds`` may be read), call ``poll`` twice a second until SIGINT or
    SIGTERM, then stop it and put the signal handlers back."""
    import signal
    import threading

    from .server._loop import is_loopback

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        if not is_loopback(server.host):
            click.echo(
                f"{prog}: warning: listening on {server.host}, reachable from other machines; "
                f"{holds} may hold private data",
                err=True,
            )
        click.echo(server.url)
        sys.stdout.flush()
        while not stop.wait(0.5):
            poll()
    finally:
        try:
            if server.is_running():
                server.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------------
# sse-record (console script): a recording reverse proxy, or a tee of stdin.


def _stdin_is_input() -> bool:
    """True when stdin is a pipe, socket or file (tee mode); a terminal or /dev/null means proxy mode."""
    import os
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return sys.stdin is not None  # a stream handed over in-process (CliRunner input): read it
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


@click.command("sse-record", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sse-record", message=_VERSION_MESSAGE)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The fixture file to write (each exchange appended as it ends; the tee appends each chunk).",
)
@click.option(
    "--upstream",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[URL]",
    help="Proxy mode: forward to URL (alone: https://generativelanguage.googleapis.com).",
)
@click.option(
    "--tee", is_flag=True, help="Tee mode: copy stdin to stdout and record it (default when piped)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Proxy: address to listen on.")
@click.option(
    "--port", type=int, default=0, show_default=True, help="Proxy: port to listen on; 0 picks a free one."
)
@click.option(
    "--redact",
    multiple=True,
    metavar="REGEX",
    help="Also redact what REGEX matches (its first group, if it has one). Repeatable.",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Proxy: seconds without a byte from the upstream before the stream counts as broken.",
)
def record_main(
    out: str, upstream: str | None, tee: bool, host: str, port: int, redact: tuple[str, ...], timeout: float
) -> None:
    """Record a stream into the fixture OUT, with its timing and without secrets.

    Proxy: sse-record --upstream [URL] --out FILE prints its base URL (http://127.0.0.1:PORT) and forwards
    every request to URL, passing each chunk on the moment it arrives, until SIGINT or SIGTERM. Point the
    client's base URL at it. Tee: CMD | sse-record --out FILE copies stdin to stdout unchanged and live
    (curl -i heads become the recorded status and headers). Keys, Authorization, Cookie and Set-Cookie
    values are replaced by REDACTED in the file; the upstream gets them unchanged.
    """
    from .fixture._redact import Redactor

    if tee and upstream is not None:
        _fail("give either --tee or --upstream, not both")
    if out.lower().endswith(".sse"):
        # A warning, not a refusal: the toolkit reads the file by its content whatever its name, but a
        # .sse name promises a plain body that cat or another SSE tool would not find in it.
        click.echo(
            f"sse-record: warning: {out} holds the recorded JSON Lines format, not a plain SSE body; "
            "name it .jsonl",
            err=True,
        )
    with _one_line_errors(out):
        redactor = Redactor(redact)
        if upstream is not None or (not tee and not _stdin_is_input()):
            from .record._proxy import DEFAULT_UPSTREAM, RecordingProxy

            proxy = RecordingProxy(
                upstream or DEFAULT_UPSTREAM,
                out,
                host,
                port,
                redactor,
                timeout,
                log=lambda line: click.echo(line, err=True),
            )
            _record_until_signal(proxy)
            return
        _record_stdin(out, redactor)


def _record_until_signal(proxy: Any) -> None:
    """Run the recording proxy until SIGINT or SIGTERM. Every error is printed as it comes (each one, not
    one per poll), and once more after stopping, so that a write failing in the last instant is reported
    too; then one summary line. The exit status is 1 after any error."""
    errors = 0

    def report() -> None:
        nonlocal errors
        for error in proxy.take_errors():
            errors += 1
            text = str(error) if isinstance(error, SSEError) else f"{type(error).__name__}: {error}"
            click.echo(f"sse-record: error: {text.splitlines()[0]}", err=True)

    _run_until_signal(proxy, "sse-record", "recordings", report)
    report()
    click.echo(f"sse-record: {proxy.summary()}" + (f"; {errors} errors" if errors else ""), err=True)
    if errors:
        sys.exit(1)


def _record_stdin(out: str, redactor: Any) -> None:
    import signal

    from .record._tee import record_tee

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)  # SIGTERM keeps what came, as Ctrl-C does
    try:
        fixture = record_tee(
            sys.stdin.buffer, sys.stdout.buffer, out, redactor, log=lambda line: click.echo(line, err=True)
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    exchange = fixture.exchanges[0]
    click.echo(
        f"sse-record: {exchange.status}, {len(exchange.chunks)} chunks, {len(exchange.body)} bytes, "
        f"{exchange.end}; wrote {out}",
        err=True,
    )


# ---------------------------------------------------------------------------------------------------------
# sse-toolkit har: fixtures to and from HAR 1.2 (browser devtools, proxies).


@main.group(short_help="Convert fixtures to and from HAR files (browser devtools).")
def har() -> None:
    """Convert fixtures to and from HAR 1.2 files (browser devtools, HTTP proxies)."""


@har.command("export", short_help="Write a fixture as a HAR 1.2 file.")
@click.argument("fixture", type=_FIXTURE)
@click.option(
    "--out",
    "-o",
    metavar="FILE.har",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    default="-",
    help="The .har file to write (default: stdout).",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="Scheme and host for the HAR's absolute URLs "
    "(default: the recording's upstream, else http://127.0.0.1).",
)
def har_export(fixture: str, out: str, base_url: str | None) -> None:
    """Write FIXTURE as a HAR 1.2 file.

    Chunk times, chunk boundaries and breaks go in "_sse_toolkit" fields.
    """
    from .fixture._har import fixture_to_har
    from .fixture._io import load_fixture

    with _one_line_errors(fixture):
        data = orjson.dumps(fixture_to_har(load_fixture(fixture), base_url), option=orjson.OPT_INDENT_2)
    # Opened only now, so that a fixture that fails to load leaves no empty .har behind.
    with _one_line_errors(_input_name(out)):
        if out == "-":
            sys.stdout.buffer.write(data + b"\n")
            sys.stdout.buffer.flush()
        else:
            with open(out, "wb") as sink:
                sink.write(data + b"\n")


@har.command("import", short_help="Write the entries of a HAR file as one fixture.")
@click.argument("har_file", metavar="FILE.har", type=_INPUT)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The fixture file to write.",
)
@click.option("--match", metavar="TEXT", help="Keep only entries whose URL contains TEXT.")
@click.option("--redact", multiple=True, metavar="REGEX", help="Also redact what REGEX matches. Repeatable.")
def har_import(har_file: str, out: str, match: str | None, redact: tuple[str, ...]) -> None:
    """Write the entries of FILE.har as one fixture, in order.

    Secrets are redacted as sse-record does.
    """
    from .fixture._har import fixture_from_har
    from .fixture._redact import Redactor

    name = _input_name(har_file)
    with _one_line_errors(name):
        redactor = Redactor(redact)
        with _open_input(har_file) as src:
            data = src.read()
        fixture = redactor.fixture(fixture_from_har(data, source=name, match=match))
        if not fixture.exchanges:
            _fail(f"{name}: no entries" + (f" with {match!r} in the URL" if match else ""))
        redactor.save_checked(out, fixture)
        click.echo(f"sse-toolkit: {len(fixture.exchanges)} exchanges; wrote {out}", err=True)


# -- Gemini: text and json -------------------------------------------------------------------------------


def _gemini_failure(exc: Exception) -> NoReturn:
    """An API error, a blocked prompt or a truncated stream: one line on stderr, exit 1."""
    click.echo(" ".join(str(exc).split()), err=True)
    sys.exit(1)


@main.command(short_help="Print the answer text of a Gemini stream as it arrives.")
@click.option("--thoughts", is_flag=True, help="Also print the model's thought summaries.")
@click.argument("src", type=_INPUT, default="-")
def text(thoughts: bool, src: str) -> None:
    """Print the answer text of the Gemini stream SRC (a file, or - for stdin).

    The text is printed as it arrives. SRC may be alt=sse events, the JSON-array stream, curl -i output or
    an error body. Function calls and code execution are shown on their own lines. An API error, a blocked
    prompt or a stream cut short prints what arrived, then one line on stderr (e.g. "error 503 UNAVAILABLE:
    ...") and exits 1.
    """
    from .gemini._errors import GeminiAPIError, PromptBlockedError, TruncatedStreamError
    from .gemini._stream import iter_responses

    printer = TextPrinter(sys.stdout.buffer, thoughts)
    with _one_line_errors(_input_name(src)), _open_input(src) as stream:
        splitter = HeadSplitter()
        finish: str | None = None
        try:
            for response in iter_responses(_body_chunks(stream, splitter), strict=True, splitter=splitter):
                printer.response(response)
                finish = response.finish_reason or finish
        except (GeminiAPIError, PromptBlockedError, TruncatedStreamError) as exc:
            printer.end()
            _gemini_failure(exc)
        finally:
            printer.end()
        if finish not in (None, "STOP"):
            click.echo(f"finish reason: {finish}", err=True)


@main.command("json", short_help="Print a Gemini stream merged into the API's final JSON.")
@click.argument("src", type=_INPUT, default="-")
def json_command(src: str) -> None:
    """Print the Gemini stream SRC merged into one response, as the API's JSON.

    That is the JSON generateContent would have answered. SRC is read as for "text". On an API error, a
    blocked prompt or a stream cut short, what arrived is printed merged, then one line on stderr, and the
    exit status is 1.
    """
    from .gemini._errors import GeminiAPIError, PromptBlockedError, TruncatedStreamError
    from .gemini._merge import ResponseMerger, check_finished
    from .gemini._stream import iter_responses
    from .gemini._wire import dumps_pretty

    out = sys.stdout.buffer
    with _one_line_errors(_input_name(src)), _open_input(src) as stream:
        splitter = HeadSplitter()
        merger = ResponseMerger()
        try:
            for response in iter_responses(_body_chunks(stream, splitter), splitter=splitter):
                merger.add(response)
            out.write(dumps_pretty(check_finished(merger.result())) + b"\n")
        except (GeminiAPIError, PromptBlockedError, TruncatedStreamError) as exc:
            if merger.count:
                out.write(dumps_pretty(merger.result()) + b"\n")
            out.flush()
            _gemini_failure(exc)
        out.flush()
