"""The registry meta-test: every actuator declares itself fully (name, params, permissions, reverse, example)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import Field

from responder.actuators import registry
from responder.actuators.aws.iam_restore import RestoreInlinePolicy
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params
from responder.actuators.contract import examples, problems
from responder.actuators.policy import PolicyScope, minimal_policy
from responder.actuators.registry import Registry


@pytest.mark.parametrize("actuator", list(registry), ids=lambda a: a.name)
def test_actuator_honours_the_contract(actuator):
    """Name pattern, params model, exact permissions, destructive flag, reverse or reason, methods, example."""
    assert problems(actuator, registry) == []


def test_registry_holds_the_issue_actuators():
    """Every actuator the issue names is registered."""
    wanted = {
        "aws.ec2.isolate_instance", "aws.ec2.snapshot_volumes", "aws.ec2.stop_instance",
        "aws.iam.deactivate_access_key", "aws.iam.delete_access_key", "aws.iam.rotate_access_key",
        "aws.iam.revoke_sessions", "aws.iam.quarantine_principal", "aws.secretsmanager.rotate_secret",
        "aws.kms.disable_key", "aws.apigateway.disable_api_key", "aws.lambda.throttle_function",
        "aws.sagemaker.isolate_endpoint", "aws.s3.block_public_access", "notify.webhook.post_message",
        "notify.kafka.publish_message",
    }
    assert wanted <= set(registry.names())


def test_destructive_ones_are_flagged():
    """Stopping instances, deleting keys, disabling KMS keys and switching a model back are destructive."""
    destructive = {a.name for a in registry if a.destructive}
    assert destructive == {"aws.ec2.stop_instance", "aws.iam.delete_access_key", "aws.kms.disable_key",
                           "model.switch_version"}


def test_key_rotation_may_tag_the_secret_it_creates():
    """rotate_access_key calls CreateSecret with Tags, which also needs secretsmanager:TagResource."""
    assert "secretsmanager:TagResource" in registry.get("aws.iam.rotate_access_key").permissions

class _Loose(Params):
    instance_id: str = Field(pattern=r"^i-[0-9a-f]{8,17}$")


class _Incomplete(Actuator[_Loose]):
    """Does things.

    Example::

        - id: x
          actuator: aws.ec2.other_name
          with: {instance_id: not-an-instance}
    """

    name = "aws.ec2.BadName"
    params = _Loose
    permissions: ClassVar[tuple[str, ...]] = ("ec2:*",)
    notifies = True  # claims to only tell a human, yet needs cloud permissions

    async def apply(self, p: _Loose, ctx: ActuationContext) -> ActuationResult:
        return ActuationResult(changed=False, target=p.instance_id, outputs={"group": "sg-1"})


def test_contract_reports_each_missing_declaration():
    """A half-declared actuator gets one problem per gap, so the meta-test can fail."""
    found = problems(_Incomplete(), Registry())
    joined = "\n".join(found)
    for expected in ("provider.service.verb_object", "wildcards", "destructive flag", "irreversible",
                     "target() not implemented", "plan() not implemented", "verify() not implemented",
                     "names actuator", "does not validate", "example_outputs declares none",
                     "skips the protected-id guard"):
        assert expected in joined, expected



class _MisnamedFreeText(RestoreInlinePolicy):
    """A restore declaring a not-identifier its parameters lack (a typo, or one renamed since).

    Example::

        - id: lift-quarantine
          actuator: aws.iam.restore_inline_policy
          with: {principal_type: role, principal_name: inference, policy_name: responder-quarantine}
    """

    not_identifiers = ("policy_name", "reason")


def test_contract_reports_a_not_identifier_that_names_no_parameter():
    """A not_identifiers name that is no parameter of the actuator is reported, and is the only problem found."""
    assert problems(RestoreInlinePolicy(), registry) == []
    assert problems(_MisnamedFreeText(), registry) == ["not_identifiers names no parameter: ['reason']"]

def test_docstring_examples_are_parsed():
    """The YAML after `Example::` is a list of steps naming the actuator."""
    found = examples(registry.get("aws.ec2.isolate_instance"))
    assert found[0]["actuator"] == "aws.ec2.isolate_instance"
    assert found[0]["with"] == {"instance_id": "${event.resource.instance.id}"}


def test_minimal_policy_lists_exact_actions_only():
    """The policy for two actuators holds their actions, none with a wildcard, and nothing for notify."""
    doc = minimal_policy(["aws.kms.disable_key", "notify.webhook.post_message"], registry)
    actions = [a for st in doc["Statement"] for a in st["Action"]]
    assert actions == ["kms:DescribeKey", "kms:DisableKey", "kms:ListResourceTags", "kms:ListAliases"]


def test_list_aliases_is_allowed_on_any_resource_in_a_statement_of_its_own():
    """kms:ListAliases gets its own statement on `*`, while the key actions stay scoped to the account's keys."""
    doc = minimal_policy(["aws.kms.disable_key"], registry, PolicyScope(account="123456789012", region="us-east-1"))
    by_actions = {tuple(st["Action"]): st["Resource"] for st in doc["Statement"]}
    assert by_actions == {("kms:DescribeKey", "kms:DisableKey", "kms:ListResourceTags"):
                          ["arn:aws:kms:us-east-1:123456789012:key/*"],
                          ("kms:ListAliases",): "*"}


def test_only_the_model_actuators_s3_actions_are_scoped_to_the_model_bucket():
    """With a model registry bucket set, block-public-access may act on any bucket; the model actuators only on it."""
    doc = minimal_policy(["aws.s3.block_public_access", "model.rollback_to_last_signed"], registry,
                         PolicyScope(account="123456789012", region="us-east-1", model_bucket="models"))
    by_sid = {st["Sid"]: st["Resource"] for st in doc["Statement"]}
    assert by_sid["AwsS3BlockPublicAccess"] == "*"
    assert by_sid["ModelRollbackToLastSignedS3"] == ["arn:aws:s3:::models", "arn:aws:s3:::models/*"]


def test_an_actuator_whose_service_actions_are_all_unscoped_gets_no_empty_statement():
    """An actuator whose service actions are all unscoped gets only that statement, never an Allow with no action."""
    reg = Registry()
    reader: Any = _Incomplete()
    reader.name, reader.permissions = "aws.kms.read_aliases", ("kms:ListAliases",)
    reg.add(reader)
    doc = minimal_policy([reader.name], reg, PolicyScope(account="123456789012", region="us-east-1"))
    assert [(st["Action"], st["Resource"]) for st in doc["Statement"] if st["Effect"] == "Allow"] == [
        (["kms:ListAliases"], "*")]


def test_minimal_policy_refuses_wildcards():
    """An actuator that declares `service:*` makes the policy builder fail instead of granting it."""
    reg = Registry()
    bad: Any = _Incomplete()
    reg.add(bad)
    with pytest.raises(ValueError, match="wildcard"):
        minimal_policy([bad.name], reg)


def test_dry_run_outputs_are_the_examples_with_params_filled_in():
    """A dry run assumes the declared example outputs, with keys that are params taken from the params."""
    actuator = registry.get("model.quarantine_version")
    p = actuator.params.model_validate({"model": "churn", "version": "v2"})
    assert actuator.dry_run_outputs(p) == {"model": "churn", "version": "v2", "reason": ""}
