"""Connection limits uvicorn does not enforce: a deadline and a size cap for the request head, a bound on open
connections.

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
* a request head over `MAX_HEAD_BYTES` in all (request line and headers), or with more than `MAX_HEADERS` header
  fields, is answered `431` (`414` when the URL alone is over it) and the connection is closed: neither uvicorn
  nor httptools caps it, and httptools buffers a header value until it ends. A head's bytes are counted as they
  are received, less any read that also held the end of the request before it (so at most one read, 256 KiB,
  more is buffered); a head pipelined behind a running request is not answered, its connection is closed;
* a connection over `intake_max_connections` open at once is answered `503` and closed at once;
* a client that stops reading its answers (pipelined requests it never reads: uvicorn then waits for the write to
  drain, with no timeout, and times nothing else) has `intake_read_timeout_s` to read again once the server's
  write buffer is full, else the connection is dropped.

Each answer here has no body and is counted by `refused(reason)` (`responder_intake_rejected_total`), as is
uvicorn's own `400` to a request it cannot parse. This relies on uvicorn's `HttpToolsProtocol` internals (`cycle`,
`pipeline`, `url`, `on_response_complete`, `send_400_response`, `_unset_keepalive_if_required`): pyproject.toml
caps uvicorn to the versions checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger(__name__)


def _answer(status: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n" + extra + b"\r\n"


HEAD_TIMEOUT = _answer(b"408 Request Timeout")
TOO_MANY = _answer(b"503 Service Unavailable", b"retry-after: 1\r\n")
HEAD_TOO_LARGE = _answer(b"431 Request Header Fields Too Large")
URI_TOO_LONG = _answer(b"414 URI Too Long")
MAX_HEAD_BYTES = 64 * 1024  # as common servers' 8-64 KiB; a SIEM's webhook head is a few hundred bytes
MAX_HEADERS = 100  # as Apache's and gunicorn's default; each costs uvicorn a tuple of two bytes objects


def _uncounted(reason: str) -> None:
    """The default `refused`: count nothing."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline and a connection bound (class attributes)."""

    head_timeout_s: float = 10.0
    max_head_bytes: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS
    max_connections: int = 512
    refused: Callable[[str], None] = staticmethod(_uncounted)  # counts an answer sent here, by reason

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # the parser is inside a request head
        self._head_bytes = 0  # bytes received while in this head (see the module's docstring)
        self._fields = 0  # header fields of this head, and their bytes
        self._field_bytes = 0
        self._completed = False  # a request ended in the read being parsed
        self._cut = False  # the connection was refused: the parser's callbacks do nothing more

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

    def _busy(self) -> bool:
        """A request is being answered, or waits behind one (the app times its body, uvicorn pauses reading)."""
        return (self.cycle is not None and not self.cycle.response_complete) or bool(self.pipeline)

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

    def _too_large(self, answer: bytes, reason: str) -> None:
        """Refuse an oversized head: answer (unless a request ahead of it is being answered) and close."""
        self._cut = True
        self._disarm()
        log.info("intake_head_too_large", reason=reason, limit_bytes=self.max_head_bytes, limit_fields=self.max_headers)
        self.refused(reason)
        if not self.transport.is_closing():
            if not self._busy():
                self.transport.write(answer)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Any byte while no request runs (uvicorn cancels its keep-alive timer on it) starts the head deadline; the
        bytes of an unfinished head are counted."""
        if self._cut:
            return
        if not self._busy():
            self._arm()
        self._completed = False
        super().data_received(data)
        if self._in_head and not self._cut and not self._completed:  # this whole read is head (bar CRLFs before it)
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._too_large(HEAD_TOO_LARGE, "header-too-large")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse (`text/plain`), counted."""
        self.refused("invalid-http")
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        """A request starts: its head is timed now, or once the requests ahead of it are answered."""
        if self._cut:
            return
        self._in_head = True
        self._head_bytes = self._fields = self._field_bytes = 0
        if not self._busy():
            self._arm()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """A piece of the URL (uvicorn appends it to `self.url`)."""
        if self._cut:
            return
        super().on_url(url)
        if len(self.url) > self.max_head_bytes:
            self._too_large(URI_TOO_LONG, "uri-too-long")

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header field, counted before uvicorn keeps it."""
        if self._cut:
            return
        self._fields += 1
        self._field_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._fields > self.max_headers or len(self.url) + self._field_bytes > self.max_head_bytes:
            self._too_large(HEAD_TOO_LARGE, "header-too-large")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head arrived in time and within its size: the body is timed by the app (`read_body`)."""
        if self._cut:
            return
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Nothing of a refused connection reaches the app."""
        if not self._cut:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """A request ended within the read being parsed: the rest of that read is not counted as the next head."""
        self._completed = True
        if not self._cut:
            super().on_message_complete()

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
                     refused: Callable[[str], None] = _uncounted) -> type[GuardedProtocol]:
    """A GuardedProtocol class with these limits and this refusal counter (uvicorn instantiates it per connection)."""
    return type("IntakeProtocol", (GuardedProtocol,), {"head_timeout_s": head_timeout_s,
                                                       "max_connections": max_connections,
                                                       "refused": staticmethod(refused)})
