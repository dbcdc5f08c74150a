"""A misbehaving provider on loopback: slow senders, endless and inflating bodies, bodies
of the wrong shape. Any path answers; ``requests`` counts what arrived.

    with MisbehavingServer("slow-body") as server:
        ... point an SDK at server.url ...
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Modes: how the server answers every request.
MODES = (
    "slow-headers",  # the status line and headers, a byte at a time
    "slow-body",  # headers at once, then the body a byte at a time
    "endless",  # a body that never ends, sent steadily
    "gzip-bomb",  # a small gzip body that inflates to BOMB_BYTES
    "big",  # an uncompressed body of BIG_BYTES
    "brotli",  # a body labelled with an encoding nobody asked for
    "raw",  # ``body`` as is, with status 200 and ``content_type``
)
#: Between two bytes of a slow sender: well under any timeout a test sets, so only a
#: deadline on the whole call can end it.
DRIP_S = 0.2
BOMB_BYTES = 512 * 2**20
BIG_BYTES = 20 * 2**20


@functools.cache
def gzip_bomb() -> bytes:
    """BOMB_BYTES of zeros, gzipped (about half a megabyte), made once."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(2**20)
    parts = [packer.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    return b"".join(parts) + packer.flush()


class MisbehavingServer:
    def __init__(
        self, mode: str, body: bytes = b"", content_type: str = "application/json"
    ) -> None:
        assert mode in MODES, mode
        self.mode, self.body, self.content_type = mode, body, content_type
        self.requests = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                with server._lock:
                    server.requests += 1
                # OSError: the client gave up (a broken pipe, a reset), as a deadline does.
                with contextlib.suppress(OSError):
                    server._answer(self)
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _drip(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        for index in range(len(data)):
            if self._stopped.wait(DRIP_S):
                return
            handler.wfile.write(data[index : index + 1])
            handler.wfile.flush()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        body = b'{"id": "msg_1", "type": "message", "content": []}' + b" " * 4000
        if self.mode == "slow-headers":
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + "".join(f"x-padding-{i}: {'p' * 20}\r\n" for i in range(100))
                + f"content-length: {len(body)}\r\n\r\n"
            )
            self._drip(handler, head.encode())
            return
        if self.mode == "slow-body":
            self._head(handler, len(body))
            self._drip(handler, body)
            return
        if self.mode == "endless":
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("connection", "close")
            handler.end_headers()
            chunk = b" " * 1024
            while not self._stopped.wait(0.01):
                handler.wfile.write(chunk)
                handler.wfile.flush()
            return
        if self.mode == "gzip-bomb":
            data = gzip_bomb()
            self._head(handler, len(data), encoding="gzip")
            handler.wfile.write(data)
            return
        if self.mode == "big":
            self._head(handler, BIG_BYTES)
            block = b" " * 2**20
            for _ in range(BIG_BYTES // len(block)):
                handler.wfile.write(block)
            return
        if self.mode == "brotli":
            self._head(handler, 4, encoding="br")
            handler.wfile.write(b"\x0b\x01\x80\x03")
            return
        self._head(handler, len(self.body), content_type=self.content_type)
        handler.wfile.write(self.body)

    def _head(
        self,
        handler: BaseHTTPRequestHandler,
        length: int,
        *,
        encoding: str | None = None,
        content_type: str = "application/json",
    ) -> None:
        handler.send_response(200)
        handler.send_header("content-type", content_type)
        handler.send_header("content-length", str(length))
        if encoding:
            handler.send_header("content-encoding", encoding)
        handler.end_headers()


def wait_for(predicate: Any, guard_s: float = 300.0) -> bool:
    """Poll ``predicate`` until true; the guard stops a hang, not a slow machine."""
    end = time.monotonic() + guard_s
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    return bool(predicate())
