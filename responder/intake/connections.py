"""Connection limits uvicorn does not enforce: a deadline for the request head, a bound on open connections, a
client that does not read its answers; over the head and trailers' size cap (`responder.intake.headcap`).

uvicorn times only the idle gap between keep-alive requests, and any byte received cancels that timer: a client
that connects and sends nothing, trickles header lines, sends bare CRLFs after a response, or trickles the body of
a request answered before its body was read, holds its connection (a file descriptor) for ever, and
`limit_concurrency` answers 503 only once a request head is complete. `guarded_protocol` closes such connections:

* whenever no request is running, a deadline runs from the first byte received (CRLF junk included) or from the
  connection: the request head (request line and headers) must arrive within `intake_read_timeout_s`, else
  `408` and the connection is closed. A pipelined head waiting behind a running request is timed once that
  request is answered (uvicorn stops reading meanwhile);
* a request answered before its body was fully received is not kept alive: the connection is closed after the
  answer (the intake's own early answers say `connection: close`);
* a request head or a chunked body's trailers over the size cap: `431` or `414` (`responder.intake.headcap`);
* a connection over `intake_max_connections` open at once is answered `503` and closed at once;
* a client that stops reading its answers (pipelined requests it never reads: uvicorn then waits for the write to
  drain, with no timeout, and times nothing else) has `intake_read_timeout_s` to read again once the server's
  write buffer is full, else the connection is dropped.

Each answer here has no body and is counted by `refused(reason)` (`responder_intake_rejected_total`), as is
uvicorn's own `400` to a request it cannot parse. This relies on uvicorn's `HttpToolsProtocol` internals (listed
in pyproject.toml, which caps uvicorn and httptools to the versions checked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from responder.intake.headcap import CappedProtocol, answer, uncounted

log = structlog.get_logger(__name__)

HEAD_TIMEOUT = answer(b"408 Request Timeout")
TOO_MANY = answer(b"503 Service Unavailable", b"retry-after: 1\r\n")


class GuardedProtocol(CappedProtocol):
    """The capped protocol with a request-head deadline and a connection bound (class attributes)."""

    head_timeout_s: float = 10.0
    max_connections: int = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; over the bound answer 503 and close, else start the head deadline."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("intake_connection_refused", open=len(self.connections), limit=self.max_connections)
            self.refused("too-many-connections")
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

    def _unstall(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("intake_head_timeout", timeout_s=self.head_timeout_s)
            self.refused("slow-client")
            self.transport.write(HEAD_TIMEOUT)
            self.transport.close()

    def _too_large(self, refusal: bytes, reason: str) -> None:
        """The connection is closed: no deadline for it."""
        self._disarm()
        super()._too_large(refusal, reason)

    def data_received(self, data: bytes) -> None:
        """Any byte while no request runs (uvicorn cancels its keep-alive timer on it) starts the head deadline."""
        if self._cut:
            return
        if not self._busy():
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        """A request starts: its head is timed now, or once the requests ahead of it are answered."""
        if self._cut:
            return
        if not self._busy():
            self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The head arrived in time and within its size: the body is timed by the app (`read_body`)."""
        if self._cut:
            return
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """Close after an answer sent before the request body was received; time a head waiting behind it."""
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            log.info("intake_body_abandoned")
            self.transport.close()
        super().on_response_complete()
        if self._in_head and not self._busy() and not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self._arm()

    def pause_writing(self) -> None:
        """The write buffer is full (the client does not read its answers): it has the head timeout to read again."""
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.head_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        """The client reads again."""
        self._unstall()
        super().resume_writing()

    def _stalled(self) -> None:
        self._stall_timer = None
        if not self.transport.is_closing():
            log.info("intake_write_stalled", timeout_s=self.head_timeout_s)
            self.transport.abort()  # close() would wait for the buffer the client does not read

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadlines with the connection."""
        self._disarm()
        self._unstall()
        super().connection_lost(exc)


def guarded_protocol(head_timeout_s: float, max_connections: int,
                     refused: Callable[[str], None] = uncounted) -> type[GuardedProtocol]:
    """A GuardedProtocol class with these limits and this refusal counter (uvicorn instantiates it per connection)."""
    return type("IntakeProtocol", (GuardedProtocol,), {"head_timeout_s": head_timeout_s,
                                                       "max_connections": max_connections,
                                                       "refused": staticmethod(refused)})
