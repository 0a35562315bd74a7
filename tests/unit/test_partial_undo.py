"""A failure part-way after a retry records the state from before the first attempt, and every change a step key made
stays reachable by `responder undo` until it is reversed (docs/security.md, "Failed steps do not spend the quota";
since 2026-12-07). Through the step runner and the undoer with a scripted AWS client."""

from __future__ import annotations

from typing import Any

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.engine.undo import Undoer
from responder.errors import PermanentActuationError, TransientActuationError
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.timeline import MemoryStore, Recorder
from tests.partial_kit import ENDPOINT_ARN, Scripted

ISOLATE_ENDPOINT = "aws.sagemaker.isolate_endpoint"
ENI_A, ENI_B = "eni-0000000000000000a", "eni-0000000000000000b"
SG_A, SG_B, SG_Q = "sg-0000000000000000a", "sg-0000000000000000b", "sg-00000000000000009"


async def _step(rec: Recorder, aws: Scripted, actuator: str, params: dict[str, Any], *, attempts: int = 1,
                before: dict[str, Any] | None = None) -> StepResult:
    act = registry.get(actuator)
    call = StepCall(act, act.params.model_validate(params), ActuationContext(aws=aws, incident="inc", key="k1"),
                    attempts=attempts, timeout=30.0)
    intent = StepIntent(step="s", actuator=actuator, key="k1", params=params, runbook="rb",
                        **({"before": before} if before is not None else {}))
    return await run_step(rec, call, intent, incident="inc")


def _endpoint(fails: dict[tuple[str, str, str], list[Exception]]) -> Scripted:
    return Scripted({"describe_endpoint": {"EndpointArn": ENDPOINT_ARN}}, fails)


def _denied(aws: Scripted) -> list[str]:
    return sorted(role for role, _ in aws.policies)


def _slow() -> TransientActuationError:
    return TransientActuationError("slow down", code="Throttling")


def _gone(what: str) -> PermanentActuationError:
    return PermanentActuationError(f"{what} not found", code="NoSuchEntity")


async def test_a_retry_that_fails_part_way_records_the_roles_the_first_attempt_denied_and_undo_releases_them():
    """[a, b, c]: a denied, b throttled; the retry denies b and fails on c: prior is [a, b, c], undo releases a too."""
    aws = _endpoint({("put_role_policy", "RoleName", "b"): [_slow()],
                     ("put_role_policy", "RoleName", "c"): [_gone("c")]})
    rec = Recorder(MemoryStore())
    result = await _step(rec, aws, ISOLATE_ENDPOINT, {"endpoint_name": "ep", "role_names": ["a", "b", "c"]}, attempts=4)
    assert (result.status, result.changed) == (StepStatus.FAILED, True)
    assert result.prior == {"roles_without_deny": ["a", "b", "c"]}
    assert result.after == {"roles_without_deny": ["c"]}
    assert "put the invoke deny of ep on role b; an earlier attempt, ended by a transient error (Throttling), may " \
           "have changed more of the target" in str(result.error)
    outcomes = await Undoer(rec, registry, aws).undo("inc")
    assert [(o["status"], o.get("reverse")) for o in outcomes] == [("ok", "aws.sagemaker.release_endpoint")]
    assert _denied(aws) == []


async def test_a_retry_that_fails_part_way_records_the_interface_the_first_attempt_moved_and_undo_restores_it():
    """Two ENIs: a moved, b throttled; the retry fails on b: prior is the groups before the step, undo restores a."""
    enis = {ENI_A: [SG_A], ENI_B: [SG_B]}
    aws = Scripted({"describe_instances": {"Reservations": [{"Instances": [{"VpcId": "vpc-1",
                                                                            "State": {"Name": "running"}}]}]},
                    "describe_security_groups": {"SecurityGroups": [{"GroupId": SG_Q}]}},
                   {("modify_network_interface_attribute", "NetworkInterfaceId", ENI_B):
                    [TransientActuationError("slow", code="RequestLimitExceeded"),
                     PermanentActuationError("not permitted", code="UnauthorizedOperation")]}, enis=enis)
    rec = Recorder(MemoryStore())
    result = await _step(rec, aws, "aws.ec2.isolate_instance", {"instance_id": "i-0123456789abcdef0"}, attempts=3)
    assert result.prior == {"groups_by_eni": {ENI_A: [SG_A], ENI_B: [SG_B]}}
    assert result.after == {"groups_by_eni": {ENI_A: [SG_Q], ENI_B: [SG_B]}}
    assert "(RequestLimitExceeded), may have changed more of the target" in str(result.error)
    outcomes = await Undoer(rec, registry, aws).undo("inc")
    assert [(o["status"], o.get("reverse")) for o in outcomes] == [("ok", "aws.ec2.restore_instance_groups")]
    assert enis == {ENI_A: [SG_A], ENI_B: [SG_B]}


async def test_a_possible_change_that_the_read_back_shows_is_recorded_and_undone():
    """a denied, ghost throttled; the retry changes nothing and fails: the change read back is recorded, undone."""
    aws = _endpoint({("put_role_policy", "RoleName", "ghost"): [_slow(), _gone("ghost")]})
    rec = Recorder(MemoryStore())
    result = await _step(rec, aws, ISOLATE_ENDPOINT, {"endpoint_name": "ep", "role_names": ["a", "ghost"]}, attempts=2)
    assert (result.permanent, result.changed) == (None, True)
    assert (result.prior, result.after) == ({"roles_without_deny": ["a", "ghost"]}, {"roles_without_deny": ["ghost"]})
    outcomes = await Undoer(rec, registry, aws).undo("inc")
    assert [o["status"] for o in outcomes] == ["ok"]
    assert _denied(aws) == []


async def test_a_failure_part_way_after_a_restart_says_the_cut_short_run_may_have_changed_more():
    """An open intent's before-state (a run cut short by a crash) is the prior; the error says it may have done more."""
    aws = _endpoint({("put_role_policy", "RoleName", "c"): [_gone("c")]})
    result = await _step(Recorder(MemoryStore()), aws, ISOLATE_ENDPOINT,
                         {"endpoint_name": "ep", "role_names": ["a", "b", "c"]},
                         before={"roles_without_deny": ["x", "a", "b", "c"]})
    assert result.prior == {"roles_without_deny": ["x", "a", "b", "c"]}
    assert "an earlier attempt (a run before a restart) may have changed more of the target" in str(result.error)


async def test_a_failure_part_way_then_a_completed_run_of_the_same_key_stay_undoable_until_reversed():
    """[a, ghost] fails on ghost, later completes; the first undo is throttled on a: a second undo still releases a."""
    aws = _endpoint({("put_role_policy", "RoleName", "ghost"): [_gone("ghost")],
                     ("delete_role_policy", "RoleName", "a"): [_slow(), _slow()]})
    rec = Recorder(MemoryStore())
    params = {"endpoint_name": "ep", "role_names": ["a", "ghost"]}
    assert (await _step(rec, aws, ISOLATE_ENDPOINT, params)).status is StepStatus.FAILED
    assert (await _step(rec, aws, ISOLATE_ENDPOINT, params)).ok
    first = await Undoer(rec, registry, aws, attempts=2, deadline=5.0).undo("inc")
    assert [o["status"] for o in first] == ["failed"]
    second = await Undoer(rec, registry, aws).undo("inc", "s")
    assert [o["status"] for o in second] == ["ok"]
    assert _denied(aws) == []
    assert await Undoer(rec, registry, aws).undo("inc") == []
