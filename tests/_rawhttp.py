"""Test helper: HTTP on a raw socket, to see exactly what a server sends (chunk boundaries, abrupt ends)."""

from __future__ import annotations

import socket


def raw_exchange(host: str, port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` as is on a fresh connection; return all the server sent until it closed or reset."""
    with socket.create_connection((host.strip("[]"), port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        try:
            while piece := sock.recv(65536):
                data += piece
        except ConnectionResetError:
            pass
        return data


def post_request(target: str, body: bytes = b"{}") -> bytes:
    """A ``Connection: close`` JSON POST of ``body`` to ``target``."""
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (target.encode(), len(body), body)
    )


def split_chunked(data: bytes) -> tuple[bytes, list[bytes], bool]:
    """(head, the payloads of the HTTP chunks, whether the final 0-chunk came) of a raw chunked response."""
    head, _, rest = data.partition(b"\r\n\r\n")
    chunks: list[bytes] = []
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            return head, chunks, True
        chunks.append(rest[:size])
        if len(rest) < size + 2:
            break
        rest = rest[size + 2 :]
    return head, chunks, False
