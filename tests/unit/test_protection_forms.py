"""Protected ids match across accounts, across ARN and name forms outside IAM, and over every `role_names` item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import responder.actuators.aws  # registers the AWS actuators
import responder.actuators.notify  # noqa: F401  # registers the notify actuators
from responder.demo import eventbridge
from responder.engine.arnforms import Home
from responder.engine.guards import GuardPolicy, Guards, QuotaWindows
from responder.models import RawRecord
from responder.models.event import Resource, ResourceKind
from responder.models.runbook import Protected, Runbook
from tests.findings import guardduty_finding
from tests.guard_kit import event_naming, step_refused, step_trips
from tests.kit import DEACTIVATE_STEPS, KEY, make_kit

KMS_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:inference-proxy"


async def test_a_finding_claiming_another_account_does_not_unprotect_the_pinned_user(tmp_path: Path) -> None:
    """A user protected by its ARN in the responder's account is refused when a finding claims another account."""
    policy = GuardPolicy(protected=Protected(ids=["arn:aws:iam::123456789012:user/ml-training"]))
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS}, policy=policy)
    finding = guardduty_finding(KEY, finding_id="f-elsewhere")
    finding["accountId"] = "999999999999"
    envelope = eventbridge(finding)
    envelope["account"] = "999999999999"
    assert kit.pipeline is not None
    await kit.pipeline.handle(RawRecord(topic="t", value=orjson.dumps(envelope)))
    await kit.engine.recorder.flush()
    assert kit.iam.count("update_access_key") == 0
    assert [t["guard"] for t in kit.entries("guard.tripped")] == ["protected"]


def test_an_iam_arn_in_another_account_is_protected_by_the_pinned_arn() -> None:
    """A target given as another account's ARN of the pinned user's name is refused (responder acts in its own)."""
    pinned = ["arn:aws:iam::123456789012:user/ml-training"]
    params = {"principal_type": "user", "principal_name": "ml-training"}
    assert step_refused(pinned, "aws.iam.revoke_sessions", params, event_naming(account="999999999999"))
    other = Resource(kind=ResourceKind.IAM_USER, id="arn:aws:iam::999999999999:user/ml-training")
    assert step_refused(pinned, "aws.iam.revoke_sessions", params, event_naming(other, account=None))


def test_a_lambda_function_protected_by_name_is_refused_when_named_by_arn() -> None:
    """A function protected by name is refused when the step names it by (qualified or not) ARN."""
    assert step_refused(["inference-proxy"], "aws.lambda.throttle_function", {"function_name": LAMBDA_ARN})
    event = event_naming(Resource(kind=ResourceKind.FUNCTION, id=f"{LAMBDA_ARN}:live"))
    assert step_refused(["inference-proxy"], "aws.lambda.throttle_function", {"function_name": "inference-proxy"},
                        event)


def test_a_lambda_function_protected_by_arn_is_refused_when_named_by_name() -> None:
    """A function protected by ARN (a region and account pinned, or globbed) is refused when named by name."""
    for pattern in (LAMBDA_ARN, "arn:aws:lambda:*:*:function:inference-*"):
        assert step_refused([pattern], "aws.lambda.throttle_function", {"function_name": "inference-proxy"}), pattern


def test_a_kms_key_is_protected_by_id_or_arn_however_the_step_names_it() -> None:
    """A KMS key protected by id is refused when given by ARN, and protected by ARN when given by id."""
    arn = f"arn:aws:kms:us-east-1:123456789012:key/{KMS_ID}"
    assert step_refused([KMS_ID], "aws.kms.disable_key", {"key_id": arn})
    assert step_refused([arn], "aws.kms.disable_key", {"key_id": KMS_ID})
    alias = Resource(kind=ResourceKind.KMS_KEY, id=KMS_ID, arn="arn:aws:kms:us-east-1:123456789012:alias/prod-data")
    assert step_refused(["alias/prod-data"], "aws.kms.disable_key", {"key_id": KMS_ID}, event_naming(alias))


def test_a_notify_signing_key_id_is_not_a_kms_key() -> None:
    """A notify step's `key_id` (a signing key) is not refused by a pattern protecting every KMS key."""
    with_ = {"url": "https://hooks.example.com/x", "key_id": "oncall", "title": "contained"}
    assert not step_refused(["arn:aws:kms:*:*:key/*"], "notify.webhook.post_message", with_)


def test_a_secret_is_protected_by_name_or_arn_however_the_step_names_it() -> None:
    """A secret's ARN (with AWS's 6-character suffix) and its name protect each other."""
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-password-AbCdEf"
    actuator = "aws.secretsmanager.rotate_secret"
    assert step_refused(["prod/db-password"], actuator, {"secret_id": arn})
    for pattern in (arn, "arn:aws:secretsmanager:*:*:secret:prod/db-password-??????",
                    "arn:aws:secretsmanager:*:*:secret:prod/*"):
        assert step_refused([pattern], actuator, {"secret_id": "prod/db-password"}), pattern


def test_a_trail_and_a_bucket_are_protected_by_name_or_arn() -> None:
    """A trail and a bucket are refused by their ARN when named by name, and by name when the event gives an ARN."""
    trail_arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/management-events"
    assert step_refused([trail_arn], "aws.cloudtrail.start_logging", {"trail": "management-events"})
    assert step_refused(["management-events"], "aws.cloudtrail.start_logging", {"trail": trail_arn})
    assert step_refused(["arn:aws:s3:::training-data-*"], "aws.s3.block_public_access",
                        {"bucket": "training-data-prod"})
    obj = Resource(kind=ResourceKind.BUCKET, id="arn:aws:s3:::training-data-prod/shard-0001.parquet")
    assert step_refused(["training-data-prod"], "aws.s3.block_public_access", {"bucket": "training-data-prod"},
                        event_naming(obj))


def test_a_protected_tag_on_a_resource_named_by_arn_protects_it_named_by_name() -> None:
    """A protected tag on a function the event gives by ARN refuses a step naming the function by name."""
    fn = Resource(kind=ResourceKind.FUNCTION, id=LAMBDA_ARN, attributes={"tags": {"responder:protected": "1"}})
    assert step_refused([], "aws.lambda.throttle_function", {"function_name": "inference-proxy"}, event_naming(fn),
                        tags={"responder:protected": "*"})


@pytest.mark.parametrize(("actuator", "with_"), [
    ("aws.iam.revoke_sessions", {"principal_type": "role", "principal_name": "inference-gateway"}),
    ("aws.s3.block_public_access", {"bucket": "inference-proxy"}),
])
def test_an_arn_pattern_never_protects_another_kind_by_its_name(actuator: str, with_: dict[str, Any]) -> None:
    """A Lambda ARN glob protects functions only: a role or a bucket is not refused by it."""
    assert not step_refused(["arn:aws:lambda:*:*:function:*"], actuator, with_)


def test_a_role_in_role_names_is_protected_by_its_arn() -> None:
    """A role listed in `role_names` of a SageMaker step is refused by the role's ARN pattern."""
    with_ = {"endpoint_name": "fraud-scoring", "role_names": ["inference-gateway", "ResponderRole"]}
    assert step_refused(["arn:aws:iam::*:role/ResponderRole"], "aws.sagemaker.isolate_endpoint", with_)


async def test_a_look_alike_name_in_role_names_is_refused_whatever_the_actuator() -> None:
    """An IAM name outside IAM's character set is refused in `role_names` of a non-IAM actuator."""
    trips = await Guards(GuardPolicy()).check_step(
        Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                "steps": [{"id": "s", "actuator": "aws.sagemaker.isolate_endpoint"}]}),
        "aws.sagemaker.isolate_endpoint", "fraud-scoring",
        {"endpoint_name": "fraud-scoring", "role_names": ["inference-gateway", "R\u0435sponderRole"]},
        event_naming(), QuotaWindows(), 0.0)
    assert [t.guard for t in trips if t.hard] == ["protected"]


OURS = Home(account="222222222222", region="us-east-1")


def test_a_wildcard_pinned_to_another_account_leaves_ours_when_our_account_is_known() -> None:
    """With `aws_account_id` set, a role wildcard pinned to another account does not protect our roles; ours does."""
    role = {"principal_type": "role", "principal_name": "app-worker"}
    ours = event_naming(account="222222222222")  # a finding about another account is refused (the account guard)
    assert not step_refused(["arn:aws:iam::111111111111:role/*"], "aws.iam.quarantine_principal", role, ours,
                            home=OURS)
    assert step_refused(["arn:aws:iam::222222222222:role/*"], "aws.iam.quarantine_principal", role, ours, home=OURS)


def test_an_account_pinned_pattern_protects_in_every_account_while_ours_is_unknown() -> None:
    """Without `aws_account_id`, an account-pinned pattern protects the name in any account."""
    assert step_refused(["arn:aws:iam::111111111111:role/*"], "aws.iam.quarantine_principal",
                        {"principal_type": "role", "principal_name": "app-worker"})


def test_a_finding_claiming_another_account_does_not_unprotect_ours_when_it_is_known() -> None:
    """With our account known, a pattern pinned to it protects the user, whatever account (or none) the event claims."""
    given = {"user_name": "ml-training", "access_key_id": KEY}
    pinned = ["arn:aws:iam::222222222222:user/ml-training"]
    for event in (event_naming(account="222222222222"), event_naming(account=None)):
        trips = step_trips(pinned, "aws.iam.deactivate_access_key", given, event, home=OURS)
        assert [t.guard for t in trips if t.hard] == ["protected"]
    claimed = step_trips(pinned, "aws.iam.deactivate_access_key", given, event_naming(account="999999999999"),
                         home=OURS)
    assert "protected" in [t.guard for t in claimed if t.hard]  # the account guard refuses it too


def test_a_wildcard_pinned_to_another_region_leaves_our_functions() -> None:
    """A function pattern pinned to another region and account protects none of ours; pinned to ours, it does."""
    here = {"function_name": "arn:aws:lambda:us-east-1:222222222222:function:inference-proxy"}
    named = {"function_name": "inference-proxy"}
    for given in (here, named):
        assert not step_refused(["arn:aws:lambda:eu-west-1:111111111111:function:*"], "aws.lambda.throttle_function",
                                given, event_naming(account="222222222222"), home=OURS)
        trips = step_trips(["arn:aws:lambda:us-east-1:222222222222:function:*"], "aws.lambda.throttle_function",
                           given, event_naming(account="222222222222"), home=OURS)
        assert [t.guard for t in trips if t.hard] == ["protected"]


def test_a_pattern_in_another_partition_protects_a_name() -> None:
    """A GovCloud ARN pattern protects a role or function given by name (the partition of a name is left open)."""
    assert step_refused(["arn:aws-us-gov:iam::*:role/ResponderRole"], "aws.iam.quarantine_principal",
                        {"principal_type": "role", "principal_name": "ResponderRole"})
    assert step_refused(["arn:aws-us-gov:lambda:*:*:function:inference-proxy"], "aws.lambda.throttle_function",
                        {"function_name": "inference-proxy"})


INSTANCE = "i-0123456789abcdef0"


@pytest.mark.parametrize("pattern", [f"arn:aws:ec2:*:*:instance/{INSTANCE}",
                                     "arn:aws:ec2:us-east-1:222222222222:instance/*", INSTANCE])
@pytest.mark.parametrize("arn", [None, f"arn:aws:ec2:us-east-1:222222222222:instance/{INSTANCE}"],
                         ids=["bare-id", "with-arn"])
def test_an_instance_is_protected_by_its_arn_however_the_finding_names_it(pattern: str, arn: str | None) -> None:
    """An instance protected by an ARN pattern is refused whether the finding names it by bare id or by ARN."""
    event = event_naming(Resource(kind=ResourceKind.INSTANCE, id=INSTANCE, arn=arn), account="222222222222")
    for actuator in ("aws.ec2.isolate_instance", "aws.ec2.snapshot_volumes"):
        assert step_refused([pattern], actuator, {"instance_id": INSTANCE}, event, home=OURS)
    assert not step_refused(["arn:aws:ec2:eu-west-1:111111111111:instance/*"], "aws.ec2.isolate_instance",
                            {"instance_id": INSTANCE}, event_naming(account="222222222222"), home=OURS)
