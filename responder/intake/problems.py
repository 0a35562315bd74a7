"""RFC 9457 problem documents: every 4xx/5xx the intake's app answers is one, with a stable type and a reason.

`InternalErrors` makes an unexpected exception one too (a 500), instead of starlette's `text/plain` 500 and
uvicorn's logged traceback. The answers sent before a request is read (docs/intake.md, Limits) have no body.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

PROBLEM_TYPE = "tag:responder,2026:problem/"  # RFC 4151 tag URI: absolute, never dereferenced
MEDIA_TYPE = "application/problem+json"
CLOSE = {"Connection": "close"}  # on an answer sent before the body was read: the connection is not reused

TITLES = {
    "unauthenticated": "Authentication required",
    "bad-signature": "Signature or token does not verify",
    "stale-timestamp": "Webhook timestamp outside the tolerance",
    "replayed": "Replayed delivery",
    "unknown-source": "Unknown source",
    "unsupported-media-type": "Content-Type must be JSON (application/json, text/json or a +json type)",
    "too-large": "Body too large",
    "too-deep": "JSON nested too deeply",
    "not-json": "Body is not JSON",
    "undecodable": "Payload does not decode as an event",
    "rate-limited": "Too many requests for this source",
    "format-not-pinned": "This delivery needs an intake source with a pinned format",
    "format-mismatch": "responder run would decode this payload with another format",
    "slow-client": "Request body not received in time",
    "broker-unavailable": "Kafka did not acknowledge; retry later",
    "replay-memory-full": "Too many signed deliveries within the replay window; retry later",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "internal-error": "Internal error",
}


class Problem(Exception):
    """An intake refusal: HTTP status, a slug from TITLES (the `type`), a detail and optional headers."""

    def __init__(self, status: int, slug: str, detail: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(f"{status} {slug}: {detail}")

    def document(self, instance: str) -> dict[str, Any]:
        """The RFC 9457 body."""
        return {"type": PROBLEM_TYPE + self.slug, "title": TITLES.get(self.slug, self.slug), "status": self.status,
                "detail": self.detail, "instance": instance, "reason": self.slug}

    def response(self, instance: str) -> Response:
        """The problem as an HTTP response (`application/problem+json`)."""
        return Response(orjson.dumps(self.document(instance)), status_code=self.status, media_type=MEDIA_TYPE,
                        headers=self.headers)


class InternalErrors:
    """ASGI middleware: an exception escaping a request is answered `500 internal-error` (a problem document) and
    logged as one `intake_internal_error` line: its type and its traceback's frames (file, line, function), never
    its text (it may hold request data). Starlette's own handler, outside this one, would answer `text/plain` and
    re-raise for uvicorn to log the traceback. `counted(scope)` counts it.

    A client that hung up before its body was received (starlette's `ClientDisconnect`) is no error: nothing can
    be answered, it is logged `intake_client_disconnected` (info) and not counted. `answered` is false when the
    answer had begun or the client had gone (the app received `http.disconnect`): nothing is sent then."""

    def __init__(self, app: ASGIApp, counted: Callable[[Scope], None]) -> None:
        self.app = app
        self.counted = counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = gone = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def receiving() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        try:
            await self.app(scope, receiving, sending)
        except ClientDisconnect:
            log.info("intake_client_disconnected", path=scope.get("path"))
        except Exception as exc:  # noqa: BLE001 - the catch-all: every request is answered, no message logged
            frames = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)]
            answering = not started and not gone  # else uvicorn closes the unfinished answer, or the client left
            log.error("intake_internal_error", error=type(exc).__name__, where=frames[-1] if frames else "?",
                      frames=frames, path=scope.get("path"), answered=answering)
            self.counted(scope)
            if answering:
                problem = Problem(500, "internal-error", "the intake failed to handle this request", CLOSE)
                await problem.response(scope.get("path", ""))(scope, receive, send)
