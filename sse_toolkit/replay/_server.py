"""Replay layer: :class:`ReplayServer`, a loopback server that serves fixtures with the Gemini replay app.

It is a composition, not a subclass: the server layer's ``LoopbackServer`` does the HTTP (its own request
log switched off, ``log_requests=False``: the app's journal is the record), the catalog holds the fixtures
as worked out at load, and the app answers (routes, faults, journal; see ``_app``). Its settings and
limits (``host``, ``backlog``, ``max_body``, ...) are the loopback server's, read and set through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar, overload

from ..server._lifecycle import LoopbackServer, ServerLifecycle
from ..server._loop import Handler, ReplayError
from ._app import GeminiReplayApp
from ._catalog import Catalog, ReplaySource
from ._faults import Faults
from ._scenario import Step, parse_steps
from ._verdict import Ending, Finding, JournalEntry, Severity, format_findings, verdict

__all__ = ["ReplayServer"]

T = TypeVar("T")


class _Setting(Generic[T]):
    """An attribute of the composed ``LoopbackServer``, read and set through the ``ReplayServer``."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Setting[T]: ...

    @overload
    def __get__(self, obj: ReplayServer, objtype: type | None = None) -> T: ...

    def __get__(self, obj: ReplayServer | None, objtype: type | None = None) -> T | _Setting[T]:
        if obj is None:
            return self
        value: T = getattr(obj.http, self.name)
        return value

    def __set__(self, obj: ReplayServer, value: T) -> None:
        setattr(obj.http, self.name, value)


class ReplayServer(ServerLifecycle):
    """A loopback server that replays fixtures as the Gemini API would send them, on its own paths, on
    Vertex AI's and on its OpenAI-compatible endpoint (and generic SSE on any other path).

    ``source``: a fixture file, a directory of fixtures, fixture bytes, a ``Fixture``, an ``Exchange``, a
    scripted stream (``GeminiScript``) or a list of these. ``speed``: 1 = recorded pace, 2 = twice as fast,
    0 = no delays; else at least ``MIN_SPEED`` (0.001), and no delay may come to more than a day. ``faults``:
    :class:`Faults` applied to every request (``add_faults`` queues one-off faults; a request header
    ``x-sse-replay-faults: status=503`` sets them per request). ``require_key``: ``True`` demands some
    key, a string demands that key. ``script``: steps, as :meth:`script` takes them.

    >>> with ReplayServer("fixtures/cats.sse") as server:  # doctest: +SKIP
    ...     print(server.url)
    """

    host = _Setting[str]("The address the server listens on (set it before start).")
    handler = _Setting[Handler]("What answers each request: the replay app (see ``app``).")
    backlog = _Setting[int]("The listen backlog (see LoopbackServer).")
    max_connections = _Setting[int]("Connections open at once; one more gets 503 (see LoopbackServer).")
    header_timeout = _Setting[float]("Seconds the request head may take (see LoopbackServer).")
    request_timeout = _Setting[float]("Seconds the whole request may take (see LoopbackServer).")
    max_head = _Setting[int]("Bytes the request head may hold; over it: 431 (see LoopbackServer).")
    max_body = _Setting[int]("Bytes a request body may hold; over it: 413 (see LoopbackServer).")

    def __init__(
        self,
        source: ReplaySource | Sequence[ReplaySource],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        faults: Faults | None = None,
        require_key: str | bool | None = None,
        script: Sequence[Any] | None = None,
        **fault_options: Any,
    ) -> None:
        if fault_options:
            if faults is not None:
                raise ReplayError("give either faults=Faults(...) or fault keywords, not both")
            faults = Faults(**fault_options)
        self.app = GeminiReplayApp(Catalog(source, speed), faults, require_key)
        self.http = LoopbackServer(self.app, host, port, log_requests=False)
        # What the last assert_resilient() was told: the pytest --sse-verdict-report table judges with it.
        self.verdict_options: dict[str, Any] = {}
        if script is not None:
            self.script(*script)

    # -- lifecycle: the loopback server's ------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234`` (IPv6 hosts in brackets)."""
        return self.http.url

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self.http.port

    @property
    def errors(self) -> list[BaseException]:
        """Errors collected from the server's threads, re-raised by :meth:`check`."""
        return self.http.errors

    def url_for(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.http.url_for(path)

    def is_running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self.http.is_running()

    def start(self) -> None:
        """Bind and serve on a daemon thread; returns once the socket listens."""
        self.http.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: end open responses (a reset), close connections, join the threads."""
        self.http.stop(timeout)

    def check(self) -> None:
        """Re-raise the first error collected from a server thread (then forget them all)."""
        self.http.check()

    # -- the journal, scenarios and the verdict ------------------------------------------------------
    @property
    def requests(self) -> list[JournalEntry]:
        """The journal: every request (but ``/_sse/`` ones) as a :class:`JournalEntry`, oldest first."""
        return self.app.journal.entries()

    @property
    def models(self) -> list[str]:
        """The model names the fixtures name (what ``GET /v1beta/models`` lists)."""
        return list(self.app.catalog.models)

    def script(self, *steps: Any) -> None:
        """Queue what successive requests get: ``"ok"`` or dicts such as ``{"status": 429, "retry_after":
        0.5}``, ``{"truncate_after": 3}`` (see ``_scenario``); in order, the last repeats. Replaces any
        scenario set before. A bad step raises ReplayError naming its index."""
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        if steps and all(isinstance(s, Step) for s in steps):
            self.app.scenario.set(list(steps))
        else:
            self.app.scenario.set(parse_steps(steps))

    def reset(self) -> None:
        """Forget the journal, the script, queued faults and each fixture's position (as
        ``POST /_sse/reset``)."""
        self.app.reset()

    def add_faults(self, faults: Faults | None = None, count: int = 1, **fault_options: Any) -> None:
        """Apply ``faults`` (or ``Faults(**fault_options)``) to the next ``count`` requests only."""
        self.app.queue_faults(faults or Faults(**fault_options), count)

    def verdict(
        self, *, strict: bool = False, result_text: str | None = None, max_attempts: int = 5
    ) -> list[Finding]:
        """Findings about the client from the journal (see ``_verdict``): empty when it behaved."""
        journal = [e for e in self.requests if e.end is not Ending.PENDING]
        return verdict(journal, strict=strict, result_text=result_text, max_attempts=max_attempts)

    def assert_resilient(
        self, strict: bool = False, result_text: str | None = None, *, max_attempts: int = 5
    ) -> None:
        """Raise AssertionError listing the findings of severity ``error`` (and the warnings beside them).

        ``strict=True`` turns "gave up after one retryable failure" into an error; ``result_text`` is what
        the application returned, checked against the whole answer of the fixture.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        self.verdict_options = {"strict": strict, "result_text": result_text, "max_attempts": max_attempts}
        findings = self.verdict(**self.verdict_options)
        if any(f.severity is Severity.ERROR for f in findings):
            raise AssertionError(format_findings(findings, len(self.requests)))
