"""Per-source authentication of webhook requests, each with several active keys (rotation).

* `standard-webhooks`: `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,<base64 HMAC-SHA256>` over
  `id.timestamp.body`), 5-minute tolerance; secrets may be given as `whsec_<base64>` or raw text.
* `bearer`: `Authorization: Bearer <token>`.
* `url-token`: `?token=<secret>` in the URL, for senders that cannot set headers (Splunk).
* `open`: nothing; only when configured explicitly.

Every comparison is constant-time (`hmac.compare_digest`) and tries every key; secrets are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from responder.errors import ConfigError
from responder.intake.problems import Problem
from responder.intake_config import IntakeSource, key_bytes

TOLERANCE_S = 300
MAX_TIMESTAMP_CHARS = 12  # unix seconds have 10 digits until the year 2286; a longer one is never within TOLERANCE_S
MIN_SECRET_BYTES = 16  # 128 bits; Standard Webhooks senders issue 24-64 random bytes


@dataclass(frozen=True)
class Caller:
    """Who the request proved to be: the source, the key id that verified, and the delivery id if any."""

    source: str
    key_id: str | None
    webhook_id: str | None = None
    webhook_timestamp: str | None = None


def _secret_bytes(source: str, kid: str, secret: str) -> bytes:
    """The key's bytes; ConfigError (naming the setting, never the secret) when it is not usable."""
    where = f"intake_sources.{source}.keys.{kid}"
    try:
        raw = key_bytes(secret)
    except binascii.Error as exc:
        raise ConfigError(f"{where}: a whsec_ key is not valid base64") from exc
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where}: a secret must be at least {MIN_SECRET_BYTES} bytes (after whsec_ decoding), "
                          f"got {len(raw)}; anyone could guess a shorter one")
    return raw


def standard_webhooks_signature(secret: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` signature a Standard Webhooks sender puts in `webhook-signature`."""
    mac = hmac.new(secret, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _unauthenticated(detail: str, scheme: str | None = None) -> Problem:
    headers = {"WWW-Authenticate": scheme} if scheme else None
    return Problem(401, "unauthenticated", detail, headers)


class SourceAuth:
    """Checks one source's requests; built from its `IntakeSource` settings."""

    def __init__(self, name: str, source: IntakeSource, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.method = source.auth
        self.clock = clock
        self.keys = {kid: _secret_bytes(name, kid, v.get_secret_value()) for kid, v in source.keys.items()}
        if self.method != "open" and not self.keys:
            raise ConfigError(f"intake_sources.{name}: auth {self.method} needs at least one key in `keys` "
                              "(or mark the source `auth: open` explicitly)")

    def check(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> Caller:
        """The verified caller; raises Problem 401 (missing/bad credentials or stale timestamp)."""
        if self.method == "open":
            return Caller(self.name, None)
        if self.method == "bearer":
            return self._bearer(headers.get("authorization"))
        if self.method == "url-token":
            return self._match(query.get("token"), "token", None)
        return self._standard_webhooks(headers, body)

    def _match(self, presented: str | None, what: str, scheme: str | None) -> Caller:
        if not presented:
            raise _unauthenticated(f"missing {what}", scheme)
        got = presented.encode()
        found = None
        for kid, secret in self.keys.items():  # every key is compared, found or not
            if hmac.compare_digest(secret, got):
                found = kid
        if found is None:
            raise Problem(401, "bad-signature", f"{what} does not match an active key")
        return Caller(self.name, found)

    def _bearer(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise _unauthenticated("missing bearer token", "Bearer")
        return self._match(token.strip(), "bearer token", "Bearer")

    def _standard_webhooks(self, headers: Mapping[str, str], body: bytes) -> Caller:
        wid, ts, sig = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        if not wid or not ts or not sig:
            raise _unauthenticated("missing webhook-id, webhook-timestamp or webhook-signature")
        if len(ts) > MAX_TIMESTAMP_CHARS:  # before int(): 400 digits parse, then overflow a float
            raise Problem(401, "stale-timestamp", f"webhook-timestamp is more than {TOLERANCE_S}s from now")
        try:
            sent = int(ts)
        except ValueError:
            raise Problem(401, "bad-signature", "webhook-timestamp is not an integer") from None
        if abs(self.clock() - sent) > TOLERANCE_S:
            raise Problem(401, "stale-timestamp", f"webhook-timestamp is more than {TOLERANCE_S}s from now")
        presented = [p.partition(",")[2].encode() for p in sig.split() if p.startswith("v1,")]
        found = None
        for kid, secret in self.keys.items():
            expected = standard_webhooks_signature(secret, wid, ts, body).partition(",")[2].encode()
            for candidate in presented:
                if hmac.compare_digest(expected, candidate):
                    found = kid
        if found is None:
            raise Problem(401, "bad-signature", "no v1 signature verifies under an active key")
        return Caller(self.name, found, wid, ts)
