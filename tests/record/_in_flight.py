"""Test helper for the recorder's tests: a request whose response is still streaming (the upstream hangs)
while the test stops the proxy."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import httpx

__all__ = ["streaming_request"]


@contextlib.contextmanager
def streaming_request(method: str, url: str, timeout: float = 10) -> Iterator[None]:
    """Send ``method url`` from a thread and enter once the first bytes of its body came; on leaving, wait
    (up to ``timeout``) for the thread, whose stream the test has ended by stopping the proxy."""
    streaming = threading.Event()

    def read() -> None:
        try:
            with httpx.stream(method, url, timeout=timeout) as response:
                for _ in response.iter_raw():
                    streaming.set()
        except httpx.HTTPError:
            pass  # the proxy stopping cuts the stream: that is the point

    thread = threading.Thread(target=read)
    thread.start()
    try:
        assert streaming.wait(5), f"{method} {url} never started streaming"
        yield
    finally:
        thread.join(timeout)
