"""Decoders name the same principal facts whatever the source, so one runbook condition serves them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.models.event import Event
from responder.normalise import decode_doc, parse_documents

ROOT = Path(__file__).resolve().parents[2]
EXFIL = [
    ROOT / "tests/fixtures/events/guardduty_envelope_mismatch_invalid_ip.json",
    ROOT / "playbooks/events/securityhub-instance-credential-exfiltration.json",
    ROOT / "playbooks/events/splunk-instance-credential-exfiltration.json",
]


def _event(path: Path) -> Event:
    [event] = [e for doc in parse_documents(path.read_bytes()) for e in decode_doc(doc)]
    return event


@pytest.mark.parametrize("path", EXFIL, ids=lambda p: p.name)
def test_instance_credential_exfiltration_names_an_assumed_role_key(path: Path) -> None:
    """GuardDuty, ASFF and Splunk all set access_key user_type=AssumedRole, credential=temporary, and the role."""
    event = _event(path)
    key = event.first("access_key")
    assert key is not None
    assert key.attributes["user_type"] == "AssumedRole"
    assert key.attributes["credential"] == "temporary"
    assert event.first("iam_role") is not None


def test_splunk_iam_user_key_is_long_term_and_names_the_user() -> None:
    """A Splunk result with an AKIA key and user_type IAMUser yields a long_term key and the IAM user."""
    body = (b'{"sid": "s1", "search_name": "key used from TOR", "result": {"access_key_id": "AKIAEXAMPLE000000001",'
            b' "user": "carol", "user_type": "IAMUser"}}')
    [event] = [e for doc in parse_documents(body) for e in decode_doc(doc)]
    key = event.first("access_key")
    assert key is not None
    assert (key.attributes["user_type"], key.attributes["credential"]) == ("IAMUser", "long_term")
    user = event.first("iam_user")
    assert user is not None
    assert user.id == "carol"


def test_cloudwatch_alarm_names_the_api_key_from_its_dimensions() -> None:
    """An alarm on a metric with an ApiKeyId dimension yields the api_key, with its API and stage."""
    event = _event(ROOT / "runbooks/examples/model-extraction-probing.json")
    key = event.first("api_key")
    assert key is not None
    assert key.id == "a1b2c3d4e5"
    assert (key.attributes["api_id"], key.attributes["stage"]) == ("k7x2q9abcd", "prod")
    assert event.first("function") is not None
