"""GuardDuty findings as Security Hub actually writes them in `Findings Imported V2` events: the finding type in
GuardDuty's own form (`finding_info.types: ["Stealth:IAMUser/CloudTrailLoggingDisabled"]`, not ASFF's
`TTPs/…/Stealth:IAMUser-CloudTrailLoggingDisabled`) and the key as a CloudFormation-typed resource
(`type: AWS::IAM::AccessKey`, `uid` the bare key id, the principal in `data` or `user`), as published V2 samples
(Sumo Logic's AWS Security Hub - OCSF app, AWS's Automated Security Response tests) show them."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.normalise import decode_doc, head
from responder.rules.matcher import Matcher
from tests.source_kit import ANOMALIES, ANOMALY_KEY, ROOT, v2_event

GUARDDUTY_V2 = "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"


def _finding(gd_type: str, **resource: Any) -> dict[str, Any]:
    """A V2 Detection Finding from GuardDuty naming `gd_type` in GuardDuty's form, on an IAM user's key."""
    key = {"type": "AWS::IAM::AccessKey", "uid": ANOMALY_KEY, "name": "ml-training", "region": "us-east-1",
           "data": {"access_key_id": ANOMALY_KEY, "principal_id": "AIDAEXAMPLEUSER00001", "user_name": "ml-training",
                    "user_type": "IAMUser"}}
    return {"class_uid": 2004, "activity_id": 2, "severity_id": 3, "severity": "Medium",
            "cloud": {"account": {"uid": "111122223333"}, "provider": "AWS", "region": "us-east-1"},
            "metadata": {"product": {"name": "GuardDuty", "vendor_name": "AWS", "uid": GUARDDUTY_V2},
                         "version": "1.5.0", "uid": "0123abcd"},
            "finding_info": {"uid": "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f",
                             "title": "Anomalous API calls by ml-training", "types": [gd_type],
                             "attacks": [{"technique": {"uid": "T1078.004", "name": "Cloud Accounts"}}]},
            "resources": [key | resource], "time_dt": "2025-07-22T03:02:34.272Z"}


@pytest.mark.parametrize("gd_type", sorted(ANOMALIES))
def test_a_v2_ml_anomaly_in_guardduty_form_pages_and_is_never_contained(gd_type: str) -> None:
    """A V2 ML anomaly in GuardDuty's form naming T1078.004 pages via anomalous_credential_use, never contained."""
    doc = v2_event(_finding(gd_type))
    [event] = decode_doc(doc)
    found = head(doc)
    assert found is not None
    assert found[0].threat == event.threat
    assert event.threat is not None
    assert event.threat.category == "anomalous_credential_use"
    matches = Matcher(load_runbooks(ROOT / "runbooks", registry)).match(event)
    assert [m.runbook.id for m in matches] == ["anomalous-credential-use"]


def test_a_v2_finding_type_in_guardduty_form_is_classified_as_the_asff_form() -> None:
    """`Stealth:IAMUser/CloudTrailLoggingDisabled` and its ASFF spelling give the same threat (no attacks[])."""
    raw, asff = _finding("Stealth:IAMUser/CloudTrailLoggingDisabled"), _finding(
        "TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled")
    for f in (raw, asff):
        del f["finding_info"]["attacks"]
    [a], [b] = decode_doc(v2_event(raw)), decode_doc(v2_event(asff))
    assert a.threat is not None
    assert a.threat == b.threat
    assert a.threat.category == "defense_evasion_logging"


def test_guardduty_form_types_claimed_by_another_product_are_not_classified() -> None:
    """The GuardDuty form classifies only GuardDuty's product: a custom product naming it gets no GuardDuty row."""
    f = _finding("Stealth:IAMUser/CloudTrailLoggingDisabled")
    del f["finding_info"]["attacks"]
    f["metadata"]["product"]["uid"] = "arn:aws:securityhub:us-east-1:111122223333:productv2/111122223333/default"
    [event] = decode_doc(v2_event(f))
    assert event.threat is None


@pytest.mark.parametrize("resource", [{}, {"data": None, "user": {"name": "ml-training", "type": "IAMUser"}}],
                         ids=["data", "user"])
def test_a_cloudformation_typed_access_key_is_the_key_and_its_principal(resource: dict[str, Any]) -> None:
    """A CloudFormation-typed `AWS::IAM::AccessKey` is an access_key naming its user and principal type."""
    [event] = decode_doc(v2_event(_finding("CredentialAccess:IAMUser/AnomalousBehavior", **resource)))
    key = event.first("access_key")
    assert key is not None
    assert (key.id, key.attributes.get("user_name"), key.attributes.get("user_type"),
            key.attributes.get("credential")) == (ANOMALY_KEY, "ml-training", "IAMUser", "long_term")
    user = event.first("iam_user")
    assert user is not None
    assert user.id == "ml-training"
