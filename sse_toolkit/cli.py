"""Surface layer: the command-line tools (``sse-toolkit`` and its subcommands), built with click.

Every command reads its input as it arrives (so it works on a live ``curl -N … |`` pipe), prints as it goes,
and turns any error into one line on stderr and a non-zero exit: never a traceback.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from typing import IO, Any, NoReturn

import click
import orjson

from .parser._exceptions import SSEError
from .parser._http_head import HeadSplitter
from .parser._parser import EventParser
from ._version import __version__

__all__ = ["main", "replay_main"]

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
        # A FixtureError already starts with FILE:LINE; don't name the file twice.
        _fail(str(exc) if getattr(exc, "path", None) else f"{source}: {exc}")
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object.")
@click.option("--plot", "plot_out", metavar="OUT.svg|OUT.png", type=click.Path(dir_okay=False, path_type=str),
              help='Also draw a timeline (events, cumulative tokens); needs pip install "sse-toolkit[plot]".')
@click.argument("fixture", type=click.Path(exists=True, dir_okay=False, path_type=str))
def stats(as_json: bool, plot_out: str | None, fixture: str) -> None:
    """Print statistics of FIXTURE: events, bytes, duration, time to first byte and first token, the gaps
    between events (p50/p90/p99/max), tokens per second. Times need a recorded fixture; they are "unknown"
    (null in --json) for a plain body."""
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
        click.option("--status", type=int, help="Answer every request with this error status (429, 500, 503)."),
        click.option("--retry-after", type=float, default=7, show_default=True,
                     help="Seconds in the 429's RetryInfo (exact) and Retry-After header (rounded up)."),
        click.option("--error-after", type=int, metavar="N", help="Send the API's mid-stream error after N events."),
        click.option("--error-code", type=int, default=503, show_default=True, help="Status of that mid-stream error."),
        click.option("--disconnect-after", type=int, metavar="N", help="Reset the connection after N events."),
        click.option("--disconnect-after-bytes", type=int, metavar="N", help="Reset the connection after N bytes."),
        click.option("--rechunk", metavar="SIZE|random", help="Re-split the body: SIZE bytes per chunk, or random."),
        click.option("--latency", type=float, default=0.0, help="Seconds before the first byte."),
        click.option("--event-latency", type=float, default=0.0, help="Extra seconds before each later event."),
        click.option("--jitter", type=float, default=0.0, help="Random 0..JITTER seconds added to each delay."),
        click.option("--seed", type=int, help="Seed for random rechunk sizes and jitter."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sse-replay")
@click.argument("path", type=click.Path(dir_okay=True, path_type=str))
@click.option("--serve", is_flag=True, help="Serve PATH (a fixture or a directory) as a local Gemini API.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="2 = twice as fast, 0 = no delays.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (with --serve).")
@click.option("--port", type=int, default=0, show_default=True, help="Port to listen on; 0 picks a free one.")
@click.option("--header-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds a client has to send its request line and headers (with --serve).")
@click.option("--require-key", is_flag=False, flag_value="", default=None, metavar="[=KEY]",
              help="Demand an API key (?key= or x-goog-api-key); with =KEY, exactly that key.")
@click.option("--script", "script_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE.json",
              help="With --serve: a JSON list of steps that successive requests get (see README, verdict).")
@_fault_options
def replay_main(path: str, serve: bool, speed: float, host: str, port: int, header_timeout: float,
                require_key: str | None,
                script_file: str | None = None, **faults: Any) -> None:
    """Replay a recorded stream.

    sse-replay FILE writes the recorded body to stdout at its recorded pace (a fixture without timing at
    50 ms per event), flushing each chunk. sse-replay --serve PATH prints its base URL
    (http://127.0.0.1:PORT) and serves PATH as the Gemini REST API until SIGINT or SIGTERM.
    """
    from .fixture._errors import FixtureError
    from .fixture._io import load_fixture
    from .fixture._pace import play
    from .replay._faults import Faults
    from .replay._app import ReplayServer

    with _one_line_errors(path), _fixture_errors_name_their_file(FixtureError):
        if faults["rechunk"] is not None and faults["rechunk"] != "random":
            try:
                faults["rechunk"] = int(faults["rechunk"])
            except ValueError:
                _fail(f"--rechunk: expected a size in bytes or 'random', got {faults['rechunk']!r}")
        fault = Faults(**faults)
        if serve:
            from .replay._scenario import load_script

            steps = load_script(script_file) if script_file else None
            server = ReplayServer(path, host=host, port=port, speed=speed, faults=fault,
                                  require_key=True if require_key == "" else require_key, script=steps)
            server.header_timeout = header_timeout
            # This process only serves. The fixtures just loaded live as long as it does: move them out of
            # the cyclic garbage collector's sight, whose full collections (they scan every live object)
            # otherwise land inside bursts of requests (measured: a 100-request burst's last first event
            # once 31 ms late with them, at most 15 ms without).
            gc.collect()
            gc.freeze()
            _serve_until_signal(server)
            return
        if fault.active or require_key is not None or script_file:
            _fail("fault and key options need --serve")
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)
            out.flush()

        for exchange in load_fixture(path).exchanges:
            play(exchange, write, speed)


@contextlib.contextmanager
def _fixture_errors_name_their_file(fixture_error: type[Exception]) -> Iterator[None]:
    """A FixtureError already reads ``FILE:LINE: ...``: print it as it is, not prefixed with the path again."""
    try:
        yield
    except fixture_error as exc:
        _fail(str(exc))


def _serve_until_signal(server: Any, prog: str = "sse-replay") -> None:
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        from .server._loop import is_loopback

        if not is_loopback(server.host):
            click.echo(f"{prog}: warning: listening on {server.host}, reachable from other machines; "
                       "fixtures and recordings may hold private data", err=True)
        click.echo(server.url)
        sys.stdout.flush()
        while not stop.wait(0.5):
            try:
                server.check()
            except SSEError as exc:  # one request failed; report it in one line and keep serving
                click.echo(f"{prog}: error: {str(exc).splitlines()[0]}", err=True)
        server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server.is_running():
            server.stop()


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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sse-record")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="The fixture file to write (rewritten atomically after each exchange).")
@click.option("--upstream", is_flag=False, flag_value="", default=None, metavar="[URL]",
              help="Proxy mode: forward to URL (alone: https://generativelanguage.googleapis.com).")
@click.option("--tee", is_flag=True, help="Tee mode: copy stdin to stdout and record it (default when piped).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Proxy: address to listen on.")
@click.option("--port", type=int, default=0, show_default=True, help="Proxy: port to listen on; 0 picks a free one.")
@click.option("--redact", multiple=True, metavar="REGEX",
              help="Also redact what REGEX matches (its first group, if it has one). Repeatable.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Proxy: seconds without a byte from the upstream before the stream counts as broken.")
def record_main(out: str, upstream: str | None, tee: bool, host: str, port: int, redact: tuple[str, ...],
                timeout: float) -> None:
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
    with _one_line_errors(out):
        redactor = Redactor(redact)
        if upstream is not None or (not tee and not _stdin_is_input()):
            from .record._proxy import DEFAULT_UPSTREAM, RecordingProxy

            proxy = RecordingProxy(upstream or DEFAULT_UPSTREAM, out, host, port, redactor, timeout,
                                   log=lambda line: click.echo(line, err=True))
            _serve_until_signal(proxy, "sse-record")
            return
        _record_stdin(out, redactor)


def _record_stdin(out: str, redactor: Any) -> None:
    import signal

    from .record._tee import record_tee

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)  # SIGTERM keeps what came, as Ctrl-C does
    try:
        fixture = record_tee(sys.stdin.buffer, sys.stdout.buffer, out, redactor)
    finally:
        signal.signal(signal.SIGTERM, previous)
    exchange = fixture.exchanges[0]
    click.echo(f"sse-record: {exchange.status}, {len(exchange.chunks)} chunks, {len(exchange.body)} bytes, "
               f"{exchange.end}; wrote {out}", err=True)


# ---------------------------------------------------------------------------------------------------------
# sse-toolkit har: fixtures to and from HAR 1.2 (browser devtools, proxies).


@main.group()
def har() -> None:
    """Convert fixtures to and from HAR 1.2 files (browser devtools, HTTP proxies)."""


@har.command("export")
@click.argument("fixture", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option("--out", "-o", type=click.File("wb"), default="-", help="The .har file to write (default: stdout).")
@click.option("--base-url", metavar="URL", help="Scheme and host for the HAR's absolute URLs "
              "(default: the recording's upstream, else http://127.0.0.1).")
def har_export(fixture: str, out: IO[bytes], base_url: str | None) -> None:
    """Write FIXTURE as HAR 1.2; chunk times, chunk boundaries and breaks go in "_sse_toolkit" fields."""
    from .fixture._har import fixture_to_har
    from .fixture._io import load_fixture

    with _one_line_errors(fixture):
        out.write(orjson.dumps(fixture_to_har(load_fixture(fixture), base_url), option=orjson.OPT_INDENT_2))
        out.write(b"\n")


@har.command("import")
@click.argument("har_file", metavar="FILE.har", type=click.File("rb"))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="The fixture file to write.")
@click.option("--match", metavar="TEXT", help="Keep only entries whose URL contains TEXT.")
@click.option("--redact", multiple=True, metavar="REGEX", help="Also redact what REGEX matches. Repeatable.")
def har_import(har_file: IO[bytes], out: str, match: str | None, redact: tuple[str, ...]) -> None:
    """Write the entries of FILE.har as one fixture (in order), secrets redacted as sse-record does."""
    from .fixture._har import fixture_from_har
    from .fixture._redact import Redactor

    name = _source_name(har_file)
    with _one_line_errors(name):
        redactor = Redactor(redact)
        fixture = redactor.fixture(fixture_from_har(har_file.read(), source=name, match=match))
        if not fixture.exchanges:
            _fail(f"{name}: no entries" + (f" with {match!r} in the URL" if match else ""))
        redactor.save_checked(out, fixture)
        click.echo(f"sse-toolkit: {len(fixture.exchanges)} exchanges; wrote {out}", err=True)


# -- Gemini: text and json ------------------------------------------------------------------------------------


class _TextPrinter:
    """Writes the first candidate's parts as they stream: text as is, thoughts on request, tools readably."""

    def __init__(self, out: IO[bytes], thoughts: bool) -> None:
        self.out = out
        self.thoughts = thoughts
        self.kind: str | None = None  # what was printed last: "text", "thought" or "block"
        self.last = b"\n"

    def _write(self, text: str, kind: str) -> None:
        if not text:
            return
        if self.kind is not None and kind != self.kind:
            # A new kind of output starts on its own paragraph.
            self._raw(b"\n" if self.last == b"\n" else b"\n\n")
        self.kind = kind
        self._raw(text.encode())

    def _raw(self, data: bytes) -> None:
        self.out.write(data)
        self.last = data[-1:]

    def response(self, response: Any) -> None:
        for candidate in response.candidates or ():
            if candidate.index not in (None, 0) or candidate.content is None:
                continue
            for part in candidate.content.parts or ():
                self._part(part)
        self.out.flush()

    def _part(self, part: Any) -> None:
        if isinstance(part.text, str):
            if part.thought:
                if self.thoughts:
                    self._write(part.text, "thought")
            else:
                self._write(part.text, "text")
        elif part.function_call is not None:
            call = part.function_call
            args = orjson.dumps(call.args or {}).decode()
            ident = f"  (id {call.id})" if call.id else ""
            self._write(f"function call: {call.name}({args}){ident}\n", "block")
        elif part.executable_code is not None:
            code = part.executable_code
            body = str(code.code or "").rstrip("\n")
            self._write(f"```{str(code.language or '').lower()}\n{body}\n```\n", "block")
        elif part.code_execution_result is not None:
            result = part.code_execution_result
            body = str(result.output or "").rstrip("\n")
            self._write(f"``` output ({result.outcome})\n{body}\n```\n", "block")
        elif part.function_response is not None:
            self._write(f"function response: {part.function_response.name}\n", "block")
        elif part.inline_data is not None:
            blob = part.inline_data
            self._write(f"[inline data: {blob.mime_type}, {len(str(blob.data or ''))} base64 characters]\n", "block")
        elif part.file_data is not None:
            self._write(f"[file: {part.file_data.file_uri} ({part.file_data.mime_type})]\n", "block")

    def end(self) -> None:
        if self.kind is not None and self.last != b"\n":
            self._raw(b"\n")
        self.out.flush()


def _gemini_failure(exc: Exception) -> NoReturn:
    """An API error, a blocked prompt or a truncated stream: one line on stderr, exit 1."""
    click.echo(" ".join(str(exc).split()), err=True)
    sys.exit(1)


@main.command()
@click.option("--thoughts", is_flag=True, help="Also print the model's thought summaries.")
@click.argument("src", type=click.File("rb"), default="-")
def text(thoughts: bool, src: IO[bytes]) -> None:
    """Print the answer text of the Gemini stream SRC (a file, or - for stdin) as it arrives.

    SRC may be alt=sse events, the JSON-array stream, curl -i output or an error body. Function calls and
    code execution are shown on their own lines. An API error, a blocked prompt or a stream cut short
    prints what arrived, then one line on stderr (e.g. "error 503 UNAVAILABLE: ...") and exits 1.
    """
    from .gemini._errors import GeminiAPIError, PromptBlockedError, TruncatedStreamError
    from .gemini._stream import iter_responses

    printer = _TextPrinter(sys.stdout.buffer, thoughts)
    with _one_line_errors(_source_name(src)):
        splitter = HeadSplitter()
        finish: str | None = None
        try:
            for response in iter_responses(_body_chunks(src, splitter), strict=True, splitter=splitter):
                printer.response(response)
                finish = response.finish_reason or finish
        except (GeminiAPIError, PromptBlockedError, TruncatedStreamError) as exc:
            printer.end()
            _gemini_failure(exc)
        finally:
            printer.end()
        if finish not in (None, "STOP"):
            click.echo(f"finish reason: {finish}", err=True)


@main.command("json")
@click.argument("src", type=click.File("rb"), default="-")
def json_command(src: IO[bytes]) -> None:
    """Print the merged final response of the Gemini stream SRC as the API's JSON (as generateContent).

    SRC is read as for "text". On an API error, a blocked prompt or a stream cut short, what arrived is
    printed merged, then one line on stderr, and the exit status is 1.
    """
    from .gemini._errors import GeminiAPIError, PromptBlockedError, TruncatedStreamError
    from .gemini._merge import ResponseMerger, check_finished
    from .gemini._stream import iter_responses
    from .gemini._wire import dumps_pretty

    out = sys.stdout.buffer
    with _one_line_errors(_source_name(src)):
        splitter = HeadSplitter()
        merger = ResponseMerger()
        try:
            for response in iter_responses(_body_chunks(src, splitter), splitter=splitter):
                merger.add(response)
            out.write(dumps_pretty(check_finished(merger.result())) + b"\n")
        except (GeminiAPIError, PromptBlockedError, TruncatedStreamError) as exc:
            if merger.count:
                out.write(dumps_pretty(merger.result()) + b"\n")
            out.flush()
            _gemini_failure(exc)
        out.flush()
