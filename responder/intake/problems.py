"""RFC 9457 problem documents: every 4xx/5xx of the intake is one, with a stable type and a reason."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_TYPE = "tag:responder,2026:problem/"  # RFC 4151 tag URI: absolute, never dereferenced
MEDIA_TYPE = "application/problem+json"
CLOSE = {"Connection": "close"}  # on an answer sent before the body was read: the connection is not reused

TITLES = {
    "unauthenticated": "Authentication required",
    "bad-signature": "Signature or token does not verify",
    "stale-timestamp": "Webhook timestamp outside the tolerance",
    "replayed": "Replayed delivery",
    "unknown-source": "Unknown source",
    "unsupported-media-type": "Content-Type must be application/json",
    "too-large": "Body too large",
    "too-deep": "JSON nested too deeply",
    "not-json": "Body is not JSON",
    "undecodable": "Payload does not decode as an event",
    "rate-limited": "Too many requests for this source",
    "format-not-pinned": "This delivery needs an intake source with a pinned format",
    "format-mismatch": "responder run would decode this payload with another format",
    "slow-client": "Request body not received in time",
    "broker-unavailable": "Kafka did not acknowledge; retry later",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
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
