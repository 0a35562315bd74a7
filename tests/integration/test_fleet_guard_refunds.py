"""Fleet-wide quota slots (moto's DynamoDB): a permanent failure or a full second quota gives back the slot a step took
afresh, and only that one; a replica whose clock is off says so at start."""

from __future__ import annotations

import time

from structlog.testing import capture_logs

from responder.engine.fleetguard import FleetGuard
from responder.engine.guards import GuardPolicy
from responder.errors import ActuationError
from responder.models.runbook import Quota
from responder.models.step import StepResult, StepStatus
from tests.kit import DEACTIVATE_STEPS, KEY, make_kit

T = 1_800_000_000.0
IAM_HOUR = Quota(actuator="aws.iam.*", max=1, window=3600)
DEACTIVATE = "aws.iam.deactivate_access_key"


def _result(key: str, *, permanent: bool) -> StepResult:
    return StepResult(step="s", actuator=DEACTIVATE, target="t", key=key, status=StepStatus.FAILED, error="x",
                      permanent=permanent)


async def _guard(aws, unique: str, quotas: list[Quota]) -> FleetGuard:
    guard = FleetGuard(aws, f"guards-{unique}", quotas)
    await guard.ensure_table()
    return guard


async def test_bogus_alerts_naming_missing_targets_cannot_exhaust_the_fleet_wide_quota(aws, unique, tmp_path):
    """Hole 12 fleet-wide: two findings naming missing keys fail permanently, then the real one runs unattended."""
    quota = Quota(actuator="aws.iam.*", max=2, window=3600)
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS}, policy=GuardPolicy(quotas=[quota]))
    kit.engine.fleet_guard = await _guard(aws, unique, [quota])
    await kit.engine.fleet_guard.refresh()  # the kill switch read once: off
    kit.engine.guards.global_shared = True
    for i in range(2):
        await kit.send(key=f"AKIABOGUSBOGUSBOGUS{i}", user="ghost")
    assert [r["status"] for r in kit.entries("step.result")] == ["failed"] * 2
    await kit.send()
    assert kit.entries("guard.tripped") == []
    assert kit.iam.keys[KEY]["Status"] == "Inactive"


async def test_a_slot_taken_for_one_quota_is_given_back_when_another_is_full(aws, unique):
    """A step that one quota admits and a second (full) one refuses leaves the first quota's slot free."""
    wide, narrow = Quota(actuator="aws.iam.*", max=2, window=3600), Quota(actuator=DEACTIVATE, max=1, window=3600)
    guard = await _guard(aws, unique, [wide, narrow])
    assert await guard.acquire(DEACTIVATE, "k1", T) is None
    assert await guard.acquire(DEACTIVATE, "k2", T + 1) is not None  # the narrow quota is full
    assert await guard.acquire("aws.iam.delete_login_profile", "k3", T + 2) is None  # wide's 2nd slot was given back


async def test_a_transient_failure_keeps_its_slot(aws, unique):
    """A transient failure (effect unknown) stays counted fleet-wide; a permanent one is given back."""
    guard = await _guard(aws, unique, [IAM_HOUR])
    assert await guard.acquire(DEACTIVATE, "k1", T) is None
    await guard.settle("k1", _result("k1", permanent=False))
    assert await guard.acquire(DEACTIVATE, "k2", T + 1) is not None
    await guard.settle("k2", _result("k2", permanent=True))  # k2 took nothing: nothing to give back
    assert await guard.acquire(DEACTIVATE, "k3", T + 2) is not None


async def test_a_retry_gives_back_no_slot_its_step_key_held_already(aws, unique):
    """A step key's earlier run (a transient failure) holds the slot; its retry failing permanently leaves it held."""
    guard = await _guard(aws, unique, [IAM_HOUR])
    assert await guard.acquire(DEACTIVATE, "k1", T) is None
    await guard.settle("k1", _result("k1", permanent=False))
    assert await guard.acquire(DEACTIVATE, "k1", T + 60) is None  # the retry: the same key's slot
    await guard.settle("k1", _result("k1", permanent=True))
    assert await guard.acquire(DEACTIVATE, "k2", T + 120) is not None


async def test_a_slot_another_step_took_since_is_not_released(aws, unique):
    """A permanent failure gives back a fleet quota slot only while it still holds its own take."""
    quota = Quota(actuator="aws.iam.*", max=1, window=60)
    guard = await _guard(aws, unique, [quota])
    assert await guard.acquire(DEACTIVATE, "k1", T) is None
    assert await guard.acquire(DEACTIVATE, "k2", T + 61) is None  # k1's slot expired: k2 holds it now
    await guard.settle("k1", _result("k1", permanent=True))
    assert await guard.acquire(DEACTIVATE, "k3", T + 62) is not None


async def test_a_replica_whose_clock_is_off_warns_at_start(aws, unique):
    """The table check compares the local clock with AWS's Date header and logs `fleet_clock_skew` when they differ."""
    guard = FleetGuard(aws, f"guards-{unique}", [IAM_HOUR], clock=lambda: time.time() + 3600)
    with capture_logs() as logs:
        await guard.ensure_table()  # created
        await guard.ensure_table()  # found
    skews = [e["skew_s"] for e in logs if e["event"] == "fleet_clock_skew"]
    assert len(skews) == 2, logs
    assert all(s > 3000 for s in skews), skews


def test_a_clock_within_a_few_seconds_of_aws_is_not_reported():
    """A Date header a second off (its resolution) logs nothing; none at all checks nothing."""
    guard = FleetGuard(None, "t", [], clock=lambda: T + 1.0)  # type: ignore[arg-type]
    with capture_logs() as logs:
        assert guard.check_clock({"ResponseMetadata": {"HTTPHeaders": {"date": "Fri, 15 Jan 2027 08:00:00 GMT"}}}) \
            == 1.0
        assert guard.check_clock({}) is None
    assert logs == []


async def test_a_retry_retakes_its_own_slot_not_a_free_one_before_it(aws, unique):
    """A retry retakes the slot its step key holds even when an earlier slot is free."""
    guard = await _guard(aws, unique, [Quota(actuator="aws.iam.*", max=2, window=3600)])
    assert await guard.acquire(DEACTIVATE, "k0", T) is None  # slot 0
    assert await guard.acquire(DEACTIVATE, "k1", T + 1) is None  # slot 1
    await guard.settle("k0", _result("k0", permanent=True))  # slot 0 given back
    await guard.settle("k1", _result("k1", permanent=False))  # slot 1 kept
    assert await guard.acquire(DEACTIVATE, "k1", T + 60, again=True) is None  # the retry: slot 1 again
    assert await guard.acquire(DEACTIVATE, "k2", T + 61) is None  # slot 0 is still free


class _NoBatchRead:
    """The moto session behind a policy that grants the conditional writes but not `dynamodb:BatchGetItem`."""

    def __init__(self, aws) -> None:
        self.aws = aws

    async def call(self, service, operation, **kw):
        if operation == "batch_get_item":
            raise ActuationError("AccessDeniedException: not authorized to perform dynamodb:BatchGetItem",
                                 code="AccessDeniedException")
        return await self.aws.call(service, operation, **kw)


async def test_a_retry_without_the_batch_read_right_takes_a_slot_as_before(aws, unique):
    """A replica without the batch-read right still retakes a slot for a retry, and the quota still holds."""
    guard = await _guard(_NoBatchRead(aws), unique, [Quota(actuator="aws.iam.*", max=2, window=3600)])
    assert await guard.acquire(DEACTIVATE, "k1", T) is None  # slot 0
    await guard.settle("k1", _result("k1", permanent=False))
    with capture_logs() as logs:
        assert await guard.acquire(DEACTIVATE, "k1", T + 60, again=True) is None  # slot 0 again (first in the scan)
    assert "fleet_quota_slot_lookup_failed" in [e["event"] for e in logs]
    assert await guard.acquire(DEACTIVATE, "k2", T + 61) is None  # slot 1
    assert await guard.acquire(DEACTIVATE, "k3", T + 62) is not None  # full
