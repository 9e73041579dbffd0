"""A real browser (headless Chromium) reads replayed streams from a page of another origin: with
``EventSource`` (GET, CORS) and with ``fetch`` POST (preflight for ``x-goog-api-key``), reading the body as
it streams. The page reports what it read back to the test's own loopback server.

Skipped only where Chromium is missing locally; in CI (``CI`` set) a missing Chromium fails the run."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import subprocess
import threading

import pytest
from _browser_diff import CHROMIUM, chromium_args

from sse_toolkit.parser._parser import parse
from sse_toolkit.replay import ReplayServer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
_IN_CI = bool(os.environ.get("CI"))
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not _IN_CI, reason="Chromium is not installed here (apt-get install chromium)"
)


@pytest.fixture(autouse=True)
def _chromium_is_required_in_ci() -> None:
    # In CI a missing browser is a broken set-up, not a reason to skip: .ci/run installs it.
    if CHROMIUM is None:
        pytest.fail("Chromium is missing in CI: .ci/run failed to install it")


PAGE = """<!doctype html><meta charset="utf-8"><title>replay</title><pre id="out">waiting</pre>
<script>
const replay = %(replay)s;
const stream = replay + "/v1beta/models/wyoming:streamGenerateContent?alt=sse";
const result = {eventsource: [], fetch: "", fetchChunks: 0, contentType: null, errors: []};
function report() {
  document.getElementById("out").textContent = JSON.stringify(result);
  fetch("/result", {method: "POST", body: JSON.stringify(result)});
}
async function viaFetch() {
  const response = await fetch(stream, {
    method: "POST",
    headers: {"Content-Type": "application/json", "x-goog-api-key": "browser-key"},
    body: JSON.stringify({contents: [{parts: [{text: "capital of Wyoming?"}]}]}),
  });
  result.contentType = response.headers.get("content-type");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    result.fetchChunks += 1;
    result.fetch += decoder.decode(value, {stream: true});
  }
}
function viaEventSource() {
  return new Promise((resolve) => {
    const source = new EventSource(stream + "&key=browser-key");
    source.onmessage = (event) => {
      result.eventsource.push(event.data);
      if (JSON.parse(event.data).candidates[0].finishReason) { source.close(); resolve(); }
    };
    source.onerror = () => { result.errors.push("eventsource error"); source.close(); resolve(); };
  });
}
viaEventSource().then(viaFetch).catch((e) => result.errors.push(String(e))).finally(report);
</script>
"""


class _PageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, page: bytes) -> None:
        self.page = page
        self.result: bytes | None = None
        self.done = threading.Event()
        super().__init__(("127.0.0.1", 0), _PageHandler)


class _PageHandler(http.server.BaseHTTPRequestHandler):
    server: _PageServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.page)))
        self.end_headers()
        self.wfile.write(self.server.page)

    def do_POST(self) -> None:
        self.server.result = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()
        self.server.done.set()


def test_chromium_reads_the_stream_with_eventsource_and_fetch(tmp_path: pathlib.Path) -> None:
    assert CHROMIUM is not None  # the skip and the CI fixture above stop a run without it
    recorded = (FIXTURES / "wyoming.sse").read_bytes()
    with ReplayServer(FIXTURES / "wyoming.sse", speed=0, require_key="browser-key") as replay:
        page = _PageServer((PAGE % {"replay": json.dumps(replay.url)}).encode())
        threading.Thread(target=page.serve_forever, daemon=True).start()
        browser = subprocess.Popen(
            chromium_args(CHROMIUM, tmp_path / "profile", f"http://127.0.0.1:{page.server_address[1]}/"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            finished = page.done.wait(60)
        finally:
            browser.kill()
            browser.wait(10)
            page.shutdown()
            page.server_close()
        replay.check()
        methods = [request.method for request in replay.requests]
    assert finished, "the page never reported back"
    result = json.loads(page.result or b"{}")
    assert result["errors"] == []
    assert result["eventsource"] == [event.data for event in parse(recorded)]
    assert result["fetch"] == recorded.decode()
    assert result["contentType"] == "text/event-stream"
    assert "OPTIONS" in methods and "GET" in methods and "POST" in methods  # preflight, EventSource, fetch
