"""What an OCSF record gains by naming GuardDuty's product (`metadata.product.uid`), which any OCSF producer (a
Security Lake custom source) can write: categories no `attacks[]` technique reaches, and no AWS action the shipped
runbooks would not already take for a technique the same producer can name (docs/events.md, "Product claims")."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.models.threat import ThreatCategory
from responder.normalise import decode_doc
from responder.normalise.threats import GUARDDUTY, SECURITYHUB, TECHNIQUES
from responder.rules.matcher import Matcher
from tests.findings import rescore_ocsf, retype_ocsf

ROOT = Path(__file__).resolve().parents[2]
GUARDDUTY_PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/guardduty"
V2_FIXTURE = ROOT / "tests/fixtures/events/securityhub_v2_guardduty.json"


def _record() -> dict[str, Any]:
    """An OCSF Detection Finding (the corpus' GuardDuty copy) naming what the shipped runbooks act on: an IAM user's
    long-term key, an EC2 instance and a training-data bucket, Critical, and no product."""
    doc: dict[str, Any] = orjson.loads(V2_FIXTURE.read_bytes())["detail"]["findings"][0]
    doc["metadata"]["product"] = {"name": "Custom", "vendor_name": "Anyone"}
    rescore_ocsf(doc, 5, "Critical")
    retype_ocsf(doc, [])
    doc["resources"] = [
        {"type": "AwsIamAccessKey", "uid": "AWS::IAM::AccessKey:AKIAEXAMPLEKEYID0001", "data": orjson.dumps({
            "AwsIamAccessKey": {"PrincipalName": "ml-training", "PrincipalType": "IAMUser"}}).decode()},
        {"type": "AwsEc2Instance", "uid": "arn:aws:ec2:us-east-2:111111111111:instance/i-0123456789abcdef0"},
        {"type": "AwsS3Bucket", "uid": "arn:aws:s3:::acme-training-data-prod"}]
    return doc


def _concrete(pattern: str) -> str:
    """A GuardDuty type the table row `pattern` classifies (`CryptoCurrency:*` → `CryptoCurrency:EC2/X`)."""
    if pattern.endswith(":*"):
        return pattern[:-1] + "EC2/X"
    return pattern[:-1] + "X" if pattern.endswith("*") else pattern


def _asff(gd_type: str) -> str:
    """GuardDuty's type as ASFF (and OCSF mapped from it) writes it: `TTPs/x/Purpose:Resource-Family`."""
    purpose, _, family = gd_type.partition("/")
    return f"TTPs/Any/{purpose}-{family}"


def _acting(matcher: Matcher, doc: dict[str, Any]) -> set[str]:
    """The matched runbooks that call an AWS actuator."""
    [event] = decode_doc(doc)
    return {m.runbook.id for m in matcher.match(event)
            if any(s.actuator.startswith("aws.") for s in m.runbook.steps)}


def _claiming(name: str, uid: str) -> dict[str, Any]:
    """`_record()` claiming the product `name` (its uid `uid`)."""
    doc = _record()
    doc["metadata"]["product"] = {"name": name, "uid": uid}
    return doc


@pytest.fixture(scope="module", name="shipped")
def _shipped() -> Matcher:
    """A matcher over the shipped runbooks (loaded once for the module)."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


@pytest.fixture(scope="module", name="by_technique")
def _by_technique(shipped: Matcher) -> set[str]:
    """Every acting runbook an OCSF record with no product claim reaches by naming some technique in attacks[]."""
    reached: set[str] = set()
    for technique in TECHNIQUES.rows:
        doc = _record()
        doc["finding_info"]["attacks"] = [{"technique": {"uid": technique.rstrip("*")}}]
        reached |= _acting(shipped, doc)
    return reached


@pytest.mark.parametrize("spelled", ["asff", "guardduty"])
@pytest.mark.parametrize("pattern", sorted(GUARDDUTY.rows))
def test_claiming_guardduty_reaches_no_aws_action_a_technique_does_not(pattern: str, spelled: str, shipped: Matcher,
                                                                      by_technique: set[str]) -> None:
    """A record claiming GuardDuty's product runs only AWS-acting runbooks its attacks[] reach without the claim."""
    claimed = _claiming("GuardDuty", GUARDDUTY_PRODUCT)
    gd_type = _concrete(pattern)
    retype_ocsf(claimed, [_asff(gd_type) if spelled == "asff" else gd_type])
    [event] = decode_doc(claimed)
    assert event.threat is not None
    assert event.threat.category == GUARDDUTY.rows[pattern].threat.category
    assert _acting(shipped, claimed) <= by_technique


def test_the_categories_only_the_claim_reaches_are_the_documented_ones() -> None:
    """The claim adds only host_compromise, discovery and anomalous_credential_use, as docs/events.md names."""
    only_claimed = GUARDDUTY.categories() - TECHNIQUES.categories()
    assert only_claimed == {ThreatCategory.HOST_COMPROMISE, ThreatCategory.DISCOVERY,
                            ThreatCategory.ANOMALOUS_CREDENTIAL_USE}
    text = (ROOT / "docs/events.md").read_text()
    assert all(f"`{c.value}`" in text.split("**Product claims.**", 1)[1] for c in only_claimed)


@pytest.mark.parametrize("product", ["product", "productv2"])
@pytest.mark.parametrize("control", sorted(SECURITYHUB.rows))
def test_claiming_a_security_hub_control_reaches_no_aws_action_a_technique_does_not(control: str, product: str,
                                                                                   shipped: Matcher,
                                                                                   by_technique: set[str]) -> None:
    """A record claiming Security Hub's product runs, for a control id, only AWS actions a technique reaches."""
    claimed = _claiming("Security Hub", f"arn:aws:securityhub:us-east-1::{product}/aws/securityhub")
    claimed["compliance"] = {"control": control, "status": "Fail"}
    [event] = decode_doc(claimed)
    assert event.threat is not None
    assert event.threat.category == SECURITYHUB.rows[control].threat.category
    assert _acting(shipped, claimed) <= by_technique
    assert SECURITYHUB.categories() <= TECHNIQUES.categories()


def test_a_v2_event_gets_the_same_classification_as_its_bare_finding() -> None:
    """A finding under the `Findings Imported V2` envelope is classified exactly as the bare finding."""
    doc = orjson.loads(V2_FIXTURE.read_bytes())
    [relayed], [bare] = decode_doc(doc), decode_doc(copy.deepcopy(doc["detail"]["findings"][0]))
    assert relayed.threat == bare.threat
    assert relayed.threat is not None
