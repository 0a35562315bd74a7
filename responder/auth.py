"""HMAC-SHA256 signatures for records from producers (alerts, approvals), with several active keys for rotation.

A signed record carries two headers: `responder-key-id` (which secret) and `responder-signature`
(hex HMAC-SHA256 over the record's value bytes, or over the canonical body for approvals).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from responder.errors import Refusal

KEY_ID_HEADER = "responder-key-id"
SIGNATURE_HEADER = "responder-signature"


MAX_LIFETIME = 3600.0
"""Seconds a signed decision or operator request may stay valid when the keys do not say
(`approval_decision_max_lifetime`)."""
KEY_ID_SHOWN = 64
"""Most characters of a claimed key id copied into a record or message (whoever writes a topic chooses it)."""


def bounded(key_id: str | None, limit: int = KEY_ID_SHOWN) -> str | None:
    """`key_id` cut to `limit` characters, with a marker saying how many were cut (None stays None)."""
    if key_id is None or len(key_id) <= limit:
        return key_id
    return f"{key_id[:limit]}…[+{len(key_id) - limit} chars]"


class Unverified(str):
    """Why a signature does not verify (the text, as before), and its class as a field (`refusal`)."""

    refusal: Refusal

    def __new__(cls, reason: str, refusal: Refusal) -> Unverified:
        made = super().__new__(cls, reason)
        made.refusal = refusal
        return made

    def __getnewargs__(self) -> tuple[str, Refusal]:  # type: ignore[override]  # a copy or pickle: both fields
        return str(self), self.refusal


def sign(secret: bytes, payload: bytes) -> str:
    """Hex HMAC-SHA256 of `payload` under `secret`."""
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: bytes, payload: bytes) -> list[tuple[str, bytes]]:
    """The two headers that sign `payload` (for producers: see docs/events.md, 'Signing records')."""
    return [(KEY_ID_HEADER, key_id.encode()), (SIGNATURE_HEADER, sign(secret, payload).encode())]


class KeyRing:
    """Active secrets by key id; verification accepts any active key, so keys can be rotated."""

    def __init__(self, keys: Mapping[str, bytes | str] | None = None) -> None:
        self._keys = {k: v.encode() if isinstance(v, str) else v for k, v in (keys or {}).items()}

    def __bool__(self) -> bool:
        return bool(self._keys)

    def has(self, key_id: str) -> bool:
        """Whether `key_id` names an active key."""
        return key_id in self._keys

    def ids(self) -> list[str]:
        """Active key ids (never the secrets)."""
        return sorted(self._keys)

    def check(self, key_id: str | None, signature: str | None, payload: bytes) -> Unverified | None:
        """None when the signature is valid under an active key; otherwise why it is not (and its class)."""
        if not key_id or not signature:
            return Unverified("unsigned: missing key id or signature header", Refusal.UNSIGNED)
        secret = self._keys.get(key_id)
        if secret is None:
            return Unverified(f"unknown signing key id {bounded(key_id)!r}", Refusal.UNKNOWN_KEY)
        # as bytes: compare_digest raises TypeError on str that is not ASCII (a header any producer may write)
        if not hmac.compare_digest(sign(secret, payload).encode(), signature.strip().lower().encode()):
            return Unverified(f"bad signature for key id {bounded(key_id)!r}", Refusal.BAD_SIGNATURE)
        return None


class ApproverKeys(KeyRing):
    """Approval keys, each bound to the identity (a person or a team) allowed to sign as `by`.

    `max_lifetime` bounds how long a signed decision may stay valid (seconds from now to `expires_at`).
    """

    def __init__(self, keys: Mapping[str, bytes | str] | None = None, *,
                 identities: Mapping[str, str] | None = None, max_lifetime: float = MAX_LIFETIME) -> None:
        super().__init__(keys)
        self.identities = dict(identities or {})
        self.max_lifetime = max_lifetime

    def identity(self, key_id: str | None) -> str | None:
        """Who holds `key_id`, or None when the key is bound to no identity."""
        return self.identities.get(key_id) if key_id else None
