"""A size cap on a request's head and on a chunked body's trailers, which neither uvicorn nor httptools has.

httptools keeps a header field's value as growing bytes and calls `on_header` only at the end of its line, so one
endless header line (in the head, or in the trailers after a chunked body's last chunk) is buffered until the
connection ends. `CappedProtocol` counts bytes as they are received:

* the head (request line and headers) at most `MAX_HEAD_BYTES` in all and `MAX_HEADERS` fields: counted from the
  read the request starts in, less any read that also held the end of the request before it (so at most one read,
  256 KiB, more is buffered);
* a chunked body's framing and trailers: the reads that hold nothing but chunk-size lines and trailers (from the
  last body bytes on) at most `MAX_HEAD_BYTES`, and the trailers at most `MAX_HEADERS` fields and `MAX_HEAD_BYTES`,
  each counted afresh from the end of the head. Trailers are discarded: uvicorn would append them to the request's
  headers, where the app, already running, could read them as headers (a `content-type` sent only as a trailer).

Over either, the answer is `431` (`414` when the URL alone is over it), with no body, and the connection is closed
(`refused` counts it). A head pipelined behind a running request, or trailers of a request whose answer has begun,
get no answer; a request cut in its trailers is ended for the app as a disconnect, so its own answer is not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # as common servers' 8-64 KiB; a SIEM's webhook head is a few hundred bytes
MAX_HEADERS = 100  # as Apache's and gunicorn's default; each costs uvicorn a tuple of two bytes objects


def answer(status: bytes, extra: bytes = b"") -> bytes:
    """A bodiless answer that closes the connection."""
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n" + extra + b"\r\n"


HEAD_TOO_LARGE = answer(b"431 Request Header Fields Too Large")
URI_TOO_LONG = answer(b"414 URI Too Long")


def uncounted(reason: str) -> None:
    """The default `refused`: count nothing."""


class CappedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head and trailers capped (class attributes)."""

    max_head_bytes: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS
    refused: Callable[[str], None] = staticmethod(uncounted)  # counts an answer sent here, by reason

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # the parser is inside a request head
        self._in_tail = False  # inside a chunked body, past a chunk-size line and before its data (or in trailers)
        self._counted = 0  # bytes received in this head, or in this tail (see the module's docstring)
        self._fields = 0  # header fields of this head, or trailers of this body, and their bytes
        self._field_bytes = 0
        self._completed = False  # a request ended in the read being parsed
        self._bodied = False  # body bytes were parsed in the read being parsed
        self._cut = False  # the connection was refused: the parser's callbacks do nothing more

    def _busy(self) -> bool:
        """A request is being answered, or waits behind one (the app times its body, uvicorn pauses reading)."""
        return (self.cycle is not None and not self.cycle.response_complete) or bool(self.pipeline)

    def _restart_count(self) -> None:
        self._counted = self._fields = self._field_bytes = 0

    def _too_large(self, refusal: bytes, reason: str) -> None:
        """Refuse an oversized head or trailers: answer (unless an answer is due or under way first) and close."""
        self._cut = True
        part = "head" if self._in_head else "trailers"
        log.info("intake_head_too_large", part=part, reason=reason, limit_bytes=self.max_head_bytes,
                 limit_fields=self.max_headers)
        self.refused(reason)
        if self.transport.is_closing():
            return
        if self._in_head:
            answering = not self._busy()
        else:  # self.cycle is this request's: running unless queued behind another (self.pipeline)
            cycle = self.cycle
            answering = cycle is not None and not self.pipeline and not cycle.response_started
            if cycle is not None and not cycle.response_complete:  # as uvicorn's connection_lost does: the app's
                cycle.disconnected = True  # receive() says disconnect, and its own answer is not sent
                cycle.message_event.set()
        if answering:
            self.transport.write(refusal)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Count the bytes of a read that is all head, or all chunk framing and trailers."""
        if self._cut:
            return
        in_tail = self._in_tail
        self._completed = self._bodied = False
        super().data_received(data)
        whole = self._in_head or (in_tail and self._in_tail and not self._bodied)
        if whole and not self._cut and not self._completed:  # a head's read may start with CRLFs: counted too
            self._counted += len(data)
            if self._counted > self.max_head_bytes:
                self._too_large(HEAD_TOO_LARGE, "header-too-large")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse (`text/plain`), counted."""
        self.refused("invalid-http")
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        """A request starts: its head is counted."""
        if self._cut:
            return
        self._in_head, self._in_tail = True, False
        self._restart_count()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """A piece of the URL (uvicorn appends it to `self.url`)."""
        if self._cut:
            return
        super().on_url(url)
        if len(self.url) > self.max_head_bytes:
            self._too_large(URI_TOO_LONG, "uri-too-long")

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header field, counted before uvicorn keeps it; a trailer, counted and dropped."""
        if self._cut:
            return
        self._fields += 1
        self._field_bytes += len(name) + len(value) + 4  # ": " and CRLF
        url = len(self.url) if self._in_head else 0
        if self._fields > self.max_headers or url + self._field_bytes > self.max_head_bytes:
            self._too_large(HEAD_TOO_LARGE, "header-too-large")
        elif self._in_head:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete within its size: trailers, if any, are counted afresh."""
        if self._cut:
            return
        self._in_head = False
        self._restart_count()
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        """A chunk-size line: the chunk's data follows, or the trailers (after the last, empty, chunk)."""
        if not self._cut:
            self._in_tail = True

    def on_body(self, body: bytes) -> None:
        """Body bytes (nothing of a refused connection reaches the app): framing counted afresh after them."""
        if self._cut:
            return
        self._bodied, self._in_tail, self._counted = True, False, 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        """A request ended within the read being parsed: the rest of that read is not counted as the next head."""
        self._completed, self._in_tail = True, False
        if not self._cut:
            super().on_message_complete()
