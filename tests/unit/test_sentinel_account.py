"""A Sentinel alert's `event.account` is the AWS account it names, never the Azure subscription it came through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.engine.arnforms import Home
from responder.engine.templating import render
from responder.models.event import Event
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.guard_kit import step_trips

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"  # the fixture's, in its alert id
KEY = "AKIAEXAMPLEKEY000009"


def _alert(**details: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "tests/fixtures/events/sentinel_alert_entities.json").read_bytes())
    doc["value"][0]["properties"]["customDetails"].update(details)
    return doc


@pytest.mark.parametrize("name", ["RecipientAccountId", "AwsAccountId", "UserIdentityAccountId"])
def test_a_sentinel_alert_naming_an_aws_account_is_about_that_account(name: str) -> None:
    """A Sentinel alert's AWS account is `event.account`, the subscription kept as `attributes.azure_subscription`."""
    [event] = decode_doc(_alert(**{name: ["123456789012"]}))
    assert (event.account, event.cloud) == ("123456789012", "aws")
    assert event.attributes["azure_subscription"] == SUBSCRIPTION
    assert event.incident_key == f"123456789012:access_key:{KEY}"


def test_the_account_that_logged_the_call_wins_over_the_caller_s() -> None:
    """RecipientAccountId (the finding account GuardDuty and Security Hub report) is read before the caller's."""
    [event] = decode_doc(_alert(UserIdentityAccountId=["111122223333"], RecipientAccountId=["444455556666"]))
    assert event.account == "444455556666"


@pytest.mark.parametrize("value", [None, ["12345"], ["arn:aws:iam::123456789012:root"], [SUBSCRIPTION], [True], {},
                                   ["\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0661\u0662\u0663"],
                                   ["\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10\uff11\uff12"]])
def test_a_sentinel_alert_naming_no_aws_account_has_none(value: Any) -> None:
    """A Sentinel alert without a 12-digit ASCII AWS account names no account, never the Azure subscription."""
    [event] = decode_doc(_alert(**({} if value is None else {"RecipientAccountId": value})))
    assert (event.account, event.cloud) == (None, "azure")
    assert event.attributes["azure_subscription"] == SUBSCRIPTION
    assert event.incident_key == f"-:access_key:{KEY}"


@pytest.mark.parametrize("user_type", ["IAMUser", None])
def test_a_sentinel_bedrock_alert_without_an_aws_account_is_grouped(user_type: str | None,
                                                                   runbooks_dir: Path) -> None:
    """A Sentinel Bedrock alert naming no AWS account is grouped by its key, never by the subscription."""
    doc = _alert()
    props = doc["value"][0]["properties"]
    props["techniques"] = ["T1496.004"]
    props["customDetails"] = {"UserIdentityAccessKeyId": [KEY]} | ({"UserIdentityType": [user_type]} if user_type
                                                                   else {})
    [event] = decode_doc(doc)
    matches = Matcher(load_runbooks(runbooks_dir, registry)).match(event)
    assert [m.runbook.id for m in matches] == ["llmjacking" if user_type else "llmjacking-unnamed-principal"]
    key = str(render(matches[0].runbook.group_by, {"event": event.view()}))
    assert KEY in key
    assert SUBSCRIPTION not in key


OURS = "123456789012"
OTHER = "999999999999"
CALLER_STEPS = (("aws.iam.quarantine_principal", {"principal_type": "user", "principal_name": "build-bot"}),
                ("aws.iam.deactivate_access_key", {"user_name": "build-bot", "access_key_id": KEY}))


def _account_trips(actuator: str, given: dict[str, Any], event: Event, home: Home) -> list[tuple[str, bool]]:
    """The account guard trips (guard, hard) of a step, nothing protected."""
    return [(t.guard, t.hard) for t in step_trips([], actuator, given, event, home=home) if t.guard == "account"]


def test_a_callers_account_alone_is_the_events_and_a_foreign_callers_user_is_refused() -> None:
    """Only `UserIdentityAccountId` named: the event is the caller's account, so another account's caller is refused."""
    [event] = decode_doc(_alert(UserIdentityAccountId=[OTHER]))
    assert event.account == OTHER
    for actuator, given in CALLER_STEPS:
        assert _account_trips(actuator, given, event, Home(account=OURS)) == [("account", True)], actuator


@pytest.mark.parametrize("caller", [{}, {"UserIdentityArn": [f"arn:aws:iam::{OTHER}:user/ci/build-bot"]}])
def test_a_foreign_caller_into_our_account_is_not_acted_on_as_our_namesake(caller: dict[str, Any]) -> None:
    """Our trail logged another account's user: the event is ours, but a step on the caller's user or key is refused."""
    [event] = decode_doc(_alert(RecipientAccountId=[OURS], UserIdentityAccountId=[OTHER], **caller))
    assert event.account == OURS
    assert event.incident_key == f"{OURS}:access_key:{KEY}"
    for home in (Home(account=OURS), Home()):
        for actuator, given in CALLER_STEPS:
            assert _account_trips(actuator, given, event, home) == [("account", True)], (actuator, home)


def test_a_caller_of_our_own_account_is_acted_on() -> None:
    """Our trail logged our own user (`UserIdentityAccountId` ours, or its ARN ours): its steps are not refused."""
    for caller in ({"UserIdentityAccountId": [OURS]}, {"UserIdentityArn": [f"arn:aws:iam::{OURS}:user/build-bot"]}):
        [event] = decode_doc(_alert(RecipientAccountId=[OURS], **caller))
        for actuator, given in CALLER_STEPS:
            assert _account_trips(actuator, given, event, Home(account=OURS)) == [], (actuator, caller)


def _caller_arns(event: Event) -> list[tuple[str, str | None]]:
    """The (kind, ARN) of the caller's access key and IAM user."""
    return [(r.kind.value, r.arn) for r in event.resources if r.kind.value in ("access_key", "iam_user")]


@pytest.mark.parametrize("user_type", ["IAMUser", "AssumedRole"])
@pytest.mark.parametrize(("arn_in", "stated"), [(OURS, OTHER), (OTHER, OURS)])
def test_a_given_arn_and_account_id_that_disagree_keep_the_caller_foreign(user_type: str, arn_in: str,
                                                                          stated: str) -> None:
    """`UserIdentityArn` and `UserIdentityAccountId` in different accounts: the caller is the foreign one, refused."""
    arn = (f"arn:aws:iam::{arn_in}:user/build-bot" if user_type == "IAMUser"
           else f"arn:aws:sts::{arn_in}:assumed-role/build-bot/s")
    [event] = decode_doc(_alert(RecipientAccountId=[OURS], UserIdentityAccountId=[stated], UserIdentityArn=[arn],
                                UserIdentityType=[user_type]))
    assert {a.split(":")[4] for _, a in _caller_arns(event) if a} == {OTHER}, _caller_arns(event)
    steps = CALLER_STEPS if user_type == "IAMUser" else CALLER_STEPS[1:]
    for home in (Home(account=OURS), Home()):
        for actuator, given in steps:
            assert _account_trips(actuator, given, event, home) == [("account", True)], (actuator, home)


def test_a_given_arn_naming_another_user_is_not_the_callers() -> None:
    """An IAMUser's `UserIdentityArn` naming another user: the user and key carry the ARN built for the caller."""
    [event] = decode_doc(_alert(RecipientAccountId=[OURS], UserIdentityAccountId=[OURS],
                                UserIdentityArn=[f"arn:aws:iam::{OURS}:user/someone-else"]))
    assert _caller_arns(event) == [("access_key", f"arn:aws:iam::{OURS}:user/build-bot"),
                                   ("iam_user", f"arn:aws:iam::{OURS}:user/build-bot")]


@pytest.mark.parametrize("user_type", ["IAMUser", "AssumedRole"])
def test_a_foreign_given_arn_alone_places_the_caller(user_type: str) -> None:
    """No `UserIdentityAccountId`: the given ARN, another account's, is carried as is, and its steps are refused."""
    arn = (f"arn:aws-us-gov:iam::{OTHER}:user/ci/build-bot" if user_type == "IAMUser"
           else f"arn:aws:sts::{OTHER}:assumed-role/build-bot/s")
    [event] = decode_doc(_alert(RecipientAccountId=[OURS], UserIdentityArn=[arn], UserIdentityType=[user_type]))
    assert {a for _, a in _caller_arns(event)} == {arn}
    steps = CALLER_STEPS if user_type == "IAMUser" else CALLER_STEPS[1:]
    for home in (Home(account=OURS), Home()):
        for actuator, given in steps:
            assert _account_trips(actuator, given, event, home) == [("account", True)], (actuator, home)
