"""Decoders name the same principal facts whatever the source, so one runbook condition serves them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.models.event import Event
from responder.normalise import decode_doc, guardduty, guardduty_fast, parse_documents
from responder.rules.matcher import Matcher
from tests.findings import guardduty_finding
from tests.principal_kit import NOT_A_USER, ROOT, WRITES

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


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


@pytest.mark.parametrize("user_type", NOT_A_USER)
@pytest.mark.parametrize("build", WRITES, ids=lambda f: f.__name__.strip("_"))
def test_a_principal_that_is_not_an_iam_user_is_not_quarantined_as_one(
        build: Callable[[str | None], dict[str, Any]], user_type: str | None, matcher: Matcher) -> None:
    """A FederatedUser/Root/AWSService/untyped writer named like an IAM user yields no iam_user and no quarantine."""
    [event] = decode_doc(build(user_type))
    assert event.first("iam_user") is None
    assert event.first("iam_role") is None
    key = event.first("access_key")
    assert key is not None
    assert key.attributes["user_name"] == "victim"
    assert key.attributes.get("user_type") == user_type
    assert "unauthorized-training-data-write" not in [m.runbook.id for m in matcher.match(event)]


@pytest.mark.parametrize(("user_type", "kind"), [("IAMUser", "iam_user"), ("AssumedRole", "iam_role")])
@pytest.mark.parametrize("build", WRITES, ids=lambda f: f.__name__.strip("_"))
def test_an_iam_user_or_role_writer_is_still_named_and_quarantined(
        build: Callable[[str | None], dict[str, Any]], user_type: str, kind: str, matcher: Matcher) -> None:
    """An IAMUser (AssumedRole) writer yields its iam_user (iam_role) and matches unauthorized-training-data-write."""
    [event] = decode_doc(build(user_type))
    principal = event.first(kind)
    assert principal is not None
    assert principal.id == "victim"
    assert "unauthorized-training-data-write" in [m.runbook.id for m in matcher.match(event)]


@pytest.mark.parametrize("user_type", ["IAMUser", "AssumedRole", *NOT_A_USER])
def test_the_guardduty_fast_lane_names_the_principal_as_the_general_decoder_does(user_type: str | None) -> None:
    """The fast lane takes a key-only finding of any userType and builds the general decoder's resources."""
    finding = guardduty_finding("AKIAIOSFODNN7EXAMPLE", "victim")
    key = finding["resource"]["accessKeyDetails"]
    key.pop("userType", None)
    if user_type is not None:
        key["userType"] = user_type
    fast = guardduty_fast.event(finding, None)
    assert fast is not None
    assert fast == guardduty.finding_to_event(finding)
    expected = {"IAMUser": "iam_user", "AssumedRole": "iam_role"}.get(user_type or "")
    assert [r.kind.value for r in fast.resources if r.kind.value in ("iam_user", "iam_role")] == \
        ([expected] if expected else [])
