"""Helpers for intake tests: settings with one source per auth method, a fake producer, signed requests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from responder.errors import BrokerUnavailable
from responder.intake.auth import standard_webhooks_signature
from responder.settings import Settings

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
WHSEC_OLD = "whsec_" + "b2xkLXNlY3JldC1vbGQtb2xkLW9sZA=="  # base64("old-secret-old-old-old")
HMAC_NEW = "new-hmac-secret-2026"
BEARER = "bearer-token-123"
SPLUNK_TOKEN = "splunk-url-token-456"
SIGNING = "intake-signing-secret"

CORPUS_PAYLOADS = {
    "splunk": "siem_alerts/splunk_webhook_alert_action_sudo_search.json",
    "sentinel": "siem_alerts/sentinel_incident_get_by_id_api_example.json",
    "sentinel-alerts": "siem_alerts/sentinel_incident_alerts_list_api_example.json",
    "datadog": "siem_alerts/datadog_cloud_siem_signal_eventbridge_eventbridge_rule_deleted.json",
    "datadog-cspm": "siem_alerts/datadog_cspm_signal_eventbridge_s3_public_bucket.json",
    "alertmanager": "alertmanager/alertmanager_webhook_v4_firing_two_alerts.json",
    "secops": "siem_alerts/google_secops_chronicle_rule_detection.json",
}


def intake_settings(**overrides: Any) -> Settings:
    """Sources: `hooks` (Standard Webhooks, two keys), `dd` (bearer), `splunk` (url token), `open` (open)."""
    base: dict[str, Any] = {
        "kafka_bootstrap": "127.0.0.1:1",
        "event_signing_keys": {"intake": SIGNING},
        "intake_signing_key_id": "intake",
        "intake_sources": {
            "hooks": {"auth": "standard-webhooks", "keys": {"old": WHSEC_OLD, "new": HMAC_NEW}},
            "dd": {"auth": "bearer", "keys": {"k1": BEARER}},
            "splunk": {"auth": "url-token", "keys": {"s1": SPLUNK_TOKEN}, "format": "splunk"},
            "open": {"auth": "open"},
        },
    }
    return Settings(**(base | overrides))


def webhook_headers(body: bytes, secret: bytes = HMAC_NEW.encode(), wid: str = "msg_1",
                    ts: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers signing `body`."""
    stamp = str(int(time.time()) if ts is None else ts)
    return {"content-type": "application/json", "webhook-id": wid, "webhook-timestamp": stamp,
            "webhook-signature": standard_webhooks_signature(secret, wid, stamp, body)}


class FakeSender:
    """Records what would be produced; `down` makes every send fail like an unreachable broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = []
        self.down = False
        self.started = False

    @property
    def connected(self) -> bool:
        return self.started and not self.down

    async def start(self) -> None:
        if self.down:
            raise BrokerUnavailable("fake broker down")
        self.started = True

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        if self.down:
            raise BrokerUnavailable("fake broker down")
        self.sent.append((topic, value, key, headers))
        return 0, len(self.sent) - 1

    async def stop(self) -> None:
        self.started = False


def corpus(name: str) -> bytes:
    """A corpus payload's bytes."""
    return (CORPUS / CORPUS_PAYLOADS[name]).read_bytes()
