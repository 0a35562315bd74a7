"""An AWS service principal writing training data for the account pages nobody; anything short of its form pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.normalise import decode_doc
from responder.normalise.registry import attribute_names, sources
from responder.rules.matcher import Matcher
from tests.principal_kit import ocsf_write

ROOT = Path(__file__).resolve().parents[2]
PAGE = "training-data-write-unnamed-principal"
SERVICES = ["sagemaker.amazonaws.com", "glue.amazonaws.com", "datasync.amazonaws.com", "sagemaker.amazonaws.com.cn"]
# what a service principal is not: AWS's internal caller, a look-alike suffix or prefix, a trailing newline (which `$`
# would let through), upper case, a bare domain, no value
NOT_A_SERVICE: list[Any] = ["AWS Internal", "sagemaker.amazonaws.com.attacker.example", "sagemaker-amazonaws.com",
                            "sagemaker.amazonaws.com\n", "SageMaker.amazonaws.com", "amazonaws.com", ".amazonaws.com",
                            "sagemaker.amazonaws.com ", "", None, ["sagemaker.amazonaws.com"]]


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


def _cloudtrail(identity: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/training-data-write-unnamed-principal.json")
                                       .read_bytes())
    doc["detail"]["userIdentity"] = identity
    return doc


def _matched(doc: dict[str, Any], matcher: Matcher) -> list[str]:
    return [m.runbook.id for event in decode_doc(doc) for m in matcher.match(event)]


def _service(invoked_by: Any) -> dict[str, Any]:
    return {"type": "AWSService"} | ({} if invoked_by is None else {"invokedBy": invoked_by})


@pytest.mark.parametrize("service", SERVICES)
def test_an_aws_service_principal_writing_for_the_account_pages_nobody(service: str, matcher: Matcher) -> None:
    """CloudTrail userIdentity.type AWSService with invokedBy `<service>.amazonaws.com` matches no runbook."""
    assert _matched(_cloudtrail(_service(service)), matcher) == []


@pytest.mark.parametrize("invoked_by", NOT_A_SERVICE, ids=repr)
def test_an_aws_service_type_without_an_exact_service_principal_still_pages(invoked_by: Any, matcher: Matcher) -> None:
    """AWSService with invokedBy 'AWS Internal', none, or a look-alike of a service principal pages on-call."""
    assert _matched(_cloudtrail(_service(invoked_by)), matcher) == [PAGE]


@pytest.mark.parametrize("identity", [
    {"type": "AWSService", "invokedBy": "sagemaker.amazonaws.com", "accessKeyId": "AKIAEXAMPLESERVICE01"},
    {"type": "FederatedUser", "invokedBy": "sagemaker.amazonaws.com", "accountId": "123456789012",
     "arn": "arn:aws:sts::123456789012:federated-user/sagemaker", "accessKeyId": "ASIAEXAMPLEFEDERATE1"},
    {"type": "Root", "invokedBy": "sagemaker.amazonaws.com", "arn": "arn:aws:iam::123456789012:root",
     "accountId": "123456789012"},
    {"invokedBy": "sagemaker.amazonaws.com", "userName": "contractor-sync"},
    {"type": "awsservice", "invokedBy": "sagemaker.amazonaws.com"},
], ids=["service-with-a-key", "federated", "root", "untyped", "type-lower-case"])
def test_a_service_principal_named_beside_another_principal_still_pages(
        identity: dict[str, Any], matcher: Matcher) -> None:
    """invokedBy alone rules nothing out: a key, a root, federated or untyped caller still pages on-call."""
    assert _matched(_cloudtrail(identity), matcher) == [PAGE]


@pytest.mark.parametrize(("user_type", "invoked_by"), [
    ("AWSService", "glue.amazonaws.com"),
    ("AWSService", "AWS Internal"),
    ("AWSService", None),
    ("FederatedUser", "glue.amazonaws.com"),
])
def test_an_ocsf_finding_s_actor_never_rules_a_write_out(
        user_type: str, invoked_by: str | None, matcher: Matcher) -> None:
    """An OCSF write finding whose actor is invoked by a service principal still pages."""
    doc = ocsf_write(None)
    doc["resources"][0].pop("uid", None)  # no access key: a service principal's call carries none
    doc["resources"][0].pop("data", None)
    doc["actor"] = {"user": {"type": user_type}} | ({"invoked_by": invoked_by} if invoked_by else {})
    [event] = decode_doc(doc)
    assert event.first("access_key") is None, event.resources
    assert (event.attributes.get("identity_type"), event.attributes.get("invoked_by")) == (None, None)
    assert _matched(doc, matcher) == [PAGE]


def test_ocsf_api_activity_keeps_the_actor_s_type_and_invoked_by() -> None:
    """Security Lake's OCSF API Activity copy of a CloudTrail call keeps actor.user.type and actor.invoked_by."""
    doc = {"class_uid": 6003, "activity_id": 1, "time": 1733390000000, "metadata": {"version": "1.1.0"},
           "api": {"operation": "PutObject", "service": {"name": "s3.amazonaws.com"}},
           "actor": {"user": {"type": "AWSService"}, "invoked_by": "glue.amazonaws.com"},
           "resources": [{"type": "AWS::S3::Bucket", "uid": "acme-training-data-prod"}]}
    [event] = decode_doc(doc)
    assert (event.attributes["identity_type"], event.attributes["invoked_by"]) == ("AWSService", "glue.amazonaws.com")


def test_only_cloudtrail_and_ocsf_activity_can_name_a_service_principal() -> None:
    """Only cloudtrail and ocsf decoders declare identity_type or invoked_by, so SIEM copies of service writes page."""
    naming = {s for s in sources() if {"identity_type", "invoked_by"} & attribute_names(s)}
    assert naming == {"cloudtrail", "ocsf"}


@pytest.mark.parametrize("domain", ["sagemaker.amazonaws.com", "ec2-203-0-113-5.compute-1.amazonaws.com"])
def test_a_guardduty_write_by_an_aws_service_domain_still_pages(domain: str, matcher: Matcher) -> None:
    """A GuardDuty write by an `AWSService` Domain caller under amazonaws.com is not a service principal; it pages."""
    doc: dict[str, Any] = orjson.loads(
        (ROOT / "runbooks/examples/by-source/unauthorized-training-data-write.guardduty-s3-write.json").read_bytes())
    finding = doc.get("detail", doc)
    finding["resource"]["accessKeyDetails"] = {"userType": "AWSService", "userName": "sagemaker.amazonaws.com",
                                               "principalId": "AWSService"}
    finding["service"]["action"]["awsApiCallAction"]["domainDetails"] = {"domain": domain}
    assert _matched(doc, matcher) == [PAGE]
