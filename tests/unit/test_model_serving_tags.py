"""A model rollback or switch with a protected tag set reads the tags of what it changes (a SageMaker registry's
endpoint, an S3 registry's serving pointer in SSM), never refused for that alone; a local registry reads nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import responder.actuators.model  # noqa: F401  # registers the model actuators
from responder.actuators.base import ModelConfig
from responder.actuators.model.s3 import S3Store
from responder.actuators.registry import registry
from responder.engine.actedon import PERMISSIONS, acted_on
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.quotas import QuotaWindows
from responder.engine.resolution import Resolved, resolve_step
from responder.engine.tagreads import ResourceTags
from responder.errors import PermanentActuationError
from responder.models.runbook import Protected, Runbook, Step
from tests.guard_kit import SettableClock, event_naming

PROTECTED = {"responder:protected": "*"}
SERVING = [("model.rollback_to_last_signed", {"model": "fraud-scorer", "from_version": "v7"}),
           ("model.switch_version", {"model": "fraud-scorer", "version": "v6"})]


class Aws:
    """SageMaker and SSM tag reads answered from `tags` (`kind id` → tags); `missing` parameters are not found."""

    def __init__(self, tags: dict[str, dict[str, str]], missing: bool = False) -> None:
        self.tags, self.missing = tags, missing
        self.calls: list[str] = []

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """One read of tags (or of the endpoint's ARN)."""
        self.calls.append(f"{service}.{operation}")
        if operation == "describe_endpoint":
            return {"EndpointArn": f"arn:endpoint/{kw['EndpointName']}"}
        if operation == "list_tags":
            tags = self.tags.get("endpoint " + kw["ResourceArn"].split("/")[-1], {})
            return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        assert (service, operation, kw["ResourceType"]) == ("ssm", "list_tags_for_resource", "Parameter")
        if self.missing:
            raise PermanentActuationError("InvalidResourceId: no such parameter", code="InvalidResourceId")
        tags = self.tags.get(f"parameter {kw['ResourceId']}", {})
        return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


def _refusal(actuator: str, with_: dict[str, Any], aws: Aws, registry_url: str) -> str | None:
    """The detail of the step's hard trip, its registry `registry_url` (the setting), or None."""
    step = Step.model_validate({"id": "s", "actuator": actuator, "with": with_})
    resolved = resolve_step(step, {"event": event_naming().model_dump(mode="json")}, registry)
    assert isinstance(resolved, Resolved), resolved
    rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                 "steps": [step.model_dump(by_alias=True)]})
    policy = GuardPolicy(protected=Protected(tags=PROTECTED), models=ModelConfig(registry=registry_url,
                                                                                  ssm_prefix="/prod/models/"))
    guards = Guards(policy, tags=ResourceTags(aws, clock=SettableClock()))
    trips = asyncio.run(guards.check_step(rb, actuator, resolved.target, resolved.values, event_naming(),
                                          QuotaWindows(), 0.0))
    return next((t.detail for t in trips if t.hard), None)


@pytest.mark.parametrize(("actuator", "with_"), SERVING)
@pytest.mark.parametrize(("url", "resource"), [("sagemaker+s3://models/registry", "endpoint fraud-scorer"),
                                               ("s3://models/registry", "parameter /prod/models/fraud-scorer/serving")])
def test_a_model_step_runs_unless_what_it_changes_carries_a_protected_tag(actuator: str, with_: dict[str, Any],
                                                                         url: str, resource: str) -> None:
    """A rollback or switch runs when what it changes carries no protected tag, and is refused when it does."""
    assert _refusal(actuator, with_, Aws({resource: {"team": "ml"}}), url) is None
    refusal = _refusal(actuator, with_, Aws({resource: {"responder:protected": "yes"}}), url)
    assert "responder:protected=yes" in str(refusal)


def test_an_s3_registry_whose_serving_pointer_is_not_created_yet_runs() -> None:
    """A rollback on an S3 registry whose SSM serving pointer does not exist yet (the step creates it) runs."""
    aws = Aws({}, missing=True)
    assert _refusal(*SERVING[0], aws, "s3://models/registry") is None
    assert aws.calls == ["ssm.list_tags_for_resource"]


def test_a_local_registry_reads_nothing() -> None:
    """A rollback on a local registry (responder's own files) reads no tag and runs."""
    aws = Aws({})
    assert _refusal(*SERVING[0], aws, ".responder/models") is None
    assert aws.calls == []


def test_the_step_s_own_registry_is_read_not_the_setting_s() -> None:
    """A step naming its own registry has what that registry serves read, whatever the setting says."""
    with_ = {**SERVING[0][1], "registry": "sagemaker+s3://other/reg"}
    assert acted_on(SERVING[0][0], with_, ModelConfig(registry="s3://models/r")) == {"endpoint fraud-scorer"}


def test_the_serving_pointer_read_is_the_one_the_s3_registry_writes() -> None:
    """The SSM parameter whose tags are read is the one the S3 registry's rollback writes."""
    store = S3Store(Aws({}), "s3://models/registry", "/prod/models/")
    keys = acted_on(SERVING[0][0], SERVING[0][1], ModelConfig(registry="s3://models/registry",
                                                               ssm_prefix="/prod/models/"))
    assert keys == {f"parameter {store.parameter('fraud-scorer')}"}


@pytest.mark.parametrize(("actuator", "_with"), SERVING)
def test_the_model_steps_declare_their_tag_reads(actuator: str, _with: dict[str, Any]) -> None:
    """A rollback and a switch declare the actions their tag reads need (iam-policy grants them)."""
    wanted = {a for kind in ("endpoint", "parameter") for a in PERMISSIONS[kind].split(", ")}
    assert wanted <= set(registry.get(actuator).permissions)
