"""Two resources of one kind and name in different accounts are both kept, and the account guard tells them apart."""

from __future__ import annotations

from typing import Any

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.engine.arnforms import Home
from responder.models.event import Resource, ResourceKind
from responder.normalise import decode_doc
from responder.normalise.resources import compact
from tests.guard_kit import step_trips

OURS = "123456789012"
OTHER = "999999999999"
REVOKE = "aws.iam.revoke_sessions"
DEPLOYER = {"principal_type": "role", "principal_name": "deployer"}


def _account_trips(*args: Any, **kw: Any) -> list[tuple[str, bool]]:
    """The account guard trips (guard, hard) of a step, nothing protected."""
    return [(t.guard, t.hard) for t in step_trips([], *args, **kw) if t.guard == "account"]


def _assume_role(role_arn: str) -> dict[str, Any]:
    """A CloudTrail AssumeRole logged in our account by another account's `deployer` session, of `role_arn`."""
    return {"eventVersion": "1.08", "eventTime": "2026-12-07T10:00:00Z", "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole", "awsRegion": "us-east-1", "recipientAccountId": OURS,
            "eventID": "3f9a2c1e-0000-4000-8000-000000000039", "sourceIPAddress": "203.0.113.9",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:ci", "accountId": OTHER,
                             "arn": f"arn:aws:sts::{OTHER}:assumed-role/deployer/ci",
                             "accessKeyId": "ASIAEXAMPLE000000039",
                             "sessionContext": {"sessionIssuer": {
                                 "type": "Role", "principalId": "AROAEXAMPLE", "userName": "deployer",
                                 "arn": f"arn:aws:iam::{OTHER}:role/deployer", "accountId": OTHER}}},
            "requestParameters": {"roleArn": role_arn, "roleSessionName": "ci"}}


def test_a_foreign_caller_role_listed_first_does_not_hide_our_namesake() -> None:
    """A partner's `deployer` assuming our `deployer`: both roles kept, and revoking our role's sessions acts."""
    [event] = decode_doc(_assume_role(f"arn:aws:iam::{OURS}:role/deployer"), "cloudtrail")
    roles = [r.arn for r in event.resources if r.kind is ResourceKind.IAM_ROLE]
    assert roles == [f"arn:aws:iam::{OTHER}:role/deployer", f"arn:aws:iam::{OURS}:role/deployer"]
    assert event.incident_key == f"{OURS}:access_key:ASIAEXAMPLE000000039"
    for home in (Home(account=OURS), Home()):
        assert _account_trips(REVOKE, DEPLOYER, event, home=home) == [], home


def test_a_foreign_namesake_still_refuses_a_bare_name_ours_does_not_give_by_arn() -> None:
    """The partner's `deployer` assuming another role of ours: a step on role `deployer` is still refused."""
    [event] = decode_doc(_assume_role(f"arn:aws:iam::{OURS}:role/release"), "cloudtrail")
    for home in (Home(account=OURS), Home()):
        assert _account_trips(REVOKE, DEPLOYER, event, home=home) == [("account", True)], home


def test_compact_drops_a_bare_or_same_arn_repeat_and_keeps_namesakes_of_other_arns() -> None:
    """A repeat with no ARN or the same ARN is dropped; a namesake of another ARN is kept after the first."""
    theirs = Resource(kind=ResourceKind.IAM_ROLE, id="deployer", arn=f"arn:aws:iam::{OTHER}:role/deployer")
    ours = Resource(kind=ResourceKind.IAM_ROLE, id="deployer", arn=f"arn:aws:iam::{OURS}:role/deployer")
    bare = Resource(kind=ResourceKind.IAM_ROLE, id="deployer")
    user = Resource(kind=ResourceKind.IAM_USER, id="deployer")
    assert compact([theirs, None, bare, ours, theirs, user, ours]) == (theirs, ours, user)
    assert compact([bare, theirs, bare, ours]) == (bare, theirs, ours)
