"""One threat, one answer: the same finding wrapped by another source names the same target and runbook."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.errors import ValidationFailed
from responder.normalise import decode_doc, guardduty, guardduty_fast, normalise
from responder.rules.matcher import Matcher
from tests.conftest import CORPUS
from tests.findings import rescore_ocsf, retype_ocsf
from tests.source_kit import ANOMALIES, ANOMALY_KEY, ROOT, _ocsf_guardduty, anomaly_copies, principal_of

EXFIL_TYPE = "TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS"


def _doc(rel: str) -> Any:
    return orjson.loads((CORPUS / rel).read_bytes())


def test_ocsf_copy_of_a_guardduty_finding_names_the_principal_as_security_hub_does() -> None:
    """OCSF's AwsIamAccessKey resource carries the same user_type and iam_role as the ASFF finding it maps."""
    [asff] = decode_doc(_doc("securityhub/asff_guardduty_stealth_iamuser_cloudtrailloggingdisabled.json"))
    [ocsf] = decode_doc(_doc("ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json"))
    assert principal_of(ocsf) == principal_of(asff) == ("ASIATMJPC7EXAMPLE", "Admin", "AssumedRole", "temporary",
                                                        "Admin")


def test_instance_credential_exfiltration_is_contained_whichever_source_reports_it(runbooks_dir: Path) -> None:
    """The exfiltration finding via Security Hub and via OCSF both match credential-exfiltration, on the same role."""
    matcher = Matcher(load_runbooks(runbooks_dir, registry))
    asff = orjson.loads((ROOT / "playbooks/events/securityhub-instance-credential-exfiltration.json").read_bytes())
    ocsf = _doc("ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json")
    retype_ocsf(ocsf, [EXFIL_TYPE])
    rescore_ocsf(ocsf, 4, "High")  # the ASFF copy's HIGH
    ocsf["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {
        "PrincipalId": "AROAEXAMPLEROLE00001:i-0d2c3a1b5e6f7a8b9", "PrincipalName": "inference-host-role",
        "PrincipalType": "AssumedRole"}}).decode()
    ocsf["resources"][0]["uid"] = "AWS::IAM::AccessKey:ASIAEXAMPLEEXFIL0001"
    found = {}
    for doc in (asff, ocsf):
        [event] = decode_doc(doc)
        found[event.source] = ([m.runbook.id for m in matcher.match(event)], principal_of(event))
    assert found["ocsf"] == found["securityhub"]
    assert found["ocsf"][0] == ["credential-exfiltration"]


def _custom_product(finding: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(finding)
    forged["ProductArn"] = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    forged["ProductFields"] = {"aws/securityhub/ProductName": "Default", "aws/securityhub/CompanyName": "Personal"}
    return forged


def test_a_custom_product_finding_does_not_pass_for_guardduty() -> None:
    """An ASFF finding imported under a custom product with a GuardDuty type gets no GuardDuty threat."""
    finding = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    [real] = decode_doc(finding)
    assert real.threat is not None
    [forged] = decode_doc(_custom_product(finding))
    assert forged.type == real.type
    assert forged.threat is None


def test_a_custom_product_finding_does_not_pass_for_a_security_hub_control() -> None:
    """Only Security Hub's own control findings are classified by their SecurityControlId."""
    finding = {"SchemaVersion": "2018-10-08", "Id": "f-1", "AwsAccountId": "123456789012",
               "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub", "Types": [],
               "Severity": {"Label": "HIGH"}, "UpdatedAt": "2026-11-25T11:00:00Z", "Compliance": {
                   "Status": "FAILED", "SecurityControlId": "S3.8"},
               "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::training-data-prod"}]}
    [real] = decode_doc(finding)
    assert real.threat is not None
    [forged] = decode_doc(_custom_product(finding))
    assert forged.threat is None


def test_a_deeply_nested_getfindings_response_is_a_validation_failure() -> None:
    """A GetFindings body nested past the interpreter's recursion limit is rejected, not a RecursionError."""
    deep = b"[" * 1000 + b"]" * 1000
    data = b'{"Findings": [{"Type": "Recon:IAMUser/X", "Service": {}, "Severity": 5, "Extra": ' + deep + b"}]}"
    with pytest.raises(ValidationFailed):
        normalise(data)


def test_the_security_hub_copy_of_a_guardduty_finding_keeps_guardduty_s_score(runbooks_dir: Path) -> None:
    """A medium GuardDuty finding (5) scores 5 in its ASFF copy too, not Normalized/10, so both reach a runbook."""
    matcher = Matcher(load_runbooks(runbooks_dir, registry))
    finding = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    finding["Severity"] = {"Label": "MEDIUM", "Normalized": 40, "Product": 5}
    finding["FindingProviderFields"]["Severity"] = {"Label": "MEDIUM", "Original": "5"}
    [asff] = decode_doc(finding)
    gd = _doc("guardduty/raw_finding_recon_iamuser_maliciousipcaller_custom.json")
    gd.update(type="UnauthorizedAccess:IAMUser/MaliciousIPCaller", severity=5)
    gd["resource"]["accessKeyDetails"]["accessKeyId"] = "AKIAIOSFODNN7EXAMPLE"
    [native] = decode_doc(gd)
    assert asff.severity.score == native.severity.score == 5.0
    assert [m.runbook.id for m in matcher.match(native)] == ["iam-credential-compromise"]
    assert [m.runbook.id for m in matcher.match(asff)] == ["access-key-compromise"]


def test_the_ocsf_copy_of_a_custom_product_finding_does_not_pass_for_guardduty() -> None:
    """The OCSF copy of a custom product's finding gets no GuardDuty threat, however it names itself."""
    [real] = decode_doc(_ocsf_guardduty())
    assert real.threat is not None
    forged = _ocsf_guardduty()
    forged["metadata"]["product"]["uid"] = "arn:aws:securityhub:us-east-2:123456789012:product/123456789012/default"
    [event] = decode_doc(forged)
    assert (event.type, event.threat) == (real.type, None)
    del forged["metadata"]["product"]["uid"]
    assert decode_doc(forged)[0].threat is None


@pytest.mark.parametrize(("arn", "aws_own"), [
    ("arn:aws:securityhub:us-east-1::product/aws/guardduty", True),
    ("arn:aws-cn:securityhub:cn-north-1::product/aws/guardduty", True),
    ("arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/guardduty", True),
    ("arn:aws:securityhub:us-east-1:123456789012:product/aws/guardduty", False),
    ("arn:aws:securityhub:us-east-1::product/aws/guardduty/x", False),
    ("arn:aws:inspector:us-east-1::product/aws/guardduty", False),
])
def test_only_aws_s_own_guardduty_product_arn_is_trusted(arn: str, aws_own: bool) -> None:
    """AWS's products have no account in their ARN, in any partition; an ARN naming an account is not AWS's."""
    finding = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    finding["ProductArn"] = arn
    [event] = decode_doc(finding)
    assert (event.threat is not None) is aws_own


def _medium_guardduty(original: Any) -> dict[str, Any]:
    finding = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    finding["Severity"] = {"Label": "MEDIUM", "Normalized": 40}
    finding["FindingProviderFields"]["Severity"] = {"Label": "MEDIUM", "Original": original}
    return dict(finding)


@pytest.mark.parametrize("original", ["NaN", "Infinity", "1e400", "99", "-1", "2"])
def test_guardduty_s_number_outside_its_label_leaves_the_label_s_score(original: str) -> None:
    """A GuardDuty `Original` that is no number in its label's band is skipped: the provider's label scores (5.0)."""
    [event] = decode_doc(_medium_guardduty(original))
    assert event.severity.score == 5.0


def test_guardduty_s_own_severity_fields_win_over_the_customer_s() -> None:
    """GuardDuty's FindingProviderFields.Severity.Product is read before the top-level Severity.Product."""
    finding = _medium_guardduty("5")
    finding["Severity"] = {"Label": "HIGH", "Normalized": 70, "Product": 8.9}
    finding["FindingProviderFields"]["Severity"] = {"Label": "HIGH", "Product": 8}
    [event] = decode_doc(finding)
    assert event.severity.score == 8.0


def test_a_security_hub_finding_with_no_type_title_or_generator_is_unknown() -> None:
    """A finding naming none of Types, Title or GeneratorId gets the type `unknown`, never the string `None`."""
    finding = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    for key in ("Types", "Title", "GeneratorId"):
        finding.pop(key, None)
    finding["FindingProviderFields"].pop("Types", None)
    [event] = decode_doc(finding)
    assert event.type == "unknown"


def _datadog(**signal: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "tests/fixtures/events/datadog_access_key.json").read_bytes())
    doc["detail"]["meta"]["signal"].update(signal)
    return doc


def test_a_datadog_signal_with_no_rule_name_or_title_is_unknown() -> None:
    """A Datadog signal naming no rule, title or message title gets the type `unknown`, never the string `None`."""
    doc = _datadog(title=None)
    del doc["detail"]["meta"]["signal"]["rule"]["name"]
    [event] = decode_doc(doc)
    assert event.type == "unknown"


def test_a_padded_type_is_classified_as_the_type_it_is_stored_as() -> None:
    """The threat tables read the type as `event.type` holds it (stripped): padding evades neither."""
    doc = _datadog()
    doc["detail"]["meta"]["signal"]["rule"]["name"] = "AWS CloudTrail configuration modified \n"
    gd = _doc("guardduty/raw_finding_recon_iamuser_maliciousipcaller_custom.json")
    gd["type"] = " " + gd["type"]
    for record in (doc, gd):
        [event] = decode_doc(record)
        assert event.type == event.type.strip()
        assert event.threat is not None, event.type


@pytest.mark.parametrize("gd_type", sorted(ANOMALIES))
def test_a_guardduty_ml_anomaly_pages_whichever_source_or_lane_reports_it(gd_type: str, runbooks_dir: Path) -> None:
    """An IAMUser/AnomalousBehavior finding pages on-call and deactivates no key, from every source and lane alike."""
    matcher = Matcher(load_runbooks(runbooks_dir, registry))
    found = {lane: ([m.runbook.id for m in matcher.match(event)], event.threat and event.threat.category,
                    principal_of(event)[:3])
             for lane, event in anomaly_copies(gd_type).items()}
    expected = (["anomalous-credential-use"], "anomalous_credential_use", (ANOMALY_KEY, "ml-training", "IAMUser"))
    assert found == dict.fromkeys(found, expected)


def test_a_guardduty_ml_anomaly_on_a_role_session_pages_once(runbooks_dir: Path) -> None:
    """An InitialAccess anomaly on a role's session key pages through anomalous-credential-use only, in both lanes."""
    matcher = Matcher(load_runbooks(runbooks_dir, registry))
    native = orjson.loads((ROOT / "runbooks/examples/iam-credential-compromise.json").read_bytes())
    native.update(type="InitialAccess:IAMUser/AnomalousBehavior", severity=4)
    native["resource"]["accessKeyDetails"] = {"accessKeyId": "ASIAEXAMPLESESSION01", "principalId": "AROAEXAMPLE:s",
                                              "userType": "AssumedRole", "userName": "inference-host-role"}
    lanes = (guardduty_fast.event(native, None), guardduty.finding_to_event(native, None))
    assert [[m.runbook.id for m in matcher.match(e)] for e in lanes if e is not None] == [
        ["anomalous-credential-use"]] * 2


@pytest.mark.parametrize("gd_type", sorted(ANOMALIES))
def test_the_ocsf_copy_of_a_guardduty_ml_anomaly_naming_t1078_is_not_contained(gd_type: str,
                                                                             runbooks_dir: Path) -> None:
    """An OCSF GuardDuty ML anomaly naming T1078.004 is classified by its GuardDuty type: it pages, no key touched."""
    ocsf = anomaly_copies(gd_type)["ocsf"].raw
    ocsf["finding_info"]["attacks"] = [{"tactic": {"uid": "TA0006", "name": "Credential Access"},
                                        "technique": {"uid": "T1078.004", "name": "Cloud Accounts"}}]
    [event] = decode_doc(ocsf)
    assert event.threat is not None
    assert (event.threat.category, "T1078.004" in event.threat.techniques) == ("anomalous_credential_use", True)
    assert [m.runbook.id for m in Matcher(load_runbooks(runbooks_dir, registry)).match(event)] == [
        "anomalous-credential-use"]


def test_the_ocsf_copy_of_another_product_s_finding_is_still_classified_by_its_techniques() -> None:
    """A finding that is not GuardDuty's own keeps the attacks[] classification (T1078.004: credential_compromise)."""
    ocsf = _ocsf_guardduty()
    ocsf["metadata"]["product"]["uid"] = "arn:aws:securityhub:us-east-2:123456789012:product/123456789012/default"
    retype_ocsf(ocsf, ["TTPs/Credential Access/CredentialAccess:IAMUser-AnomalousBehavior"])
    ocsf["finding_info"]["attacks"] = [{"technique": {"uid": "T1078.004"}}]
    [event] = decode_doc(ocsf)
    assert event.threat is not None
    assert event.threat.category == "credential_compromise"
