"""A Security Hub control finding its provider retired (ASFF `RecordState: ARCHIVED`, OCSF activity Close) is no
threat in either lane, says so in `attributes.retired`, and reaches no runbook; a human's workflow or status never
retires a check, and another product's archived finding keeps its threat."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.source_kit import CONTROL_BUCKET, CONTROLS, ROOT, asff_event, head_equals_full, seen, v2_event, v2_finding


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


def _asff_check(control: str, **fields: Any) -> dict[str, Any]:
    """The failed control check's ASFF event with top-level finding `fields` set."""
    doc = asff_event(control)
    doc["detail"]["findings"][0].update(fields)
    return doc


def _v2_check(control: str, **fields: Any) -> dict[str, Any]:
    """The failed control check's V2 event with finding `fields` set (None removes one)."""
    finding = v2_finding(control)
    for key, value in fields.items():
        if value is None:
            finding.pop(key, None)
        else:
            finding[key] = value
    return v2_event(finding)


RETIRED = {
    "asff-archived": lambda c: _asff_check(c, RecordState="ARCHIVED"),
    "asff-archived-resolved": lambda c: _asff_check(c, RecordState="ARCHIVED", Workflow={"Status": "RESOLVED"}),
    "v2-close": lambda c: _v2_check(c, activity_id=3, activity_name="Close"),
    "v2-close-id": lambda c: _v2_check(c, activity_id=3),
    "v2-close-name": lambda c: _v2_check(c, activity_id=None, activity_name="Close"),
    "security-lake-archived": lambda c: _v2_check(c, activity_id=None, unmapped={"RecordState": "ARCHIVED"}),
}


@pytest.mark.parametrize("control", sorted(CONTROLS))
@pytest.mark.parametrize("shape", sorted(RETIRED))
def test_a_retired_failed_check_is_no_threat(shape: str, control: str, matcher: Matcher) -> None:
    """An archived or closed FAILED check has no threat, `retired: true`, and reaches no runbook."""
    [event] = decode_doc(RETIRED[shape](control))
    assert event.threat is None
    assert event.attributes["retired"] is True
    assert matcher.match(event) == []


def test_the_head_of_a_closed_v2_check_equals_its_event() -> None:
    """The one-finding head of a closed check has no threat either, as the full decoder says."""
    head_equals_full(_v2_check("S3.8", activity_id=3, activity_name="Close"))


@pytest.mark.parametrize("doc", [
    _asff_check("S3.8", RecordState="ACTIVE", Workflow={"Status": "RESOLVED"}),
    _asff_check("S3.8", Workflow={"Status": "SUPPRESSED"}),
    _v2_check("S3.8", status="Suppressed", status_id=3),
    _v2_check("S3.8", status="Resolved", status_id=4),
    _v2_check("S3.8", status="Archived", status_id=5),
    _v2_check("S3.8", activity_id=2, activity_name="Update"),
    _v2_check("S3.8", activity_id=3, activity_name="Update"),  # a contradiction is no close
    _v2_check("S3.8", activity_id=1, activity_name="Close"),
], ids=["asff-resolved", "asff-suppressed", "v2-suppressed", "v2-resolved", "v2-status-archived", "v2-update",
        "v2-close-id-update-name", "v2-create-id-close-name"])
def test_a_human_s_status_never_retires_a_failed_check(doc: dict[str, Any], matcher: Matcher) -> None:
    """A human's workflow or status change never retires a FAILED check; it still blocks public access."""
    [event] = decode_doc(doc)
    assert seen(event, matcher) == ("public_data_exposure", ["training-data-bucket-public"], CONTROL_BUCKET)
    assert "retired" not in event.attributes


def test_another_product_s_archived_finding_keeps_its_threat() -> None:
    """Another product's finding archived in Security Hub keeps its category; `retired` lets a runbook skip it."""
    doc = _asff_check("S3.8", RecordState="ARCHIVED", ProductArn="arn:aws:securityhub:us-east-2::product/aws/guardduty",
                      Types=["TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"])
    [event] = decode_doc(doc)
    assert event.threat is not None
    assert event.threat.category == "credential_compromise"
    assert event.attributes["retired"] is True
