"""Example: record a stream through the recording proxy, then replay the recording, all offline.

A local ReplayServer stands in for the real API (the "upstream"); against the real one, pass
``https://generativelanguage.googleapis.com`` and a real key instead. The client talks to the proxy as it
would to the API; the proxy passes every chunk on at once and writes the exchange, with its timing and
without the key, to a fixture file. Then the same client reads the recording back from a replay server.

    python examples/record_through_proxy.py [OUT.jsonl]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google import genai
from google.genai import types

from sse_toolkit import GeminiScript, RecordingProxy, ReplayServer, load_fixture


def ask(base_url: str, api_key: str) -> str:
    client = genai.Client(api_key=api_key, http_options=types.HttpOptions(base_url=base_url))
    chunks = client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello.")
    return "".join(chunk.text or "" for chunk in chunks)


def main(out: Path) -> int:
    upstream_script = GeminiScript("gemini-2.5-flash").text("Hello from the upstream, word by word.")
    with ReplayServer(upstream_script, speed=0) as upstream, RecordingProxy(upstream.url, out) as proxy:
        live = ask(proxy.url, api_key="my-secret-key")
        proxy.check()  # re-raises an error of the proxy's thread, e.g. a failed write
    print(f"live through the proxy: {live!r}")

    exchange = load_fixture(out).exchanges[0]
    key = dict(exchange.request.headers).get("x-goog-api-key") if exchange.request else None
    print(
        f"recorded {out.name}: status {exchange.status}, {len(exchange.chunks)} chunks, key saved as {key!r}"
    )
    assert "my-secret-key" not in out.read_text(encoding="utf-8")

    with ReplayServer(out, speed=0) as replay:
        replayed = ask(replay.url, api_key="test")
    print(f"replayed from the file: {replayed!r}")
    return 0 if replayed == live else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as folder:
        sys.exit(main(Path(folder) / "hello.jsonl"))
