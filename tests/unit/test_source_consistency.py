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
from responder.models.event import Event
from responder.normalise import decode_doc, normalise
from responder.rules.matcher import Matcher
from tests.conftest import CORPUS

ROOT = Path(__file__).resolve().parents[2]
EXFIL_TYPE = "TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS"


def _doc(rel: str) -> Any:
    return orjson.loads((CORPUS / rel).read_bytes())


def _principal(event: Event) -> tuple[Any, ...]:
    key, role = event.first("access_key"), event.first("iam_role")
    assert key is not None
    return (key.id, key.attributes.get("user_name"), key.attributes.get("user_type"),
            key.attributes.get("credential"), role and role.id)


def test_ocsf_copy_of_a_guardduty_finding_names_the_principal_as_security_hub_does() -> None:
    """OCSF's AwsIamAccessKey resource carries the same user_type and iam_role as the ASFF finding it maps."""
    [asff] = decode_doc(_doc("securityhub/asff_guardduty_stealth_iamuser_cloudtrailloggingdisabled.json"))
    [ocsf] = decode_doc(_doc("ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json"))
    assert _principal(ocsf) == _principal(asff) == ("ASIATMJPC7EXAMPLE", "Admin", "AssumedRole", "temporary",
                                                    "Admin")


def test_instance_credential_exfiltration_is_contained_whichever_source_reports_it(runbooks_dir: Path) -> None:
    """The exfiltration finding via Security Hub and via OCSF both match credential-exfiltration, on the same role."""
    matcher = Matcher(load_runbooks(runbooks_dir, registry))
    asff = orjson.loads((ROOT / "playbooks/events/securityhub-instance-credential-exfiltration.json").read_bytes())
    ocsf = _doc("ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json")
    ocsf["finding_info"]["types"] = [EXFIL_TYPE]
    ocsf["severity_id"], ocsf["severity"] = 4, "High"  # the ASFF copy's HIGH
    ocsf["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {
        "PrincipalId": "AROAEXAMPLEROLE00001:i-0d2c3a1b5e6f7a8b9", "PrincipalName": "inference-host-role",
        "PrincipalType": "AssumedRole"}}).decode()
    ocsf["resources"][0]["uid"] = "AWS::IAM::AccessKey:ASIAEXAMPLEEXFIL0001"
    found = {}
    for doc in (asff, ocsf):
        [event] = decode_doc(doc)
        found[event.source] = ([m.runbook.id for m in matcher.match(event)], _principal(event))
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
