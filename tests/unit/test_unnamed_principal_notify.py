"""A training-data write by a principal the event cannot name as an IAM user or role still reaches a human."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.engine.resolution import Resolved, resolve_step
from responder.models.event import Event
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.principal_kit import NOT_A_USER, WRITES, page_fields

ROOT = Path(__file__).resolve().parents[2]
CONTAIN, PAGE = "unauthorized-training-data-write", "training-data-write-unnamed-principal"
CLOUDTRAIL_IDENTITIES: dict[str, dict[str, Any]] = {
    "root": {"type": "Root", "arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012",
             "accessKeyId": "AKIAEXAMPLEROOTKEY01"},
    "federated": {"type": "FederatedUser", "arn": "arn:aws:sts::123456789012:federated-user/dataset-ingest",
                  "accountId": "123456789012", "accessKeyId": "ASIAEXAMPLEFEDERATE1"},
    # AWS's internal caller is no service principal; one (`datasync.amazonaws.com`) pages nobody since version 2
    # (tests/unit/test_service_principal_writes.py)
    "aws-service": {"type": "AWSService", "invokedBy": "AWS Internal"},
    "untyped": {"principalId": "AIDAEXAMPLE", "userName": "contractor-sync", "accessKeyId": "AKIAEXAMPLEUNTYPED1"},
}


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


def _cloudtrail_write(identity: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/unauthorized-training-data-write.json").read_bytes())
    doc["detail"]["userIdentity"] = identity
    return doc


def _matched(event: Event, matcher: Matcher) -> list[str]:
    return [m.runbook.id for m in matcher.match(event)]


@pytest.mark.parametrize("user_type", NOT_A_USER)
@pytest.mark.parametrize("build", WRITES, ids=lambda f: f.__name__.strip("_"))
def test_an_unnamed_writer_pages_on_call_with_its_key_and_type(
        build: Callable[[str | None], dict[str, Any]], user_type: str | None, matcher: Matcher) -> None:
    """A write by an unnamed principal's key matches only the paging runbook, naming the access key and its type."""
    [event] = decode_doc(build(user_type))
    assert _matched(event, matcher) == [PAGE]
    fields = page_fields(event, matcher, PAGE)
    [key] = [r for r in fields["principal"] if r["kind"] == "access_key"]
    assert key["attributes"].get("user_type") == user_type
    assert key["attributes"]["user_name"] == "victim"
    assert fields["bucket"] == "acme-training-data-prod"


@pytest.mark.parametrize("name", sorted(CLOUDTRAIL_IDENTITIES))
def test_an_unnamed_cloudtrail_writer_pages_on_call(name: str, matcher: Matcher) -> None:
    """A CloudTrail PutObject by Root, FederatedUser, untyped or non-service-principal AWSService pages on-call only."""
    [event] = decode_doc(_cloudtrail_write(CLOUDTRAIL_IDENTITIES[name]))
    assert _matched(event, matcher) == [PAGE]
    fields = page_fields(event, matcher, PAGE)
    kinds = {r["kind"] for r in fields["principal"]}
    assert "iam_user" not in kinds
    if name == "root":
        [account] = [r for r in fields["principal"] if r["kind"] == "account"]
        assert account["attributes"] == {"root_identity": True}


@pytest.mark.parametrize("user_type", ["IAMUser", "AssumedRole"])
@pytest.mark.parametrize("build", WRITES, ids=lambda f: f.__name__.strip("_"))
def test_a_named_writer_is_contained_and_not_paged_twice(
        build: Callable[[str | None], dict[str, Any]], user_type: str, matcher: Matcher) -> None:
    """An IAMUser/AssumedRole writer matches the containing runbook only, never the paging one."""
    [event] = decode_doc(build(user_type))
    assert _matched(event, matcher) == [CONTAIN]


def test_the_paging_runbook_watches_the_same_buckets_as_the_containing_one(matcher: Matcher) -> None:
    """Both runbooks carry the same training-data bucket pattern, so no bucket is watched by only one."""
    books = {rb.id: rb for rb in load_runbooks(ROOT / "runbooks", registry)}
    patterns = [c.value for rb in (books[CONTAIN], books[PAGE]) for c in rb.trigger.conditions
                if getattr(c, "field", None) == "event.resource.bucket.id"]
    assert len(patterns) == 2
    assert patterns[0] == patterns[1]


def _bedrock(identity: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/llmjacking.json").read_bytes())
    if identity is not None:
        doc["userIdentity"] = identity
    return doc


@pytest.mark.parametrize("name", ["root", "untyped"])
def test_bedrock_use_by_an_unnamed_principal_s_key_pages_on_call(name: str, matcher: Matcher) -> None:
    """Bedrock enablement with a root or untyped long-term (AKIA) key from outside the ranges pages on-call only."""
    [event] = decode_doc(_bedrock(CLOUDTRAIL_IDENTITIES[name]))
    assert _matched(event, matcher) == ["llmjacking-unnamed-principal"]
    [match] = matcher.match(event)
    [step] = match.runbook.steps
    scope = {"event": event.view(), "steps": {}, "incident": {"id": "inc-1", "events": 1}}
    resolved = resolve_step(step, scope, registry)
    assert isinstance(resolved, Resolved), resolved
    fields = resolved.params.model_dump(mode="json")["fields"]
    assert fields["access_key"] == CLOUDTRAIL_IDENTITIES[name]["accessKeyId"]
    [key] = [r for r in fields["principal"] if r["kind"] == "access_key"]
    assert key["attributes"].get("user_type") == CLOUDTRAIL_IDENTITIES[name].get("type")


def test_bedrock_use_by_an_iam_user_is_contained_not_paged(matcher: Matcher) -> None:
    """The IAM user's key (llmjacking's own example) matches llmjacking only; from inside the ranges, nothing."""
    assert _matched(decode_doc(_bedrock(None))[0], matcher) == ["llmjacking"]
    inside = _bedrock(CLOUDTRAIL_IDENTITIES["root"])
    inside["sourceIPAddress"] = "10.1.2.3"
    assert _matched(decode_doc(inside)[0], matcher) == []


def _datadog_bedrock(arn: str | None, key: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(
        (ROOT / "runbooks/examples/by-source/training-data-bucket-public.datadog.json").read_bytes())
    rule = doc["detail"]["meta"]["signal"]["rule"]
    rule["name"] = "AWS Bedrock model invoked from an unusual address"
    rule["group_by_fields"] = {"@userIdentity.accessKeyId": key, "@network.client.ip": "203.0.113.5"} | (
        {"@userIdentity.arn": arn} if arn else {})
    return doc


@pytest.mark.parametrize(("arn", "key"), [
    ("arn:aws:iam::671642278147:user/alice", "AKIAEXAMPLEVICTIM001"),
    ("arn:aws:iam::671642278147:user/alice", "ASIAEXAMPLEVICTIM001"),
    ("arn:aws:sts::671642278147:assumed-role/inference/s", "ASIAEXAMPLEVICTIM001"),
    ("arn:aws:iam::671642278147:root", "AKIAEXAMPLEVICTIM001"),
    (None, "AKIAEXAMPLEVICTIM001"),
], ids=["user-arn-akia", "user-arn-asia", "role", "root", "untyped"])
def test_every_bedrock_abuse_llmjacking_cannot_contain_pages(arn: str | None, key: str, matcher: Matcher) -> None:
    """Every Bedrock alert llmjacking cannot contain pages on-call, the two runbooks taking each exactly once."""
    [event] = decode_doc(_datadog_bedrock(arn, key))
    assert event.threat is not None
    assert event.threat.category.value == "llmjacking"
    assert _matched(event, matcher) == ["llmjacking-unnamed-principal"]
