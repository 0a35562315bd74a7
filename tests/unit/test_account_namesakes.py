"""A foreign caller's role listed first is the role an event names: a step on its name is refused, even when the
request names our role of that name by its ARN (the caller chooses that ARN)."""

from __future__ import annotations

from typing import Any

import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.actuators.registry import registry
from responder.engine.arnforms import Home
from responder.engine.resolution import Invalid, resolve_step
from responder.engine.templating import render
from responder.models.event import Resource, ResourceKind
from responder.models.runbook import Step
from responder.normalise import decode_doc
from responder.normalise.resources import compact
from tests.guard_kit import step_trips

OURS = "123456789012"
OTHER = "999999999999"
CALLER_STEPS = ("aws.iam.quarantine_principal", "aws.iam.revoke_sessions")


def _account_trips(*args: Any, **kw: Any) -> list[tuple[str, bool]]:
    """The account guard trips (guard, hard) of a step, nothing protected."""
    return [(t.guard, t.hard) for t in step_trips([], *args, **kw) if t.guard == "account"]


def _assume_role(role_arn: str, caller: str = "prod-admin") -> dict[str, Any]:
    """A denied CloudTrail AssumeRole logged in our account by another account's `caller` session, of `role_arn`."""
    return {"eventVersion": "1.08", "eventTime": "2026-12-07T10:00:00Z", "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole", "awsRegion": "us-east-1", "recipientAccountId": OURS,
            "eventID": "3f9a2c1e-0000-4000-8000-000000000039", "sourceIPAddress": "203.0.113.9",
            "errorCode": "AccessDenied",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:atk", "accountId": OTHER,
                             "arn": f"arn:aws:sts::{OTHER}:assumed-role/{caller}/atk",
                             "accessKeyId": "ASIAEXAMPLE000000039",
                             "sessionContext": {"sessionIssuer": {
                                 "type": "Role", "principalId": "AROAEXAMPLE", "userName": caller,
                                 "arn": f"arn:aws:iam::{OTHER}:role/{caller}", "accountId": OTHER}}},
            "requestParameters": {"roleArn": role_arn, "roleSessionName": "atk"}}


@pytest.mark.parametrize("actuator", CALLER_STEPS)
def test_a_step_on_the_rendered_caller_role_is_refused_though_the_request_names_ours(actuator: str) -> None:
    """Foreign `prod-admin` listed first, our `prod-admin` as roleArn: `${event.resource.iam_role.id}` is refused."""
    [event] = decode_doc(_assume_role(f"arn:aws:iam::{OURS}:role/prod-admin"), "cloudtrail")
    assert [r.arn for r in event.resources if r.kind is ResourceKind.IAM_ROLE] == [
        f"arn:aws:iam::{OTHER}:role/prod-admin"]
    name = render("${event.resource.iam_role.id}", {"event": event.view()})
    assert name == "prod-admin"
    given = {"principal_type": "role", "principal_name": name}
    for home in (Home(account=OURS), Home()):
        assert _account_trips(actuator, given, event, home=home) == [("account", True)], home


def test_a_foreign_namesake_refuses_a_bare_name_when_the_request_names_another_role_of_ours() -> None:
    """The foreign `prod-admin` assuming our role `release`: a step on role `prod-admin` is refused."""
    [event] = decode_doc(_assume_role(f"arn:aws:iam::{OURS}:role/release"), "cloudtrail")
    given = {"principal_type": "role", "principal_name": "prod-admin"}
    for home in (Home(account=OURS), Home()):
        assert _account_trips("aws.iam.quarantine_principal", given, event, home=home) == [("account", True)], home


def test_compact_keeps_the_first_resource_of_a_kind_and_id_whatever_the_later_ones_arns() -> None:
    """A later resource of a kind and id already listed is dropped, even with another ARN; another kind is kept."""
    theirs = Resource(kind=ResourceKind.IAM_ROLE, id="prod-admin", arn=f"arn:aws:iam::{OTHER}:role/prod-admin")
    ours = Resource(kind=ResourceKind.IAM_ROLE, id="prod-admin", arn=f"arn:aws:iam::{OURS}:role/prod-admin")
    bare = Resource(kind=ResourceKind.IAM_ROLE, id="prod-admin")
    user = Resource(kind=ResourceKind.IAM_USER, id="prod-admin")
    assert compact([theirs, None, bare, ours, theirs, user, ours]) == (theirs, user)
    assert compact([bare, theirs, ours]) == (bare,)


def test_our_role_the_request_names_by_arn_is_acted_on_when_no_foreign_role_shares_its_name() -> None:
    """A foreign `ci` assuming our `deployer`: the event gives ours by ARN, and a step on role `deployer` acts."""
    [event] = decode_doc(_assume_role(f"arn:aws:iam::{OURS}:role/deployer", caller="ci"), "cloudtrail")
    given = {"principal_type": "role", "principal_name": "deployer"}
    for home in (Home(account=OURS), Home()):
        assert _account_trips("aws.iam.revoke_sessions", given, event, home=home) == [], home


@pytest.mark.parametrize("actuator", CALLER_STEPS)
def test_an_iam_step_takes_a_role_by_name_never_by_arn(actuator: str) -> None:
    """`principal_name` is an IAM name: a runbook cannot name the assumed role by its ARN instead (docs/security.md)."""
    step = Step.model_validate({"id": "s", "actuator": actuator, "with": {
        "principal_type": "role", "principal_name": f"arn:aws:iam::{OURS}:role/prod-admin"}})
    resolved = resolve_step(step, {"event": {}}, registry)
    assert isinstance(resolved, Invalid), resolved
    assert "principal_name" in resolved.error
