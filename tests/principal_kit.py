"""Findings whose principal is a key of an IAM user or not (an assumed role, a root or federated user, an unnamed one)
as each source reports it, and what the page of a key whose owner is not named carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from responder.actuators import registry
from responder.engine.resolution import Resolved, resolve_step
from responder.models.event import Event
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.findings import rescore_ocsf, retype_ocsf

ROOT = Path(__file__).resolve().parents[1]  # the repository
# A principal's user name is an IAM user's only when its type says IAMUser (an IAM role's for AssumedRole): a
# FederatedUser's name is the session name its caller chose, Root is the account, and a missing type says nothing.
WRITE = "TTPs/Impact/Impact:S3-AnomalousBehavior.Write"
TRAINING_BUCKET = "arn:aws:s3:::acme-training-data-prod"
NOT_A_USER = ["FederatedUser", "Root", "AWSService", None]
EXAMPLES = ROOT / "runbooks/examples"
UNNAMED_PAGE = "access-key-compromise-unnamed-principal"
KEY = "AKIAEXAMPLEVICTIM001"
ASFF_TYPE = "TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"
# the principal name someone else chose (a federated session name, a forged finding) spelling a real IAM user's
NAMESAKE = "ml-training"


def _guardduty_write(user_type: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(
        (ROOT / "runbooks/examples/by-source/unauthorized-training-data-write.guardduty-s3-write.json").read_bytes())
    key = doc["resource"]["accessKeyDetails"]
    key["userName"] = "victim"
    key.pop("userType")
    if user_type is not None:
        key["userType"] = user_type
    return doc


def _asff_write(user_type: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(
        (ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    doc["Types"] = doc["FindingProviderFields"]["Types"] = [WRITE]
    [key] = [r for r in doc["Resources"] if r["Type"] == "AwsIamAccessKey"]
    key["Details"]["AwsIamAccessKey"] = {"PrincipalName": "victim", "PrincipalId": "AIDAEXAMPLEVICTIM0001"} | (
        {"PrincipalType": user_type} if user_type is not None else {})
    doc["Resources"].append({"Type": "AwsS3Bucket", "Id": TRAINING_BUCKET})
    return doc


def ocsf_write(user_type: str | None) -> dict[str, Any]:
    """The OCSF example as a write to the training bucket by a key of a principal of `user_type` (none: unsaid)."""
    doc: dict[str, Any] = orjson.loads(
        (ROOT / "runbooks/examples/by-source/cloudtrail-logging-stopped.ocsf.json").read_bytes())
    retype_ocsf(doc, [WRITE])
    doc["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {"PrincipalName": "victim"} | (
        {"PrincipalType": user_type} if user_type is not None else {})}).decode()
    doc["resources"].append({"type": "AwsS3Bucket", "uid": TRAINING_BUCKET})
    return doc


def page_fields(event: Event, matcher: Matcher, runbook: str) -> dict[str, Any]:
    """The `fields` of the single step of the notify-only `runbook` the event matches, resolved."""
    [match] = [m for m in matcher.match(event) if m.runbook.id == runbook]
    [step] = match.runbook.steps
    scope = {"event": event.view(), "steps": {},
             "incident": {"id": "inc-1", "group_key": event.incident_key, "runbook": runbook, "events": 1}}
    resolved = resolve_step(step, scope, registry)
    assert isinstance(resolved, Resolved), resolved
    fields: dict[str, Any] = resolved.params.model_dump(mode="json")["fields"]
    return fields


def example_doc(rel: str) -> dict[str, Any]:
    """The shipped example `rel` (under runbooks/examples/), parsed."""
    doc: dict[str, Any] = orjson.loads((EXAMPLES / rel).read_bytes())
    return doc


def guardduty_doc(user_type: str | None) -> dict[str, Any]:
    """GuardDuty's example naming `KEY` of `NAMESAKE`, the principal of `user_type` (none: unsaid)."""
    doc = example_doc("iam-credential-compromise.json")
    key = doc["resource"]["accessKeyDetails"]
    key.pop("userType")
    key |= {"accessKeyId": KEY, "userName": NAMESAKE} | ({"userType": user_type} if user_type else {})
    return doc


def _asff(user_type: str | None) -> dict[str, Any]:
    doc = example_doc("by-source/access-key-compromise.securityhub.json")
    [key] = [r for r in doc["Resources"] if r["Type"] == "AwsIamAccessKey"]
    key["Id"] = f"AWS::IAM::AccessKey:{KEY}"
    key["Details"]["AwsIamAccessKey"] = {"PrincipalName": NAMESAKE, "PrincipalId": "AIDAEXAMPLEVICTIM0001"} | (
        {"PrincipalType": user_type} if user_type else {})
    return doc


def _ocsf(user_type: str | None) -> dict[str, Any]:
    doc = example_doc("by-source/cloudtrail-logging-stopped.ocsf.json")
    retype_ocsf(doc, [ASFF_TYPE])
    rescore_ocsf(doc, 4, "High")
    doc["resources"][0]["uid"] = f"AWS::IAM::AccessKey:{KEY}"
    doc["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {"PrincipalName": NAMESAKE} | (
        {"PrincipalType": user_type} if user_type else {})}).decode()
    return doc


def splunk_doc(user_type: str | None) -> dict[str, Any]:
    """Splunk's example naming `KEY` of `NAMESAKE`, the principal of `user_type` (none: unsaid)."""
    doc = example_doc("access-key-compromise.json")
    doc["result"].pop("user_type", None)
    doc["result"] |= {"affectedEntities{}.entityValue": KEY, "user_name": NAMESAKE} | (
        {"user_type": user_type} if user_type else {})
    return doc


def _sentinel(user_type: str | None) -> dict[str, Any]:
    doc = example_doc("by-source/access-key-compromise.sentinel.json")
    details = {"AccessKeyId": [KEY], "RecipientAccountId": ["123456789012"], "SourceIpAddress": ["198.51.100.23"]} | (
        {"UserIdentityType": [user_type]} if user_type else {})
    [alert] = doc["object"]["properties"]["Alerts"]
    alert["properties"]["additionalData"]["Custom Details"] = orjson.dumps(details).decode()
    return doc


def source_event(source: str, user_type: str | None) -> Event:
    """The one event `source`'s document (`SOURCES`) decodes to for a principal of `user_type`."""
    [event] = decode_doc(SOURCES[source][0](user_type))
    assert event.source == source
    return event


def matched_ids(event: Event, matcher: Matcher) -> list[str]:
    """The ids of the runbooks `matcher` matches `event` with."""
    return [m.runbook.id for m in matcher.match(event)]


WRITES = [_guardduty_write, _asff_write, ocsf_write]
SOURCES: dict[str, tuple[Callable[[str | None], dict[str, Any]], str]] = {
    "guardduty": (guardduty_doc, "iam-credential-compromise"),
    "securityhub": (_asff, "access-key-compromise"),
    "ocsf": (_ocsf, "access-key-compromise"),
    "splunk": (splunk_doc, "access-key-compromise"),
    "sentinel": (_sentinel, "access-key-compromise"),
}
