"""HMAC signing with a key ring that holds several active keys."""

from __future__ import annotations

from responder.auth import KeyRing, sign


def test_valid_signature_under_any_active_key():
    """A record signed with either of two active keys verifies (rotation)."""
    ring = KeyRing({"old": "s1", "new": b"s2"})
    assert ring.check("old", sign(b"s1", b"body"), b"body") is None
    assert ring.check("new", sign(b"s2", b"body"), b"body") is None


def test_forged_unknown_and_unsigned_are_refused():
    """A wrong signature, an unknown key id and a missing header each give a reason."""
    ring = KeyRing({"k": "secret"})
    assert "bad signature" in (ring.check("k", sign(b"other", b"body"), b"body") or "")
    assert "unknown" in (ring.check("x", sign(b"secret", b"body"), b"body") or "")
    assert "unsigned" in (ring.check(None, None, b"body") or "")
    assert ring.check("k", sign(b"secret", b"body"), b"tampered") is not None
