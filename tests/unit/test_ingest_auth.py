"""Record authentication: per-topic and per-source signature requirements over the shared key ring."""

from __future__ import annotations

import pytest

from responder.auth import signed_headers
from responder.errors import AuthenticationFailed
from responder.ingest.authn import RecordAuthenticator
from responder.models.event import RawRecord
from responder.normalise import normalise
from responder.settings import Settings
from tests.findings import envelope_bytes, guardduty_finding

BODY = envelope_bytes(guardduty_finding("AKIAEXAMPLEEXAMPLE12"))


def _record(topic: str = "alerts", headers: list[tuple[str, bytes]] | None = None, value: bytes = BODY) -> RawRecord:
    return RawRecord(topic=topic, value=value, headers=tuple(headers or ()))


def test_unsigned_record_passes_when_nothing_requires_a_signature() -> None:
    """With no requirement, an unsigned record is accepted as unsigned."""
    assert RecordAuthenticator({"k": "s"}).verify(_record()) is None


def test_signed_record_under_either_active_key_is_accepted() -> None:
    """Two active keys (rotation): a record signed by either verifies and reports its key id."""
    auth = RecordAuthenticator({"old": "s1", "new": "s2"}, require=["*"])
    assert auth.verify(_record(headers=signed_headers("old", b"s1", BODY))) == "old"
    assert auth.verify(_record(headers=signed_headers("new", b"s2", BODY))) == "new"


def test_required_topic_refuses_unsigned_and_forged() -> None:
    """On a required topic, missing headers, an unknown key id and a wrong signature are all refused."""
    auth = RecordAuthenticator({"k": "s"}, require=["alerts"])
    for headers in ([], signed_headers("x", b"s", BODY), signed_headers("k", b"wrong", BODY)):
        with pytest.raises(AuthenticationFailed):
            auth.verify(_record(headers=headers))
    assert auth.verify(_record(topic="other")) is None


def test_forged_signature_is_refused_even_when_not_required() -> None:
    """A record that claims a signature must carry a valid one, whatever the configuration."""
    with pytest.raises(AuthenticationFailed, match="bad signature"):
        RecordAuthenticator({"k": "s"}).verify(_record(headers=signed_headers("k", b"nope", BODY)))


def test_tampered_body_fails_verification() -> None:
    """Changing one byte of a signed record invalidates it."""
    headers = signed_headers("k", b"s", BODY)
    with pytest.raises(AuthenticationFailed):
        RecordAuthenticator({"k": "s"}, require=["*"]).verify(_record(headers=headers, value=BODY.replace(b"8", b"9")))


def test_required_source_refuses_unsigned_events_of_that_source() -> None:
    """`require_signature: [guardduty]` refuses an unsigned GuardDuty record but not an unsigned drift event."""
    auth = RecordAuthenticator({"k": "s"}, require=["guardduty"])
    with pytest.raises(AuthenticationFailed, match="source guardduty"):
        auth.check_sources(normalise(BODY), signed_by=None)
    auth.check_sources(normalise(BODY), signed_by="k")


def test_signing_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """RESPONDER_EVENT_SIGNING_KEYS (JSON) and RESPONDER_REQUIRE_SIGNATURE configure several keys and sources."""
    monkeypatch.setenv("RESPONDER_EVENT_SIGNING_KEYS", '{"k1": "one", "k2": "two"}')
    monkeypatch.setenv("RESPONDER_REQUIRE_SIGNATURE", '["guardduty", "security.alerts"]')
    settings = Settings()
    assert sorted(settings.event_signing_keys) == ["k1", "k2"]
    assert settings.event_signing_keys["k2"].get_secret_value() == "two"
    assert "two" not in repr(settings)
    assert settings.require_signature == ["guardduty", "security.alerts"]
