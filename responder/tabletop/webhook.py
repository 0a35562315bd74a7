"""Injects delivered as a SIEM would: HTTP POSTs to a real `responder intake` in front of the scenario's topic.

The runner starts one intake (the same app as `responder intake`, under uvicorn on 127.0.0.1 and a free
port) with one source per authentication scheme, each producing to the scenario's alert topic and
signing what it produces with a key the service trusts. An inject with `transport: webhook` is POSTed
to the source of its `auth`; `signature: forged` presents a wrong secret (the intake answers 401 and
nothing reaches Kafka). The intake answers 202 only after the broker acknowledged the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from responder.ingest.producer import AckedProducer
from responder.intake import Intake
from responder.intake.auth import standard_webhooks_signature
from responder.intake.server import serving
from responder.settings import Settings
from responder.tabletop.models import Signature, WebhookAuth
from responder.tabletop.sandboxed import SandboxSettings

SECRET = "tabletop-webhook-secret"  # noqa: S105  # nosec B105 - the sandbox intake's shared secret
SIGNING_KEY_ID = "tabletop-intake"
SIGNING_SECRET = "tabletop-intake-signing-secret"  # noqa: S105  # nosec B105 - sandbox only


def intake_settings(bootstrap: str, topic: str) -> dict[str, Any]:
    """Intake settings: a source per auth scheme (named after it), all producing to `topic`, signed."""
    return {
        "kafka_bootstrap": bootstrap, "intake_topic": topic,
        "intake_sources": {a.value: {"auth": a.value, "keys": {"tabletop": SECRET}, "topic": topic}
                           for a in WebhookAuth},
        "intake_signing_key_id": SIGNING_KEY_ID, "event_signing_keys": {SIGNING_KEY_ID: SIGNING_SECRET},
    }


def webhook_settings(bootstrap: str, topic: str) -> Settings:
    """The intake's settings: `intake_settings`, the defaults for the rest (nothing from the environment)."""
    return SandboxSettings(**intake_settings(bootstrap, topic))


@dataclass
class Posted:
    """One POST: the HTTP status and how many records the intake produced for it."""

    status: int
    produced: int


def _post(url: str, body: bytes, headers: dict[str, str]) -> Posted:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  # nosec B310 # our 127.0.0.1 intake
            return Posted(int(answer.status), int(orjson.loads(answer.read()).get("produced", 0)))
    except urllib.error.HTTPError as exc:
        return Posted(exc.code, 0)


def request_for(base: str, auth: WebhookAuth, body: bytes, signature: Signature,
                now: float) -> tuple[str, dict[str, str]]:
    """The URL and headers a sender using `auth` would send (a wrong secret when the inject is forged)."""
    secret = "forged-secret" if signature == Signature.FORGED else SECRET  # nosec B105
    url, headers = f"{base}/v1/events/{auth.value}", {"content-type": "application/json"}
    if auth == WebhookAuth.BEARER:
        headers["authorization"] = f"Bearer {secret}"
    elif auth == WebhookAuth.URL_TOKEN:
        url += f"?token={secret}"
    else:
        wid, ts = f"msg_{uuid.uuid4().hex}", str(int(now))
        headers |= {"webhook-id": wid, "webhook-timestamp": ts,
                    "webhook-signature": standard_webhooks_signature(secret.encode(), wid, ts, body)}
    return url, headers


class WebhookIntake:
    """The scenario's intake, and the posting of injects to it."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def post(self, auth: WebhookAuth, body: bytes, signature: Signature) -> Posted:
        """POST one inject as its sender would (webhook-timestamp is wall time: the intake checks it so)."""
        url, headers = request_for(self.base, auth, body, signature, time.time())
        return await asyncio.to_thread(_post, url, body, headers)


@contextlib.asynccontextmanager
async def webhook_intake(bootstrap: str, topic: str) -> AsyncIterator[WebhookIntake]:
    """Run the intake for the scenario on a free loopback port."""
    settings = webhook_settings(bootstrap, topic)
    intake = Intake(settings, AckedProducer(bootstrap, send_timeout=settings.intake_send_timeout_s,
                                            max_value_bytes=settings.intake_max_body_bytes))
    async with serving(intake) as port:
        yield WebhookIntake(f"http://127.0.0.1:{port}")
