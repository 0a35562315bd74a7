"""A step never acts in responder's account on what an event says is in another: a finding about another account, or
a resource the step names by (or through) an ARN of another account, is refused (the `account` guard)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

import responder.actuators.aws  # registers the AWS actuators
import responder.actuators.notify  # noqa: F401  # registers the notify actuators
from responder.actuators.registry import registry
from responder.demo import eventbridge
from responder.engine.arnforms import Home
from responder.engine.guards import GuardPolicy, Guards, QuotaWindows
from responder.models import RawRecord
from responder.models.event import Resource, ResourceKind
from responder.models.runbook import Runbook
from responder.normalise import decode_doc
from tests.escalation_kit import paged, paging_kit, step_results
from tests.findings import guardduty_finding
from tests.guard_kit import event_naming, step_trips
from tests.kit import DEACTIVATE_STEPS, KEY, PAGE_ON_FAILURE, Kit, make_kit

OURS = "123456789012"
OTHER = "999999999999"
HOME = Home(account=OURS, region="us-east-1")
QUARANTINE = "aws.iam.quarantine_principal"
ROTATE = "aws.secretsmanager.rotate_secret"
ADMIN = "OrganizationAccountAccessRole"


def _account_trips(*args: object, **kw: object) -> list[tuple[str, bool]]:
    """The account guard trips (guard, hard) of a step, as `step_trips` gives them with nothing protected."""
    trips = step_trips([], *args, **kw)  # type: ignore[arg-type]
    return [(t.guard, t.hard) for t in trips if t.guard == "account"]


async def _send_member_finding(kit: Kit, finding_id: str) -> None:
    """Handle a GuardDuty finding about another account naming our user's key, and flush."""
    finding = guardduty_finding(KEY, "ml-training", finding_id=finding_id)
    finding["accountId"] = OTHER
    envelope = eventbridge(finding)
    envelope["account"] = OTHER
    assert kit.pipeline is not None
    await kit.pipeline.handle(RawRecord(topic="t", value=orjson.dumps(envelope)))
    await kit.engine.recorder.flush()


async def test_a_finding_about_another_account_does_not_act_on_our_user_of_the_same_name(tmp_path: Path) -> None:
    """A finding about another account is refused, no key of our same-named user touched, once our account is known."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS}, policy=GuardPolicy(home=HOME))
    await _send_member_finding(kit, "f-member")
    assert kit.iam.count("update_access_key") == 0
    tripped = kit.entries("guard.tripped")
    assert [(t["guard"], t["hard"]) for t in tripped] == [("account", True)]
    assert OTHER in tripped[0]["detail"]
    assert OURS in tripped[0]["detail"]


def test_a_finding_about_our_own_account_still_acts() -> None:
    """A finding about responder's own account, or naming no account, trips no account guard."""
    role = {"principal_type": "role", "principal_name": "app-worker"}
    assert _account_trips(QUARANTINE, role, event_naming(account=OURS), home=HOME) == []
    assert _account_trips(QUARANTINE, role, event_naming(account=None), home=HOME) == []
    assert _account_trips(QUARANTINE, role, event_naming(account=OTHER)) == []  # our account unknown: no claim to test


def test_a_step_naming_an_arn_in_another_account_is_refused() -> None:
    """A parameter ARN in another account than ours (or, ours unknown, the event's) is refused; ours passes."""
    theirs = {"secret_id": f"arn:aws:secretsmanager:us-east-1:{OTHER}:secret:prod/inference/db-AbCdEf"}
    ours = {"secret_id": f"arn:aws:secretsmanager:us-east-1:{OURS}:secret:prod/inference/db-AbCdEf"}
    assert _account_trips(ROTATE, theirs, event_naming(account=OURS)) == [("account", True)]
    assert _account_trips(ROTATE, theirs, event_naming(account=None), home=HOME) == [("account", True)]
    assert _account_trips(ROTATE, ours, event_naming(account=OURS), home=HOME) == []
    assert _account_trips(ROTATE, ours, event_naming(account=None)) == []


def test_a_role_a_cloudtrail_call_names_in_another_account_is_not_quarantined_here() -> None:
    """An AssumeRole of another account's role, logged in ours, does not quarantine our role of the same name."""
    record = {"eventVersion": "1.08", "eventTime": "2026-12-07T10:00:00Z", "eventSource": "sts.amazonaws.com",
              "eventName": "AssumeRole", "awsRegion": "us-east-1", "recipientAccountId": OURS,
              "eventID": "3f9a2c1e-0000-4000-8000-000000000001", "sourceIPAddress": "203.0.113.9",
              "userIdentity": {"type": "IAMUser", "userName": "ci-bot", "accountId": OURS,
                               "arn": f"arn:aws:iam::{OURS}:user/ci-bot", "accessKeyId": KEY},
              "requestParameters": {"roleArn": f"arn:aws:iam::{OTHER}:role/{ADMIN}", "roleSessionName": "x"}}
    [event] = decode_doc(record, "cloudtrail")
    role = event.first(ResourceKind.IAM_ROLE)
    assert role is not None
    assert role.id == ADMIN
    assert event.account == OURS
    given = {"principal_type": "role", "principal_name": role.id}
    for home in (HOME, Home()):
        assert _account_trips(QUARANTINE, given, event, home=home) == [("account", True)], home
    ours = event_naming(Resource(kind=ResourceKind.IAM_ROLE, id=ADMIN, arn=f"arn:aws:iam::{OURS}:role/{ADMIN}"),
                        account=OURS)
    assert _account_trips(QUARANTINE, given, ours, home=HOME) == []


def test_a_notification_about_another_account_goes_out() -> None:
    """A notify step touches no resource: a finding about another account still pages."""
    notify = registry.get("notify.kafka.publish_message")
    page = notify.params.model_validate({"topic": "responder.notifications", "title": "about another account"})
    rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                 "steps": [{"id": "page", "actuator": notify.name, "with": page.model_dump()}]})
    trips = asyncio.run(Guards(GuardPolicy(home=HOME)).check_step(
        rb, notify.name, notify.target(page), page.model_dump(mode="json"), event_naming(account=OTHER),
        QuotaWindows(), 0.0, notifies=notify.notifies))
    assert notify.notifies
    assert trips == []


async def test_an_account_refusal_is_recorded_refused_and_pages_on_call(tmp_path: Path) -> None:
    """A step refused by the account guard is `refused`, and its on_failure page carries the refusal to on-call."""
    kit = paging_kit(tmp_path, DEACTIVATE_STEPS + PAGE_ON_FAILURE, policy=GuardPolicy(home=HOME))
    await _send_member_finding(kit, "f-member-page")
    assert step_results(kit) == [("deactivate", "refused"), ("page.deactivate", "ok")]
    [fields] = paged(kit)
    assert OTHER in str(fields["error"])
    assert "aws_account_id" in str(fields["error"])
    assert kit.iam.count("update_access_key") == 0
    assert kit.entries("escalation.missed") == []
