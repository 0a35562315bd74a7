"""Decoders set the normalised threat from their native fields through the declarative tables."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from responder.models.threat import Threat, ThreatCategory
from responder.normalise import decode_doc, normalise
from responder.normalise.threats import CLOUDTRAIL, GUARDDUTY, ThreatTable, guardduty_type, t
from tests.conftest import CORPUS

C = ThreatCategory
ROOT = Path(__file__).resolve().parents[2]
corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus folder {CORPUS} is absent")


def _first(rel: str) -> object:
    doc = orjson.loads((CORPUS / rel).read_bytes())
    return doc[0] if isinstance(doc, list) else doc


@corpus
@pytest.mark.parametrize(("rel", "category", "technique"), [
    ("cloudtrail/stratus_cloudtrail_stoplogging.json", C.DEFENSE_EVASION_LOGGING, "T1562.008"),
    ("cloudtrail/stratus_iam_backdoor_user_createaccesskey.json", C.BACKDOOR_CREDENTIAL, "T1098.001"),
    ("securityhub/asff_guardduty_stealth_iamuser_cloudtrailloggingdisabled.json", C.DEFENSE_EVASION_LOGGING,
     "T1562.008"),
    ("ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json", C.DEFENSE_EVASION_LOGGING,
     "T1562.008"),
    ("siem_alerts/datadog_cspm_signal_eventbridge_s3_public_bucket.json", C.PUBLIC_DATA_EXPOSURE, "T1530"),
    ("falco/falco_docs_terminal_shell_in_container_critical.json", C.CONTAINER_SHELL, "T1609"),
    ("ml_monitoring/sagemaker_model_monitor_data_quality_constraint_violations.json", C.MODEL_DRIFT, None),
    ("guardduty/getfindings_trojan_ec2_droppoint_dns.json", C.HOST_COMPROMISE, "T1071"),
])
def test_corpus_samples_get_their_category(rel, category, technique):
    """Real third-party samples decode to the category (and technique) their native type or rule implies."""
    events = normalise((CORPUS / rel).read_bytes())
    assert {e.threat.category for e in events if e.threat} == {category}
    if technique:
        assert all(technique in e.threat.techniques for e in events if e.threat)


@corpus
def test_access_key_for_oneself_is_not_a_backdoor():
    """CreateAccessKey for the caller's own user, or a failed one, carries no threat: the qualifiers decide."""
    record = _first("cloudtrail/stratus_iam_backdoor_user_createaccesskey.json")
    mine = copy.deepcopy(record)
    mine["requestParameters"]["userName"] = mine["userIdentity"]["userName"]
    failed = copy.deepcopy(record)
    failed["errorCode"] = "AccessDenied"
    assert [e.threat for e in decode_doc(mine)] == [None]
    assert [e.threat for e in decode_doc(failed)] == [None]


@corpus
def test_bedrock_by_a_role_session_is_not_llmjacking():
    """InvokeModel by an assumed-role session (an application) is not LLMjacking; with a user's AKIA key it is."""
    record = _first("cloudtrail/stratus_iam_backdoor_user_createaccesskey.json")
    record.update(eventSource="bedrock.amazonaws.com", eventName="InvokeModel", responseElements=None,
                  requestParameters={"modelId": "anthropic.claude-3-haiku-20240307-v1:0"})
    [user] = decode_doc(record)
    role = copy.deepcopy(record)
    role["userIdentity"] = {"type": "AssumedRole", "accessKeyId": "ASIAEXAMPLE000000001",
                            "arn": "arn:aws:sts::946986569305:assumed-role/inference/app"}
    [app] = decode_doc(role)
    assert user.threat is not None
    assert user.threat.category is C.LLMJACKING
    assert set(user.threat.techniques) == {"T1496.004", "AML.T0034"}
    assert app.threat is None


def test_longest_prefix_wins():
    """InstanceCredentialExfiltration.* beats UnauthorizedAccess:IAMUser/*; unmapped keys give None."""
    exfil = GUARDDUTY.lookup("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
    other = GUARDDUTY.lookup("UnauthorizedAccess:IAMUser/MaliciousIPCaller")
    assert (exfil and exfil.category, other and other.category) == (C.CREDENTIAL_EXFILTRATION,
                                                                    C.CREDENTIAL_COMPROMISE)
    assert GUARDDUTY.lookup("Recon:EC2/PortProbeUnprotectedPort") is None
    assert CLOUDTRAIL.lookup("s3.amazonaws.com/GetObject", {}) is None


def test_asff_types_are_rewritten_to_guardduty_types():
    """ASFF writes `Resource-Family` where GuardDuty writes `Resource/Family`; other types are not GuardDuty's."""
    assert guardduty_type("TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller") == \
        "UnauthorizedAccess:IAMUser/MaliciousIPCaller"
    assert guardduty_type("Software and Configuration Checks/Industry and Regulatory Standards") is None


def test_guardduty_types_in_their_own_form_are_kept() -> None:
    """GuardDuty's own form (Security Hub's OCSF findings write it) is returned as is, not misread as ASFF's."""
    assert guardduty_type("Stealth:IAMUser/CloudTrailLoggingDisabled") == "Stealth:IAMUser/CloudTrailLoggingDisabled"
    assert guardduty_type("CryptoCurrency:EC2/BitcoinTool.B!DNS") == "CryptoCurrency:EC2/BitcoinTool.B!DNS"
    assert guardduty_type("Effects/Data Exposure") is None


def test_a_bad_table_row_fails_at_import():
    """Rows with a malformed technique id or an unknown qualifier are refused when the table is built."""
    with pytest.raises(ValueError, match="T123"):
        ThreatTable({"x": t(C.DISCOVERY, "T123")})
    with pytest.raises(ValueError, match="nobody"):
        ThreatTable({"x": t(C.DISCOVERY, when=["nobody"])})


def test_source_techniques_are_kept():
    """A table threat keeps the technique ids the source reported, valid ones only, without duplicates."""
    base = Threat(category=C.CONTAINER_SHELL, techniques=("T1609",))
    assert base.with_techniques(("T1609", "T1059", "mitre_execution")).techniques == ("T1609", "T1059")


def test_s3_object_writes_are_unauthorized_data_write_candidates():
    """A successful CloudTrail PutObject and GuardDuty's anomalous S3 write map to unauthorized_data_write."""
    raw = (ROOT / "runbooks/examples/unauthorized-training-data-write.json").read_bytes()
    [event] = normalise(raw)
    assert event.threat is not None
    assert event.threat.category is C.UNAUTHORIZED_DATA_WRITE
    doc = orjson.loads(raw)
    doc["detail"]["errorCode"] = "AccessDenied"
    assert [e.threat for e in normalise(orjson.dumps(doc))] == [None]
    found = GUARDDUTY.lookup("Impact:S3/AnomalousBehavior.Write")
    assert found is not None
    assert found.category is C.UNAUTHORIZED_DATA_WRITE
