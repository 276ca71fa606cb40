"""A real server for the tests that need one: uvicorn in a thread, and a raw HTTP client that
streams a body and stops as soon as the server answers (as a hostile client would not, but a
test must: it measures how much the server read before refusing)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@contextlib.contextmanager
def serve(app: Any) -> Iterator[int]:
    """Run ``app`` with uvicorn on a free loopback port (lifespan included); yields the port."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int  # body bytes the client managed to send before the answer came


def stream_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    total: int,
    chunk: int = 1 << 16,
    length: bool = False,
) -> Answer:
    """Send ``total`` body bytes in ``chunk``-sized pieces (chunked encoding, or a declared
    Content-Length with ``length``), stopping as soon as the server answers or hangs up."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head.append(f"Content-Length: {total}" if length else "Transfer-Encoding: chunked")
    piece = b"x" * chunk
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                data = piece[: min(chunk, total - sent)]
                sock.sendall(data if length else b"%x\r\n%s\r\n" % (len(data), data))
                sent += len(data)
            if not length and sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed while we were still sending
            pass
        reply = b""
        with contextlib.suppress(OSError):
            while part := sock.recv(1 << 16):
                reply += part
    status_line, _, rest = reply.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return Answer(int(status_line.split()[1]), body, sent)
