"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the moto server (the service's AWS endpoint in fault tests).

Faults are armed on the proxy and hit only the calls `matches` selects (default: every call):

* `throttle(seconds, ratio)`: that share of calls gets the service's own throttling error (S3 `SlowDown` 503,
  query `Throttling` 400, EC2 `RequestLimitExceeded` 503, JSON `ThrottlingException` 400); deterministic: at
  ratio 0.5 every second call passes, at 1.0 none does.
* `errors(n, status)`: the next `n` calls get an `InternalError` 5xx and never reach moto.
* `latency(seconds, n)`: the next `n` calls wait, then reach moto (a slow API that still applies the call).
* `resets(n)`: the next `n` connections are reset (RST) before the call reaches moto.
* `drops(n)`: the next `n` calls reach moto and are applied, then the connection is reset instead of the reply.
* `deny(n)`: the next `n` calls get `AccessDenied` 403 and never reach moto.
* `hold()`: every call waits at the proxy until `release()` (or `stop()`), then reaches moto (a hung API).

`forwarded` counts the calls that reached moto, by operation; `injected` counts the faults, by kind.
Naming a request's operation (`Call`, `describe`) and the AWS-shaped error replies (`error_response`,
`throttling`) are in `responder.sandbox.calls` (re-exported here).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from responder.errors import SandboxError
from responder.sandbox.calls import Call, describe, error_response, throttling
from responder.sandbox.threaded import Threaded

__all__ = ["HOP_BY_HOP", "OWN_HEADERS", "Call", "FaultProxy", "describe", "error_response", "throttling"]

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"})
OWN_HEADERS = frozenset({"content-length", "date", "server"})  # the proxy writes its own


class FaultProxy(Threaded[ThreadingHTTPServer]):
    """Forwards every request to `upstream` unless an armed fault takes it; thread-safe."""

    join_timeout = 5.0

    def __init__(self, upstream: str, matches: Callable[[Call], bool] | None = None) -> None:
        super().__init__()
        parts = urllib.parse.urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.matches = matches or (lambda _call: True)
        self.forwarded: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._throttle_until = 0.0
        self._throttle_every = 2
        self._throttle_seen = 0
        self._armed: Counter[str] = Counter()
        self._status = 500
        self._delay = 0.0
        self._holding = False
        self._released = threading.Event()  # set while nothing is held: what a held call waits on
        self._released.set()

    @property
    def endpoint_url(self) -> str:
        """What the service takes as its AWS endpoint."""
        if self._server is None:
            raise SandboxError("the fault proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- arming -----------------------------------------------------------------------------------------------
    def throttle(self, seconds: float, ratio: float = 0.5) -> None:
        """Throttle `ratio` of the matching calls for `seconds`."""
        with self._lock:
            self._throttle_until = time.monotonic() + seconds
            self._throttle_every = 0 if ratio >= 1 else max(1, round(1 / (1 - ratio)))  # every n-th call passes
            self._throttle_seen = 0

    def errors(self, n: int, status: int = 500) -> None:
        """The next `n` matching calls fail with a 5xx before reaching moto."""
        with self._lock:
            self._armed["5xx"], self._status = n, status

    def latency(self, seconds: float, n: int = 1) -> None:
        """The next `n` matching calls wait `seconds`, then reach moto."""
        with self._lock:
            self._armed["latency"], self._delay = n, seconds

    def resets(self, n: int) -> None:
        """The next `n` matching connections are reset before the call reaches moto."""
        with self._lock:
            self._armed["reset"] = n

    def drops(self, n: int) -> None:
        """The next `n` matching calls are applied by moto, then their reply is replaced by a reset."""
        with self._lock:
            self._armed["drop"] = n

    def deny(self, n: int) -> None:
        """The next `n` matching calls get AccessDenied."""
        with self._lock:
            self._armed["deny"] = n

    def hold(self) -> None:
        """Every matching call from now on waits at the proxy until `release()` or `stop()`, then reaches moto."""
        with self._lock:
            self._holding = True
            self._released.clear()

    def release(self) -> None:
        """Let the held calls, and later matching ones, through to moto."""
        with self._lock:
            self._holding = False
            self._released.set()

    def clear(self) -> None:
        """Disarm everything (held calls are released)."""
        with self._lock:
            self._armed.clear()
            self._throttle_until = 0.0
        self.release()

    def stop(self) -> None:
        """Release the held calls, then stop serving (idempotent)."""
        self.release()
        super().stop()

    def _take(self, call: Call) -> str | None:
        """Which fault (if any) takes this call; consumes one shot of it."""
        if not self.matches(call):
            return None
        with self._lock:
            if self._holding:
                self.injected["hold"] += 1
                return "hold"
            if time.monotonic() < self._throttle_until:
                self._throttle_seen += 1
                if not self._throttle_every or self._throttle_seen % self._throttle_every:
                    self.injected["throttle"] += 1
                    return "throttle"
            for kind in ("deny", "5xx", "reset", "drop", "latency"):
                if self._armed[kind] > 0:
                    self._armed[kind] -= 1
                    self.injected[kind] += 1
                    return kind
        return None

    # --- serving ----------------------------------------------------------------------------------------------
    def start(self) -> str:
        """Listen on a free 127.0.0.1 port in a daemon thread; returns the endpoint URL."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                call = describe(self.command, self.path, headers, body)
                fault = proxy._take(call)
                if fault == "reset":
                    self._reset()
                    return
                if fault in ("throttle", "5xx", "deny"):
                    if fault == "throttle":
                        reply = throttling(call)
                    elif fault == "deny":
                        reply = error_response(call, 403, "AccessDenied", "injected: not authorized")
                    else:
                        reply = error_response(call, proxy._status, "InternalError", "injected server error")
                    self._reply(*reply)
                    return
                if fault == "latency":
                    time.sleep(proxy._delay)
                elif fault == "hold":
                    proxy._released.wait()
                status, reply_headers, reply_body = proxy._forward(self.command, self.path, headers, body)
                with proxy._lock:
                    proxy.forwarded[call.operation] += 1
                if fault == "drop":
                    self._reset()
                    return
                self._reply(status, reply_headers, reply_body)

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() not in OWN_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _reset(self) -> None:
                """Close with SO_LINGER 0: the client sees a connection reset."""
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                self.wfile = io.BytesIO()  # whatever the server still writes goes nowhere
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve  # noqa: N815 - http.server's names

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._serve(server, "fault-proxy")
        return self.endpoint_url

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes
                 ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(method, path, body=body or None,
                         headers={k: v for k, v in headers.items() if k not in HOP_BY_HOP})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()
