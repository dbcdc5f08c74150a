"""A deadline and a size cap on every HTTP request the SDK backends send.

The SDKs' ``timeout`` bounds each socket read, not the call: a server that sends a
byte every few seconds, or a body without end, keeps a call alive for as long as it
likes, and a small gzip body can inflate to gigabytes in memory. So both SDK
backends send through :func:`http_client`'s transport, which

* gives each request a **deadline** ``timeout`` seconds after it starts: every phase
  (pool, connect, write, read) waits at most until then, and at the deadline a
  watchdog shuts the request's socket down, which ends a read blocked in the middle
  of a slow header or body at once; the SDK then sees a timeout. Connections are not
  kept alive between requests, so every request's socket is known from its
  connection on (the cost: a new connection per call);
* **decodes the body itself** while it is read (identity, gzip, deflate: the only
  encodings it asks for), stopping at :data:`MAX_RESPONSE_BYTES` of decoded body,
  so a compressed bomb is never inflated past the cap.

It works with whichever HTTP library the installed SDK uses (``httpx`` or ``httpx2``),
found from the SDK's own ``DefaultHttpxClient``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import socket
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from pytest_skills.errors import SkillsError

#: The most of a response body read (after decoding), well under what the cache keeps.
MAX_RESPONSE_BYTES = 16 * 2**20
#: Encodings whose decoding can be bounded here; a server that sends another is refused.
ACCEPTED_ENCODINGS = "gzip, deflate"
_PHASES = ("connect", "read", "write", "pool")
_CONNECTED = ("connect_tcp.complete", "start_tls.complete", "connect_unix_socket.complete")


class ResponseRefusedError(SkillsError):
    """A response body that is not read on: too large, or in an encoding not asked for."""


def http_module(sdk: ModuleType) -> ModuleType:
    """The HTTP library (``httpx`` or ``httpx2``) the SDK's client class is built on."""
    for cls in sdk.DefaultHttpxClient.__mro__:
        top = cls.__module__.partition(".")[0]
        if top.startswith("httpx"):
            return importlib.import_module(top)
    raise ImportError(f"{sdk.__name__} is not built on httpx")


def http_client(sdk: ModuleType, timeout: float, max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """An HTTP client for ``sdk`` whose requests each end within ``timeout`` seconds and
    read at most ``max_bytes`` of body."""
    hx = http_module(sdk)
    transport = _transport_class(hx)(hx, timeout, max_bytes)
    # trust_env off: proxies from the environment are applied by our transport (the
    # client would mount transports of its own for them, without the deadline).
    return sdk.DefaultHttpxClient(transport=transport, trust_env=False, timeout=timeout)


class _Deadline:
    """One request's deadline, and the sockets to shut down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(self.end - time.monotonic(), 0.001)

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.end

    def add(self, stream: Any) -> None:
        """Watch a network stream (httpcore's), shutting it down if the deadline passed."""
        if stream is None:
            return
        with self._lock:
            self._streams.append(stream)
            expired = self.expired
        if expired:
            _shut(stream)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            streams = list(self._streams)
        for stream in streams:
            _shut(stream)

    def cancel(self) -> None:
        self._timer.cancel()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: learns the socket of each new connection."""
        if name.endswith(_CONNECTED):
            self.add(info.get("return_value"))


def _shut(stream: Any) -> None:
    with contextlib.suppress(Exception):
        sock = stream.get_extra_info("socket")
        if sock is not None:
            # shutdown, not close: it wakes a read blocked on the socket in another thread.
            sock.shutdown(socket.SHUT_RDWR)


class _Decoder:
    """Content decoding bounded by a budget of output bytes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "gzip":
            self._zlib: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
        else:
            self._zlib = None
        self._first = True

    def decode(self, data: bytes, budget: int) -> bytes:
        """Up to ``budget + 1`` decoded bytes of ``data`` (one more says "too large")."""
        if self._zlib is None:
            return data[: budget + 1]
        try:
            out = self._zlib.decompress(data, budget + 1)
        except zlib.error:
            if self.encoding != "deflate" or not self._first:
                raise
            # 'deflate' is sometimes sent raw, without the zlib header.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, budget + 1)
        self._first = False
        return out

    def more(self, budget: int) -> bytes:
        """Decoded bytes still held back by the budget of the last call."""
        if self._zlib is None or not self._zlib.unconsumed_tail:
            return b""
        return self._zlib.decompress(self._zlib.unconsumed_tail, budget + 1)


@functools.cache
def _transport_class(hx: ModuleType) -> type:
    """Our transport, built on ``hx``'s base classes."""

    class Refused(hx.RequestError, ResponseRefusedError):  # type: ignore[name-defined,misc]
        """A RequestError, so that every SDK version hands it on as a connection error."""

        def __init__(self, message: str, *, request: Any) -> None:
            hx.RequestError.__init__(self, message, request=request)

    class BoundedStream(hx.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(
            self, inner: Any, decoder: _Decoder, deadline: _Deadline, max_bytes: int, request: Any
        ) -> None:
            self.inner, self.decoder, self.deadline = inner, decoder, deadline
            self.max_bytes, self.request, self.read = max_bytes, request, 0

        def __iter__(self) -> Iterator[bytes]:
            try:
                for chunk in self.inner:
                    if self.deadline.passed():
                        raise _timeout(hx, self.deadline, self.request)
                    data = self.decoder.decode(chunk, self.max_bytes - self.read)
                    while data:
                        self.read += len(data)
                        if self.read > self.max_bytes:
                            raise Refused(
                                f"the response from {_shown_url(self.request.url)} is larger "
                                f"than {self.max_bytes // 2**20} MB"
                                + (
                                    f" (once {self.decoder.encoding}-decoded)"
                                    if self.decoder.encoding != "identity"
                                    else ""
                                )
                                + "; it was not read further",
                                request=self.request,
                            )
                        yield data
                        data = self.decoder.more(self.max_bytes - self.read)
                if self.deadline.expired:
                    # The watchdog's shutdown reads as the end of a body that runs to the
                    # connection's close: it is not one.
                    raise _timeout(hx, self.deadline, self.request)
            except hx.TransportError:
                if self.deadline.passed():
                    raise _timeout(hx, self.deadline, self.request) from None
                raise
            except zlib.error as error:
                raise Refused(
                    f"the response from {_shown_url(self.request.url)} is not valid "
                    f"{self.decoder.encoding} ({error})",
                    request=self.request,
                ) from None

        def close(self) -> None:
            self.deadline.cancel()
            self.inner.close()

    class DeadlineTransport(hx.BaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, hx: ModuleType, timeout: float, max_bytes: int) -> None:
            self.timeout, self.max_bytes = timeout, max_bytes
            self._proxies = urllib.request.getproxies_environment()
            self._inner: dict[str | None, Any] = {}
            self._lock = threading.Lock()

        def _for(self, url: Any) -> Any:
            host = url.host or ""
            proxy = None
            # Not in typeshed, but public since Python 3.0 (the function urllib uses itself).
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            if not bypass(host, self._proxies):
                proxy = self._proxies.get(url.scheme)
            with self._lock:
                if proxy not in self._inner:
                    # No keep-alive: each request's socket is learned as it connects.
                    limits = hx.Limits(max_connections=100, max_keepalive_connections=0)
                    self._inner[proxy] = hx.HTTPTransport(limits=limits, proxy=proxy)
                return self._inner[proxy]

        def handle_request(self, request: Any) -> Any:
            deadline = _Deadline(self.timeout)
            given = request.extensions.get("timeout") or {}
            timeouts = {
                phase: min(given.get(phase) or math.inf, deadline.remaining()) for phase in _PHASES
            }
            extensions = {**request.extensions, "timeout": timeouts, "trace": deadline.trace}
            request.extensions = extensions
            request.headers["Accept-Encoding"] = ACCEPTED_ENCODINGS
            try:
                response = self._for(request.url).handle_request(request)
            except hx.TransportError:
                deadline.cancel()
                if deadline.passed():
                    raise _timeout(hx, deadline, request) from None
                raise
            except BaseException:
                deadline.cancel()
                raise
            deadline.add(response.extensions.get("network_stream"))
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("identity", "gzip", "deflate", ""):
                response.close()
                deadline.cancel()
                raise Refused(
                    f"the response from {_shown_url(request.url)} is encoded as {encoding!r}, "
                    f"which was not asked for (only {ACCEPTED_ENCODINGS})",
                    request=request,
                )
            headers = [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in (b"content-encoding", b"content-length")
            ]
            stream = BoundedStream(
                response.stream,
                _Decoder(encoding or "identity"),
                deadline,
                self.max_bytes,
                request,
            )
            return hx.Response(
                response.status_code,
                headers=headers,
                stream=stream,
                extensions=response.extensions,
            )

        def close(self) -> None:
            with self._lock:
                inner, self._inner = list(self._inner.values()), {}
            for transport in inner:
                transport.close()

    return DeadlineTransport


def _timeout(hx: ModuleType, deadline: _Deadline, request: Any) -> Exception:
    return hx.ReadTimeout(  # type: ignore[no-any-return]
        f"no complete response within {deadline.seconds:g}s", request=request
    )


def _shown_url(url: Any) -> str:
    return shown_url(str(url))


def shown_url(url: str) -> str:
    """``url`` without credentials: no ``user:password@``, and every query value hidden
    (``?api-key=...``), so it can be shown in messages and reports."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:  # an IPv6 address
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "(a URL that cannot be parsed)"
    query = "&".join(
        f"{name}=***" if value else name
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
