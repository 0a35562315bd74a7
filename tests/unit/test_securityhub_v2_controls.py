"""Security Hub CSPM control findings relayed in `Findings Imported V2` events (OCSF Compliance Findings, 2003) are
classified by their control id (`compliance.control`) as the ASFF lane classifies `Compliance.SecurityControlId`,
so the same control gets the same runbooks whichever lane reports it.

The V2 findings have the shape Security Hub writes (Elastic's aws_securityhub test data, OCSF 1.6): product uid
`…::productv2/aws/securityhub`, `compliance.control` the security control id, resources CloudFormation-typed with
the bare name or id in `uid` and the ARN in `uid_alt`.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.conftest import CORPUS
from tests.source_kit import (
    ACCOUNT,
    CONTROL_BUCKET,
    CONTROLS,
    ROOT,
    asff_event,
    head_equals_full,
    seen,
    v2_event,
    v2_finding,
)


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_a_control_as_asff_and_as_v2_matches_the_same_runbooks(control: str, matcher: Matcher) -> None:
    """A failed control via the ASFF lane and via Security Hub V2 gets the same category, runbooks and bucket."""
    [asff], [v2] = decode_doc(asff_event(control)), decode_doc(v2_event(v2_finding(control)))
    assert v2.source == "ocsf"
    assert seen(v2, matcher) == seen(asff, matcher)
    assert seen(v2, matcher)[1] == CONTROLS[control][2]
    assert v2.attributes["control_id"] == asff.attributes["control_id"] == control


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_the_v2_head_of_a_control_finding_equals_its_event(control: str) -> None:
    """The one-finding head carries the control's threat, as the full decoder does."""
    head_equals_full(v2_event(v2_finding(control)))


def test_a_control_claimed_by_another_product_is_not_classified() -> None:
    """A control id classifies only Security Hub's own findings: a custom product naming S3.8 gets no threat."""
    forged = v2_finding("S3.8", f"arn:aws:securityhub:us-east-2:{ACCOUNT}:productv2/{ACCOUNT}/default")
    [event] = decode_doc(v2_event(forged))
    assert event.threat is None


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus folder {CORPUS} is absent")
def test_security_lake_s_copy_of_a_control_finding_is_classified_too() -> None:
    """Security Lake's OCSF copy of a mapped control finding is classified as its ASFF original; Config.1 is not."""
    doc = orjson.loads((CORPUS / "ocsf/compliance_finding_2003_securityhub_pci.json").read_bytes())
    [config] = decode_doc(doc)
    assert (config.threat, config.attributes["control_id"]) == (None, "Config.1")
    doc["compliance"]["control"] = "CloudTrail.1"
    [event] = decode_doc(doc)
    assert event.threat is not None
    assert event.threat.category == "defense_evasion_logging"


@pytest.mark.parametrize("resource", [
    {"type": "AWS::S3::Bucket", "uid": CONTROL_BUCKET},
    {"type": "AWS::S3::Bucket", "uid": "ignored", "uid_alt": f"arn:aws:s3:::{CONTROL_BUCKET}"},
], ids=["bare-name", "uid_alt-arn"])
def test_a_cloudformation_typed_bucket_is_a_bucket(resource: dict[str, Any]) -> None:
    """`AWS::S3::Bucket` with the bare name in `uid`, or its ARN in `uid_alt`, is the bucket (before: `other`)."""
    finding = v2_finding("S3.8")
    finding["resources"] = [resource]
    [event] = decode_doc(v2_event(finding))
    bucket = event.first("bucket")
    assert bucket is not None
    assert bucket.id == CONTROL_BUCKET


def _passed_asff(control: str, **compliance: Any) -> dict[str, Any]:
    """The control's ASFF finding with `compliance` merged into its `Compliance` (and top-level fields set)."""
    doc = asff_event(control)
    finding = doc["detail"]["findings"][0]
    finding.update({k: v for k, v in compliance.items() if k in ("Workflow", "RecordState")})
    finding["Compliance"].update({k: v for k, v in compliance.items() if k == "Status"})
    return doc


def _passed_v2(control: str, compliance: dict[str, Any], status: str = "New") -> dict[str, Any]:
    """The control's V2 finding with `compliance` merged into its `compliance` and its finding `status`."""
    finding = v2_finding(control)
    finding["compliance"].update(compliance)
    finding["status"] = status
    return v2_event(finding)


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_a_passed_control_check_is_no_threat_in_either_lane(control: str, matcher: Matcher) -> None:
    """A passed control check, in ASFF or OCSF, is no threat and reaches no runbook."""
    for doc in (_passed_asff(control, Status="PASSED"), _passed_v2(control, {"status": "Pass", "status_id": 1}),
                _passed_v2(control, {"status": "Pass", "status_id": None}),
                _passed_v2(control, {"status": "PASSED", "status_id": None}),  # Security Lake's copies (corpus)
                _passed_v2(control, {"status": None, "status_id": 1})):
        [event] = decode_doc(doc)
        assert event.threat is None
        assert matcher.match(event) == []


def test_the_head_of_a_passed_v2_control_check_equals_its_event() -> None:
    """The one-finding head of a passed check has no threat either, as the full decoder says."""
    head_equals_full(_passed_v2("S3.8", {"status": "Pass", "status_id": 1}))


@pytest.mark.parametrize("doc", [
    _passed_asff("S3.8", Status="FAILED", Workflow={"Status": "RESOLVED"}, RecordState="ACTIVE"),
    _passed_asff("S3.8", Status="FAILED", Workflow={"Status": "SUPPRESSED"}),
    _passed_asff("S3.8", Status="WARNING"),
    _passed_asff("S3.8", Status="NOT_AVAILABLE"),
    _passed_v2("S3.8", {"status": "Fail", "status_id": 3}, status="Resolved"),
    _passed_v2("S3.8", {"status": "Fail", "status_id": 3}, status="Suppressed"),
    _passed_v2("S3.8", {"status": "Pass", "status_id": 3}),
    _passed_v2("S3.8", {"status": "Fail", "status_id": 1}),
    _passed_v2("S3.8", {"status": None, "status_id": None}),
    _passed_v2("S3.8", {"status": "FAILED", "status_id": None}),
    _passed_v2("S3.8", {"status": "PASSED", "status_id": 3}),
    _passed_v2("S3.8", {"status": "Warning", "status_id": 2}),
], ids=["asff-resolved", "asff-suppressed", "asff-warning", "asff-not-available", "v2-resolved",
        "v2-suppressed", "v2-status-id-fail", "v2-status-fail", "v2-no-status", "v2-failed", "v2-passed-id-fail",
        "v2-warning"])
def test_a_check_not_plainly_passed_still_reaches_its_runbook(doc: dict[str, Any], matcher: Matcher) -> None:
    """A check not plainly passed, even one marked resolved or suppressed, still blocks public access on the bucket."""
    [event] = decode_doc(doc)
    assert seen(event, matcher) == ("public_data_exposure", ["training-data-bucket-public"], CONTROL_BUCKET)


@pytest.mark.parametrize("arn", [
    f"arn:aws:s3:us-east-2:{ACCOUNT}:accesspoint/{CONTROL_BUCKET}",  # an access point (S3.19's resource)
    f"arn:aws:s3::{ACCOUNT}:accesspoint/mfzwi23gnjvgw.mrap",  # a multi-Region access point
    f"arn:aws:s3:us-east-2:{ACCOUNT}:job/0123-abcd",  # a Batch Operations job
    f"arn:aws:s3:us-east-2:{ACCOUNT}:storage-lens/default-account-dashboard",
])
def test_an_s3_arn_naming_a_region_or_account_is_no_bucket(arn: str) -> None:
    """An S3 ARN naming a region or account, such as an access point's, is not taken for a bucket."""
    finding = v2_finding("S3.8")
    finding["compliance"]["control"] = "S3.19"
    finding["resources"] = [{"type": "AWS::S3::AccessPoint", "uid": CONTROL_BUCKET, "uid_alt": arn},
                            {"type": "AwsS3AccessPoint", "uid": arn}]
    [event] = decode_doc(v2_event(finding))
    assert event.first("bucket") is None
    assert [r.arn for r in event.resources] == [None, arn]


@pytest.mark.parametrize("arn", [f"arn:aws:s3:::{CONTROL_BUCKET}",
                                 f"arn:aws-cn:s3:::{CONTROL_BUCKET}/path/to/object.parquet"])
def test_a_bucket_or_object_arn_is_still_the_bucket(arn: str) -> None:
    """A bucket's ARN, or an object's, still names the bucket."""
    finding = v2_finding("S3.8")
    finding["resources"] = [{"type": "AWS::S3::Bucket", "uid": arn}]
    [event] = decode_doc(v2_event(finding))
    bucket = event.first("bucket")
    assert bucket is not None
    assert bucket.id == CONTROL_BUCKET
