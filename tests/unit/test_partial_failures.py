"""A step that changed part of its target before failing is not refunded from its quota, and its result records what
was changed (docs/security.md, "Failed steps do not spend the quota"; since 2026-12-07). Through the step runner
with a scripted AWS client; tests/integration/test_partial_failure.py runs it against moto."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.engine import runner
from responder.engine.quotas import QuotaWindows
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.errors import PermanentActuationError, TransientActuationError
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.timeline import MemoryStore, Recorder
from tests.partial_kit import ENDPOINT_ARN, Scripted


def _gone(role: str) -> PermanentActuationError:
    return PermanentActuationError(f"role {role} not found", code="NoSuchEntity")


async def _run(actuator: str, params: dict[str, Any], aws: Scripted, attempts: int = 1) -> tuple[StepResult, int]:
    """One step through the runner, counted in a quota window before it and settled with its result: the result, and
    the count left in the window."""
    act = registry.get(actuator)
    call = StepCall(act, act.params.model_validate(params), ActuationContext(aws=aws, incident="inc", key="k1"),
                    attempts=attempts, timeout=30.0)
    windows = QuotaWindows()
    windows.record("rb", actuator, 100.0, key="k1")
    result = await run_step(Recorder(MemoryStore()), call, StepIntent(step="s", actuator=actuator, key="k1",
                                                                       params=params, runbook="rb"))
    windows.settle("k1", result)
    return result, windows.count("rb", "*", 3600, 101.0)


def _sagemaker(*fails: Exception) -> Scripted:
    return Scripted({"describe_endpoint": {"EndpointArn": ENDPOINT_ARN}},
                    {("put_role_policy", "RoleName", "ghost"): list(fails)})


async def test_a_step_that_denied_one_role_then_failed_on_another_is_not_refunded():
    """The audit's repro: `[real, ghost]` denies `real`, fails on `ghost`; the run stays counted, `real` is recorded."""
    aws = _sagemaker(_gone("ghost"))
    result, counted = await _run("aws.sagemaker.isolate_endpoint",
                                 {"endpoint_name": "ep", "role_names": ["inference-gateway", "ghost"]}, aws)
    assert result.status is StepStatus.FAILED
    assert counted == 1
    assert result.changed is True
    assert result.prior == {"roles_without_deny": ["inference-gateway", "ghost"]}  # read before: what undo releases
    assert result.after == {"roles_without_deny": ["ghost"]}
    assert "role ghost not found; partly done before it failed: put the invoke deny of ep on role " \
           "inference-gateway" in str(result.error)
    assert result.code == "NoSuchEntity"


async def test_a_step_that_failed_before_changing_anything_is_still_refunded():
    """`[ghost, real]` fails on `ghost` first: nothing was changed, so the run is refunded as before."""
    result, counted = await _run("aws.sagemaker.isolate_endpoint",
                                 {"endpoint_name": "ep", "role_names": ["ghost", "inference-gateway"]},
                                 _sagemaker(_gone("ghost")))
    assert (result.status, result.permanent, result.changed) == (StepStatus.FAILED, True, None)
    assert counted == 0


async def test_a_permanent_failure_after_a_transient_one_is_not_refunded():
    """The first attempt denies `real` and is throttled on `ghost`; the retry fails for good changing nothing itself."""
    aws = _sagemaker(TransientActuationError("slow down", code="Throttling"), _gone("ghost"))
    result, counted = await _run("aws.sagemaker.isolate_endpoint",
                                 {"endpoint_name": "ep", "role_names": ["inference-gateway", "ghost"]}, aws, attempts=2)
    assert [kw["RoleName"] for op, kw in aws.calls if op == "put_role_policy"] == ["inference-gateway", "ghost",
                                                                                  "ghost"]
    assert result.status is StepStatus.FAILED
    assert result.permanent is None  # may have changed something: not known to be a failure that changed nothing
    assert counted == 1
    assert "(Throttling), may have changed part of the target" in str(result.error)


async def test_an_isolation_that_moved_one_interface_of_two_records_it():
    """The second network interface fails: the first one's move is recorded, with the groups undo puts back."""
    enis = {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-0000000000000000a", "Groups": [{"GroupId": "sg-a"}]},
                                  {"NetworkInterfaceId": "eni-0000000000000000b", "Groups": [{"GroupId": "sg-b"}]}]}
    aws = Scripted({"describe_instances": {"Reservations": [{"Instances": [{"VpcId": "vpc-1",
                                                                            "State": {"Name": "running"}}]}]},
                    "describe_security_groups": {"SecurityGroups": [{"GroupId": "sg-q"}]},
                    "describe_network_interfaces": enis},
                   {("modify_network_interface_attribute", "NetworkInterfaceId", "eni-0000000000000000b"):
                    [PermanentActuationError("not permitted", code="UnauthorizedOperation")]})
    result, counted = await _run("aws.ec2.isolate_instance", {"instance_id": "i-0123456789abcdef0"}, aws)
    assert counted == 1
    assert result.changed is True
    assert result.prior == {"groups_by_eni": {"eni-0000000000000000a": ["sg-a"], "eni-0000000000000000b": ["sg-b"]}}
    assert result.after == {"groups_by_eni": {"eni-0000000000000000a": ["sg-q"], "eni-0000000000000000b": ["sg-b"]}}
    assert "set the groups of eni-0000000000000000a to sg-q" in str(result.error)


async def test_a_rotation_that_deleted_the_spare_key_then_failed_says_so():
    """The Inactive spare is deleted, then CreateAccessKey is denied: counted, and the error names the lost spare."""
    keys = {"AccessKeyMetadata": [{"AccessKeyId": "AKIAOLDOLDOLDOLDOLD1", "Status": "Active"},
                                  {"AccessKeyId": "AKIASPARESPARESPARE2", "Status": "Inactive"}]}
    aws = Scripted({"list_access_keys": keys, "list_user_tags": {"Tags": []}},
                   {("get_secret_value", "SecretId", "responder/iam/u"):
                    [PermanentActuationError("no secret", code="ResourceNotFoundException")],
                    ("create_access_key", "UserName", "u"): [PermanentActuationError("denied", code="AccessDenied")]})
    result, counted = await _run("aws.iam.rotate_access_key",
                                 {"user_name": "u", "access_key_id": "AKIAOLDOLDOLDOLDOLD1",
                                  "secret_name": "responder/iam/u", "delete_inactive_spare": True}, aws)
    assert counted == 1
    assert result.changed is True
    assert "deleted the Inactive spare key AKIASPARESPARESPARE2 of u (undo cannot bring it back)" in str(result.error)
    assert result.code == "AccessDenied"


async def test_snapshots_taken_before_a_failure_are_named():
    """The second volume's snapshot fails: the first snapshot is named in the error and the run stays counted."""
    aws = Scripted({"describe_volumes": {"Volumes": [{"VolumeId": "vol-1"}, {"VolumeId": "vol-2"}]},
                    "describe_snapshots": {"Snapshots": []}, "create_snapshot": {"SnapshotId": "snap-1"}},
                   {("create_snapshot", "VolumeId", "vol-2"): [PermanentActuationError("quota", code="SnapshotLimit")]})
    result, counted = await _run("aws.ec2.snapshot_volumes", {"instance_id": "i-0123456789abcdef0"}, aws)
    assert counted == 1
    assert result.after == {"snapshots": {"vol-1": "snap-1"}}
    assert "partly done before it failed: snapshot snap-1 of vol-1" in str(result.error)


def test_the_actuators_that_change_several_things_in_turn():
    """The audit's list: every actuator whose apply can fail after a change it made declares `changes_in_turn`."""
    assert sorted(a.name for a in registry if getattr(type(a), "changes_in_turn", False)) == [
        "aws.ec2.isolate_instance", "aws.ec2.restore_instance_groups", "aws.ec2.snapshot_volumes",
        "aws.ec2.start_instance", "aws.ec2.stop_instance", "aws.iam.rotate_access_key",
        "aws.sagemaker.isolate_endpoint", "aws.sagemaker.release_endpoint", "model.quarantine_version",
        "model.rollback_to_last_signed", "model.switch_version"]


async def test_a_bug_after_a_partial_change_is_logged_with_its_traceback():
    """A bug (no ActuationError) raised after a partial change is logged as actuator_raised, and still recorded."""
    with capture_logs() as logs:
        result, counted = await _run("aws.sagemaker.isolate_endpoint",
                                     {"endpoint_name": "ep", "role_names": ["inference-gateway", "ghost"]},
                                     _sagemaker(KeyError("boom")))
    assert (result.status, result.changed, counted) == (StepStatus.FAILED, True, 1)
    assert [e.get("exc_info") for e in logs if e["event"] == "actuator_raised"] == [True]


async def test_a_read_back_that_fails_after_a_possible_change_still_records_the_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The read after a possible partial change raising a bug leaves the failure recorded, may have changed (null)."""
    reads = []

    async def observe(call: StepCall) -> Any:
        reads.append(call)
        if len(reads) > 1:
            raise RuntimeError("a bug in the read")
        return await real(call)

    real = runner.observe
    monkeypatch.setattr(runner, "observe", observe)
    aws = _sagemaker(TransientActuationError("slow down", code="Throttling"), _gone("ghost"))
    with capture_logs() as logs:
        result, counted = await _run("aws.sagemaker.isolate_endpoint",
                                     {"endpoint_name": "ep", "role_names": ["inference-gateway", "ghost"]}, aws,
                                     attempts=2)
    assert (result.status, result.permanent, counted) == (StepStatus.FAILED, None, 1)
    assert "partial_readback_failed" in [e["event"] for e in logs]
