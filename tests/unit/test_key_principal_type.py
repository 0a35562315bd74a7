"""A compromised access key is deactivated and its user's sessions revoked only when its principal is an IAM user."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.engine.resolution import resolve_step
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests import principal_kit
from tests.findings import rescore_ocsf, retype_ocsf
from tests.principal_kit import (
    ASFF_TYPE,
    KEY,
    NAMESAKE,
    ROOT,
    SOURCES,
    UNNAMED_PAGE,
    example_doc,
    guardduty_doc,
    matched_ids,
    page_fields,
    source_event,
)

NOT_AN_IAM_USER = ["Root", "FederatedUser", "AssumedRole", "AWSService", None]


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_an_iam_user_s_key_is_contained(source: str, matcher: Matcher) -> None:
    """A key typed IAMUser, from every source, matches its containing runbook only, acting on the key's user."""
    event = source_event(source, "IAMUser")
    key = event.first("access_key")
    assert key is not None
    assert (key.id, key.attributes["user_name"], key.attributes["user_type"]) == (KEY, NAMESAKE, "IAMUser")
    assert matched_ids(event, matcher) == [SOURCES[source][1]]


# an untyped key from a source other than GuardDuty is contained since access-key-compromise v2
# (tests/unit/test_untyped_key_containment.py)
PAGED = [(source, user_type) for source in sorted(SOURCES) for user_type in NOT_AN_IAM_USER
         if user_type is not None or source == "guardduty"]


@pytest.mark.parametrize(("source", "user_type"), PAGED)
def test_a_key_of_another_principal_pages_and_touches_no_iam_user(
        source: str, user_type: str | None, matcher: Matcher) -> None:
    """A non-IAM-user principal's key named like an IAM user matches only the paging runbook, naming key and type."""
    event = source_event(source, user_type)
    assert matched_ids(event, matcher) == [UNNAMED_PAGE]
    fields = page_fields(event, matcher, UNNAMED_PAGE)
    assert fields["access_key"]["id"] == KEY
    assert fields["access_key"]["attributes"].get("user_type") == user_type
    assert fields["access_key"]["attributes"]["user_name"] == NAMESAKE
    assert fields["incident_key"] == event.incident_key
    assert event.account is not None
    assert fields["incident_key"].startswith(f"{event.account}:")
    assert "root" in fields["what_to_do"].lower()
    assert "federated" in fields["what_to_do"].lower()


def test_the_paging_runbook_changes_nothing() -> None:
    """The paging runbook has no actuator but notifications: there is no principal the finding vouches for."""
    [book] = [rb for rb in load_runbooks(ROOT / "runbooks", registry) if rb.id == UNNAMED_PAGE]
    assert {s.actuator for s in (*book.steps, *book.on_failure)} == {"notify.kafka.publish_message"}


def test_a_logging_stop_by_a_non_iam_user_s_key_deactivates_nothing(matcher: Matcher) -> None:
    """cloudtrail-logging-stopped deactivates the caller's key only when its principal is an IAM user."""
    doc = example_doc("by-source/cloudtrail-logging-stopped.ocsf.json")
    doc["resources"][0]["uid"] = f"AWS::IAM::AccessKey:{KEY}"
    steps: dict[str | None, str] = {}
    for user_type in ("IAMUser", "Root", None):
        doc["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {"PrincipalName": NAMESAKE} | (
            {"PrincipalType": user_type} if user_type else {})}).decode()
        [event] = decode_doc(doc)
        [match] = [m for m in matcher.match(event) if m.runbook.id == "cloudtrail-logging-stopped"]
        [step] = [s for s in match.runbook.steps if s.id == "deactivate-key"]
        scope = {"event": event.view(), "steps": {}, "incident": {"id": "inc-1", "events": 1}}
        steps[user_type] = type(resolve_step(step, scope, registry)).__name__
    assert steps == {"IAMUser": "Resolved", "Root": "NotNow", None: "NotNow"}


def _sentinel_bedrock(user_type: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "tests/fixtures/events/sentinel_alert_entities.json").read_bytes())
    props = doc["value"][0]["properties"]
    props["techniques"] = ["T1496.004"]  # Bedrock abuse: llmjacking, which acts on event.resource.iam_user.name
    props["customDetails"] = {"UserIdentityAccessKeyId": [KEY]} | (
        {"UserIdentityType": [user_type]} if user_type else {})
    props["entities"][0]["properties"]["accountName"] = NAMESAKE
    return doc


@pytest.mark.parametrize("user_type", ["IAMUser", *NOT_AN_IAM_USER])
def test_a_sentinel_account_is_an_iam_user_only_when_typed_so(user_type: str | None, matcher: Matcher) -> None:
    """Sentinel's Account entity is an iam_user only for UserIdentityType IAMUser, so llmjacking denies no other."""
    [event] = decode_doc(_sentinel_bedrock(user_type))
    user = event.first("iam_user")
    assert (user.id if user is not None else None) == (NAMESAKE if user_type == "IAMUser" else None)
    assert ("llmjacking" in matched_ids(event, matcher)) is (user_type == "IAMUser")


def _ocsf_actor(user_type: str | None, types: list[str] | None = None) -> dict[str, Any]:
    doc = example_doc("by-source/cloudtrail-logging-stopped.ocsf.json")
    doc["resources"] = [r for r in doc["resources"] if "AccessKey" not in str(r)]
    doc["actor"] = {"user": {"name": NAMESAKE, "credential_uid": KEY} | ({"type": user_type} if user_type else {})}
    if types:
        retype_ocsf(doc, types)
        rescore_ocsf(doc, 4, "High")
    return doc


@pytest.mark.parametrize("user_type", ["IAMUser", *NOT_AN_IAM_USER])
def test_an_ocsf_actor_s_key_carries_the_actor_s_type(user_type: str | None, matcher: Matcher) -> None:
    """An OCSF actor.user's key is typed by actor.user.type: IAM user or untyped keys contained, others paged."""
    [event] = decode_doc(_ocsf_actor(user_type, [ASFF_TYPE]))
    key = event.first("access_key")
    assert key is not None
    assert (key.id, key.attributes.get("user_type")) == (KEY, user_type)
    assert matched_ids(event, matcher) == ["access-key-compromise" if user_type in ("IAMUser", None) else UNNAMED_PAGE]
    [event] = decode_doc(_ocsf_actor(user_type))
    [match] = [m for m in matcher.match(event) if m.runbook.id == "cloudtrail-logging-stopped"]
    [step] = [s for s in match.runbook.steps if s.id == "deactivate-key"]
    scope = {"event": event.view(), "steps": {}, "incident": {"id": "inc-1", "events": 1}}
    assert type(resolve_step(step, scope, registry)).__name__ == ("Resolved" if user_type == "IAMUser" else "NotNow")


@pytest.mark.parametrize("user_type", ["IAMUser", *NOT_AN_IAM_USER])
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_compromised_session_key_pages_on_call(
        source: str, user_type: str | None, matcher: Matcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary ASIA… key that no runbook contains matches only the paging runbook, never a containing one."""
    monkeypatch.setattr(principal_kit, "KEY", "ASIAEXAMPLEVICTIM001")  # what its documents name
    event = source_event(source, user_type)
    key = event.first("access_key")
    assert key is not None
    assert key.attributes["credential"] == "temporary"
    assert matched_ids(event, matcher) == [UNNAMED_PAGE]


def test_a_guardduty_iam_user_key_without_a_user_name_pages(matcher: Matcher) -> None:
    """A GuardDuty finding on an IAMUser's AKIA key that names no user cannot be contained: it pages on-call."""
    doc = guardduty_doc("IAMUser")
    doc["resource"]["accessKeyDetails"].pop("userName")
    assert matched_ids(decode_doc(doc)[0], matcher) == [UNNAMED_PAGE]
