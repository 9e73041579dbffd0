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


# A user's values where the compiled modules read them: limits set as floats or any truth value, a handler's
# Reply with a tuple of headers, a memoryview piece and stream=0, journal bounds as floats, require_key=1,
# and copies of the journal. Each is printed as the client and the server saw it.
_USER_VALUES = r"""
import copy, http.client, pickle, sys
from sse_toolkit.replay import ReplayServer
from sse_toolkit.server import LoopbackServer
from sse_toolkit.server._loop import Reply

def fetch(port, path="/", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST" if body else "GET", path, body=body, headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    got = (answer.status, answer.getheader("X-Kind"), answer.getheader("Content-Length"), answer.read())
    conn.close()
    return got

def handler(request):
    if request.path == "/tuple":
        return Reply(200, (("X-Kind", "tuple"),), [(None, b"hi")])
    if request.path == "/view":
        return Reply(200, [("X-Kind", "view")], [(None, memoryview(b"hi"))])
    return Reply(200, [("X-Kind", "joined")], [(None, b"h"), (None, b"i")], stream=0)
handler.cpu_only = True

server = LoopbackServer(handler, log_requests=0)
server.max_body, server.max_head, server.max_connections = 1e6, 65536.0, 1e3
with server:
    print([fetch(server.port, p) for p in ("/tuple", "/view", "/joined")], server.errors)

stream = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
with ReplayServer(sys.argv[1], speed=0, require_key=1) as replay:
    replay.app.journal.max_entries, replay.app.journal.max_bytes = 1e4, 6.4e7
    print(fetch(replay.port, stream, b"{}")[0], replay.errors)
    requests = replay.requests
    kept = copy.deepcopy(requests), pickle.loads(pickle.dumps([e.request for e in requests]))
    print(len(kept[0]), kept[0][0].status, kept[1][0].path, kept[1][0].body)
"""


def test_a_users_values_are_read_as_python_reads_them_compiled_or_not() -> None:
    runs = []
    for pure in (False, True):
        env = {k: v for k, v in os.environ.items() if k != "SSE_TOOLKIT_PURE_PYTHON"}
        if pure:
            env["SSE_TOOLKIT_PURE_PYTHON"] = "1"
        out = subprocess.run(
            [sys.executable, "-c", _USER_VALUES, str(FIXTURES / "cats.sse")],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr.decode()
        runs.append(out.stdout.decode().splitlines())
    assert runs[0] == runs[1]
    served, replayed, copied = runs[1]
    assert served == (
        "[(200, 'tuple', None, b'hi'), (200, 'view', None, b'hi'), (200, 'joined', '2', b'hi')] []"
    )
    assert replayed == "403 []"  # require_key=1: a key is required, none was sent
    assert copied.startswith("1 403 /v1beta/models/gemini-2.0-flash:streamGenerateContent b'{}'")
