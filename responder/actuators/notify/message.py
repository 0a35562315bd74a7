"""The notification body both notify actuators send: canonical JSON, so a signature covers exact bytes."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, Params
from responder.errors import PermanentActuationError

KEY_ID = r"^[A-Za-z0-9_.-]{1,64}$"


class MessageParams(Params):
    """What to say: a title and flat facts (bound from the event by path, never evaluated)."""

    title: str = Field(min_length=1, max_length=500, examples=["credential exfiltration contained"])
    severity: str = Field(default="info", pattern=r"^(info|low|medium|high|critical)$")
    fields: dict[str, JsonValue] = Field(default_factory=dict)


def body(p: MessageParams, ctx: ActuationContext) -> bytes:
    """The canonical JSON body: incident, idempotency key, title, severity, fields."""
    doc: dict[str, Any] = {"incident": ctx.incident, "key": ctx.key, "title": p.title, "severity": p.severity,
                           "fields": p.fields}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def signing_secret(ctx: ActuationContext, key_id: str) -> bytes:
    """The HMAC secret for `key_id` from `ctx.webhook_keys`; never from the runbook or the event."""
    secret = ctx.webhook_keys.get(key_id)
    if not secret:
        raise PermanentActuationError(f"no signing key {key_id!r} configured (settings: notify_keys)",
                                      code="NoSigningKey")
    return secret.encode() if isinstance(secret, str) else bytes(secret)


class Ledger:
    """Idempotency keys already delivered by this process: a retry after success sends nothing."""

    def __init__(self) -> None:
        self._sent: set[str] = set()

    def seen(self, key: str) -> bool:
        """Whether `key` was delivered."""
        return bool(key) and key in self._sent

    def add(self, key: str) -> None:
        """Record a delivery."""
        if key:
            self._sent.add(key)
