"""Connection limits uvicorn does not enforce: a deadline for the request head, and a bound on open connections.

uvicorn times only the idle gap between keep-alive requests: a client that connects and sends nothing, or
trickles header lines, holds its connection (a file descriptor) for ever, and `limit_concurrency` answers 503
only once a request head is complete. `guarded_protocol` closes such connections:

* the request head (request line and headers) must arrive within `intake_read_timeout_s` of the connection,
  or of the first byte of the next request on a kept-alive connection: `408` and the connection is closed;
* a connection over `intake_max_connections` open at once is answered `503` and closed at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger(__name__)


def _answer(status: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n" + extra + b"\r\n"


HEAD_TIMEOUT = _answer(b"408 Request Timeout")
TOO_MANY = _answer(b"503 Service Unavailable", b"retry-after: 1\r\n")


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline and a connection bound (class attributes)."""

    head_timeout_s: float = 10.0
    max_connections: int = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; over the bound answer 503 and close, else start the head deadline."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("intake_connection_refused", open=len(self.connections), limit=self.max_connections)
            transport.write(TOO_MANY)
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("intake_head_timeout", timeout_s=self.head_timeout_s)
            self.transport.write(HEAD_TIMEOUT)
            self.transport.close()

    def on_message_begin(self) -> None:
        """A request starts (the first, or the next one on a kept-alive connection): its head is timed."""
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The head arrived in time: the body is timed by the app (`read_body`)."""
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(head_timeout_s: float, max_connections: int) -> type[GuardedProtocol]:
    """A GuardedProtocol class with these limits (uvicorn instantiates the class per connection)."""
    return type("IntakeProtocol", (GuardedProtocol,), {"head_timeout_s": head_timeout_s,
                                                       "max_connections": max_connections})
