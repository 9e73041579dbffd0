"""The request path compiled with mypyc (sse_toolkit/_compiled.py): built wherever a C compiler is, run
from its Python source under ``SSE_TOOLKIT_PURE_PYTHON``, and answering the same bytes, journal and verdict
both ways. (The rest of the suite runs on whichever is in use; CI runs the server and replay tests once
more from source.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from sse_toolkit._compiled import COMPILED, GROUP, compiled_in_use

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

# Serves two fixtures and sends requests of several kinds (a stream, a unary call, a count, an unknown
# model, a fault header, a HEAD) on one kept-alive connection and on new ones; prints where each compiled
# module came from, every answer's bytes (the Date header blanked) and the journal as JSON.
_SCRIPT = r"""
import json, re, socket, sys
import sse_toolkit
from sse_toolkit.replay import ReplayServer

def exchange(sock, request):
    sock.sendall(request)
    got = b""
    while True:
        head, sep, rest = got.partition(b"\r\n\r\n")
        if sep:
            if b"Transfer-Encoding: chunked" in head and rest.endswith(b"0\r\n\r\n"):
                break
            length = re.search(rb"Content-Length: (\d+)", head)
            if length and len(rest) >= int(length[1]) or request.startswith(b"HEAD") and length:
                break
        piece = sock.recv(65536)
        if not piece:
            break
        got += piece
    return re.sub(rb"Date: [^\r]*", b"Date: -", got)

def request(method, path, body=b"{}", extra=b""):
    head = b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
    return head % (method, path, extra, len(body)) + body

stream = b"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
asks = [
    request(b"POST", stream),
    request(b"POST", stream, b'{"contents": [{"parts": [{"text": "again"}]}]}'),
    request(b"POST", b"/v1beta/models/gemini-2.0-flash:generateContent"),
    request(b"POST", b"/v1beta/models/gemini-2.0-flash:countTokens"),
    request(b"POST", b"/v1beta/models/no-such-model:streamGenerateContent?alt=sse"),
    request(b"POST", stream, extra=b"x-sse-replay-faults: status=503\r\n"),
    request(b"HEAD", stream),
    request(b"GET", b"/v1beta/models"),
]
with ReplayServer(sys.argv[1:], speed=0) as server:
    answers = []
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for ask in asks:
            answers.append(exchange(sock, ask).decode("latin-1"))
    for ask in asks[:3]:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            answers.append(exchange(sock, ask).decode("latin-1"))
    journal = [
        {k: v for k, v in vars(entry).items() if k not in ("t", "wall", "done_t", "request", "answer_source")}
        for entry in server.requests
    ]
    server.check()
print(json.dumps({
    "origins": sorted({m.__file__.endswith(".py") for m in map(sys.modules.get, __COMPILED__)}),
    "answers": answers,
    "journal": journal,
}, default=str))
"""


def _run(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "SSE_TOOLKIT_PURE_PYTHON"}
    if pure:
        env["SSE_TOOLKIT_PURE_PYTHON"] = "1"
    code = _SCRIPT.replace("__COMPILED__", repr(list(COMPILED)))
    out = subprocess.run(
        [sys.executable, "-c", code, str(FIXTURES / "cats.sse"), str(FIXTURES / "thinking.sse")],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_request_path_is_compiled_wherever_a_c_compiler_built_it() -> None:
    """A fresh ``pip install -e .`` on a machine with a C compiler compiles it (the CI machine has one)."""
    if os.environ.get("SSE_TOOLKIT_PURE_PYTHON"):
        assert not compiled_in_use()
        return
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the package runs pure Python")
    assert compiled_in_use()
    for name in COMPILED:
        module = sys.modules.get(name) or __import__(name, fromlist=["_"])
        assert module.__file__ is not None and not module.__file__.endswith(".py"), name
    assert __import__(GROUP + "__mypyc", fromlist=["_"]) is not None


def test_pure_python_runs_the_request_path_from_source_with_the_same_answers_and_journal() -> None:
    if not compiled_in_use() and not os.environ.get("SSE_TOOLKIT_PURE_PYTHON"):
        pytest.skip("the request path is not compiled here: there is only one way to run it")
    compiled, source = _run(pure=False), _run(pure=True)
    assert source["origins"] == [True]  # every compiled module came from its .py
    assert compiled["origins"] == [False]
    assert compiled["answers"] == source["answers"]
    assert compiled["journal"] == source["journal"]
    answers = source["answers"]
    assert isinstance(answers, list) and len(answers) == 11
    assert answers[0].startswith("HTTP/1.1 200 ") and answers[0].endswith("0\r\n\r\n")
    assert answers[5].startswith("HTTP/1.1 503 ")
