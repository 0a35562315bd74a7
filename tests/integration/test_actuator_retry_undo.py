"""A retried step (its first reply lost) must still record the prior state that undo restores, on moto."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.actuators.aws.sagemaker import policy_name
from responder.actuators.base import ActuationContext
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.engine.undo import Undoer
from responder.errors import TransientActuationError
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.models.timeline import EntryKind
from responder.timeline import MemoryStore, Recorder
from tests.integration.actuator_cases import CASES

pytestmark = pytest.mark.integration
CASE = {c.actuator: c for c in CASES}
INCIDENT = "inc0123456789abcdef0"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


class DropsReply:
    """Forwards every call; the first `operation` is applied on the server and then its reply is lost."""

    def __init__(self, inner: Any, operation: str) -> None:
        self.inner, self.operation, self.dropped = inner, operation, 0

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Apply the call; raise a transient error instead of the first reply of `operation`."""
        reply: dict[str, Any] = await self.inner.call(service, operation, **kwargs)
        if operation == self.operation and not self.dropped:
            self.dropped += 1
            raise TransientActuationError("connection reset after the request was applied", code="ReplyLost")
        return reply


async def contained_with_lost_reply(aws: Any, name: str, operation: str,
                                    params: dict[str, Any] | None = None) -> tuple[Recorder, dict[str, Any]]:
    """Run `name` as a step through `run_step` (3 attempts) with the first reply of `operation` lost."""
    params = params or await CASE[name].setup(aws)
    actuator = registry.get(name)
    p = actuator.params.model_validate(params)
    lossy = DropsReply(aws, operation)
    recorder = Recorder(MemoryStore())
    call = StepCall(actuator, p, ActuationContext(aws=lossy, incident=INCIDENT, key=KEY), attempts=3, timeout=30)
    intent = StepIntent(step="contain", actuator=name, target=actuator.target(p), key=KEY,
                        params=p.model_dump(mode="json"))
    result = await run_step(recorder, call, intent, incident=INCIDENT)
    assert lossy.dropped == 1
    assert result.ok
    assert result.changed
    return recorder, params


async def test_isolation_whose_tag_reply_is_lost_can_still_be_undone(aws):
    """Isolation settled by verify after a lost CreateTags reply records the old groups, so undo restores them."""
    recorder, params = await contained_with_lost_reply(aws, "aws.ec2.isolate_instance", "create_tags")
    observe = CASE["aws.ec2.isolate_instance"].observe
    assert list((await observe(aws, params)).values()) == [["responder-quarantine"]]
    outcomes = await Undoer(recorder, registry, aws, attempts=1).undo(INCIDENT)
    assert [o["status"] for o in outcomes] == ["ok"], outcomes
    assert list((await observe(aws, params)).values()) == [["inference-web"]]


async def test_endpoint_isolation_whose_reply_is_lost_can_still_be_undone(aws):
    """Endpoint isolation settled by verify after a lost PutRolePolicy reply records the roles; undo releases them."""
    recorder, params = await contained_with_lost_reply(aws, "aws.sagemaker.isolate_endpoint", "put_role_policy")
    observe = CASE["aws.sagemaker.isolate_endpoint"].observe
    assert await observe(aws, params) is not None
    outcomes = await Undoer(recorder, registry, aws, attempts=1).undo(INCIDENT)
    assert [o["status"] for o in outcomes] == ["ok"], outcomes
    assert await observe(aws, params) is None


PARTIAL_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
                 "RestrictPublicBuckets": False}
NARROW_DENY = ('{"Version":"2012-10-17","Statement":[{"Sid":"ResponderDenyBedrock","Effect":"Deny",'
               '"Action":["bedrock:InvokeModel"],"Resource":"*"}]}')


async def _partial_block(aws: Any) -> dict[str, Any]:
    params = await CASE["aws.s3.block_public_access"].setup(aws)
    await aws.call("s3", "put_public_access_block", Bucket=params["bucket"],
                   PublicAccessBlockConfiguration=PARTIAL_BLOCK)
    return params


async def _narrow_deny(aws: Any) -> dict[str, Any]:
    params = await CASE["aws.iam.deny_bedrock_access"].setup(aws)
    await aws.call("iam", "put_user_policy", UserName=params["principal_name"], PolicyName="responder-deny-bedrock",
                   PolicyDocument=NARROW_DENY)
    return params


EARLIER_QUARANTINE = ('{"Version":"2012-10-17","Statement":[{"Sid":"Earlier","Effect":"Deny",'
                      '"Action":["s3:*"],"Resource":"*"}]}')
EARLIER_REVOKE = ('{"Version":"2012-10-17","Statement":[{"Sid":"ResponderRevokeEarlierIncident","Effect":"Deny",'
                  '"Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}}]}')


async def _earlier_quarantine(aws: Any) -> dict[str, Any]:
    params = await CASE["aws.iam.quarantine_principal"].setup(aws)
    await aws.call("iam", "put_role_policy", RoleName=params["principal_name"], PolicyName="responder-quarantine",
                   PolicyDocument=EARLIER_QUARANTINE)
    return params


async def _earlier_revocation(aws: Any) -> dict[str, Any]:
    params = await CASE["aws.iam.revoke_sessions"].setup(aws)
    await aws.call("iam", "put_user_policy", UserName=params["principal_name"],
                   PolicyName="responder-revoke-older-sessions", PolicyDocument=EARLIER_REVOKE)
    return params


@pytest.mark.parametrize(("name", "operation", "prepare"), [
    ("aws.s3.block_public_access", "put_public_access_block", _partial_block),
    ("aws.lambda.throttle_function", "put_function_concurrency", None),
    ("aws.iam.deny_bedrock_access", "put_user_policy", _narrow_deny),
    ("aws.iam.quarantine_principal", "put_role_policy", _earlier_quarantine),
    ("aws.iam.revoke_sessions", "put_user_policy", _earlier_revocation),
    ("aws.secretsmanager.rotate_secret", "put_secret_value", None),
])
async def test_undo_after_a_lost_reply_restores_the_state_from_before_the_step(aws, name, operation, prepare):
    """A step settled by verify after a lost reply is undone back to the state before it, not to a blank one."""
    params = await prepare(aws) if prepare else await CASE[name].setup(aws)
    before = await CASE[name].observe(aws, params)
    recorder, _ = await contained_with_lost_reply(aws, name, operation, params)
    assert await CASE[name].observe(aws, params) != before
    outcomes = await Undoer(recorder, registry, aws, attempts=1).undo(INCIDENT)
    assert [o["status"] for o in outcomes] == ["ok"], outcomes
    assert await CASE[name].observe(aws, params) == before


def _old_revoke_after(after: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"cutoff": after["cutoff"]}  # before e1fc035: no document


def _old_endpoint_after(after: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"policy": policy_name(params["endpoint_name"])}  # before fd37775


@pytest.mark.parametrize(("name", "old_after"), [
    ("aws.iam.revoke_sessions", _old_revoke_after),
    ("aws.sagemaker.isolate_endpoint", _old_endpoint_after),
])
async def test_a_step_recorded_with_an_older_after_state_shape_is_still_undone(aws, name, old_after):
    """A step whose result an older release recorded (an after-state without today's observe() fields) is undone."""
    params = await CASE[name].setup(aws)
    before = await CASE[name].observe(aws, params)
    actuator = registry.get(name)
    p = actuator.params.model_validate(params)
    done = await actuator.apply(p, ActuationContext(aws=aws, incident=INCIDENT, key=KEY))
    recorder = Recorder(MemoryStore())
    head = {"step": "contain", "actuator": name, "target": actuator.target(p), "key": KEY}
    recorder.append(EntryKind.STEP_INTENT, StepIntent(**head, params=p.model_dump(mode="json")).body(), INCIDENT)
    recorder.append(EntryKind.STEP_RESULT, StepResult(**head, status=StepStatus.OK, changed=True, prior=done.prior,
                                                      after=old_after(done.after, params)).body(), INCIDENT)
    outcomes = await Undoer(recorder, registry, aws, attempts=1).undo(INCIDENT)
    assert [o["status"] for o in outcomes] == ["ok"], outcomes
    assert await CASE[name].observe(aws, params) == before
