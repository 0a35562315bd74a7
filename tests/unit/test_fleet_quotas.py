"""Quota windows in a fleet: a refund reaches every changelog partition, and a step resolved by a new owner after a
failover counts once (and is refunded if it fails permanently)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from responder.engine.guards import GuardPolicy
from responder.engine.quotas import QuotaWindows
from responder.fleet import FleetState
from responder.models.event import RawRecord
from responder.models.runbook import Quota
from responder.models.step import StepResult, StepStatus
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import DEACTIVATE_STEPS, KEY, Kit, make_kit
from tests.unit.test_fleet_closed import CompactedChangelog

IAM = Quota(actuator="aws.iam.*", max=5, window=3600)
OTHER = "AKIAOTHEROTHEROTHER1"


def _member(tmp_path: Path, name: str, log: CompactedChangelog, owned: set[int]) -> tuple[Kit, FleetState]:
    """A replica owning `owned`, whose durable entries write the changelog (as the service wires it)."""
    (tmp_path / name).mkdir()
    kit = make_kit(tmp_path / name, {"rb": DEACTIVATE_STEPS}, policy=GuardPolicy(quotas=[IAM]))
    kit.iam.add_key("other", OTHER)
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    fleet.owned = set(owned)
    kit.engine.recorder.barriers.append(fleet.on_durable)
    return kit, fleet


async def _send(kit: Kit, partition: int, key: str = KEY, user: str = "ml-training") -> None:
    """Handle one finding as a record of `partition`, and flush."""
    assert kit.pipeline is not None
    value = envelope_bytes(guardduty_finding(key, user))
    await kit.pipeline.handle(RawRecord(topic="t", partition=partition, value=value))
    await kit.engine.recorder.flush()


def _count(kit: Kit) -> int:
    return kit.engine.state.windows.count("*", "aws.iam.*", 3600, kit.clock.now)


async def _in_flight(kit: Kit, key: str, user: str) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Send a finding of partition 0 whose update_access_key call blocks until the returned event is set; returns
    once its call is under way (its intent durable)."""
    gate, called, real = asyncio.Event(), asyncio.Event(), kit.iam.call

    async def call(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        if operation == "update_access_key" and kw.get("AccessKeyId") == key:
            called.set()  # the intent is durable (its changelog written) before the call
            await gate.wait()
        return await real(service, operation, **kw)

    kit.iam.call = call  # type: ignore[method-assign]
    task = asyncio.create_task(_send(kit, 0, key, user))
    await called.wait()
    return task, gate


def _fail_permanently(kit: Kit) -> None:
    """Every update_access_key call from now on finds its key gone (NoSuchEntity: a permanent failure)."""
    real = kit.iam.call

    async def fails(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        if operation == "update_access_key":
            kit.iam.keys.pop(kw["AccessKeyId"], None)
        return await real(service, operation, **kw)

    kit.iam.call = fails  # type: ignore[method-assign]


async def _restored(member: tuple[Kit, FleetState], partitions: list[int]) -> Kit:
    kit, fleet = member
    for partition in partitions:
        slices = await fleet.fetch(partition)
        assert slices is not None
        fleet.adopt(partition, slices)
    return kit


async def test_a_refund_reaches_every_partition_of_the_writer(tmp_path: Path) -> None:
    """A permanent failure's refund is written to every partition the replica owns, so a new owner of a partition
    written while the step was in flight does not count the slot given back."""
    log = CompactedChangelog()
    kit, _ = _member(tmp_path, "first", log, {0, 1})
    task, gate = await _in_flight(kit, OTHER, "other")
    await _send(kit, 1)  # partition 1 written while the other step is in flight: two runs
    assert _count(kit) == 2
    del kit.iam.keys[OTHER]  # the call fails permanently: refunded
    gate.set()
    await task
    assert _count(kit) == 1
    other = await _restored(_member(tmp_path, "second", log, set()), [1, 0])
    assert _count(other) == 1


async def test_a_step_resolved_after_a_failover_counts_once_and_is_refunded(tmp_path: Path) -> None:
    """The new owner of an in-flight step counts its run once when it runs it again, and gives it back when it
    fails permanently."""
    log = CompactedChangelog()
    kit, _ = _member(tmp_path, "first", log, {0})
    task, _ = await _in_flight(kit, KEY, "ml-training")
    task.cancel()  # the replica dies inside the call
    other = await _restored(_member(tmp_path, "second", log, set()), [0])
    assert _count(other) == 1
    _fail_permanently(other)
    await _send(other, 0)  # the record redelivered: the open intent is run again, and fails permanently
    assert [r["status"] for r in other.entries("step.result")] == ["failed"]
    assert _count(other) == 0


def test_a_step_key_run_again_before_its_result_counts_once() -> None:
    """An open intent run again (after a crash) moves its counted run instead of adding one; a permanent failure then
    gives it back."""
    windows = QuotaWindows()
    windows.record("rb", "aws.iam.x", 100.0, "k1")
    windows.record("rb", "aws.iam.x", 160.0, "k1")
    assert windows.count("*", "aws.iam.*", 3600, 200.0) == 1
    windows.settle("k1", StepResult(step="s", actuator="aws.iam.x", target="t", key="k1", status=StepStatus.FAILED,
                                    permanent=True))
    assert windows.count("*", "aws.iam.*", 3600, 200.0) == 0


async def test_a_released_partition_takes_its_charges_along(tmp_path: Path) -> None:
    """The charge of an in-flight step is cut into its incident's slice and leaves memory with its partition."""
    log = CompactedChangelog()
    kit, fleet = _member(tmp_path, "first", log, {0})
    task, _ = await _in_flight(kit, KEY, "ml-training")
    assert [len(s.charges) for s in log.keys[0].values() if s is not None and s.incidents] == [1]
    fleet.revoke([0])
    assert kit.engine.state.windows.charges() == []
    task.cancel()


async def test_a_flood_of_refunds_rewrites_only_the_partitions_holding_the_runs(tmp_path: Path) -> None:
    """Steps of partition 0 failing permanently one after another: each refund rewrites `~quotas` where the run was
    written (partition 0), not in every partition the replica owns at each flush."""
    log = CompactedChangelog()
    kit, _ = _member(tmp_path, "first", log, {0, 1, 2, 3})
    written: list[int] = []
    real = log.write

    async def write(partition: int, slices: Any, quotas: Any = None, urgent: bool = False, until: Any = None) -> None:
        if quotas is not None:
            written.append(partition)
        await real(partition, slices, quotas, urgent)

    log.write = write  # type: ignore[method-assign]
    _fail_permanently(kit)
    for _ in range(3):
        kit.iam.add_key("ml-training", KEY)  # found again by the next alert, gone again when deactivated
        await _send(kit, 0)
    assert [r["status"] for r in kit.entries("step.result")] == ["failed"] * 3
    assert set(written) == {0}
    assert _count(kit) == 0


def test_a_refunded_run_says_which_records_may_hold_it() -> None:
    """A refund names the earliest run it took out (records written since may hold it); a run read back from the
    changelog may be in any record, and each is named once."""
    from responder.engine.quotas import QuotaCharge

    failed = StepResult(step="s", actuator="aws.iam.x", target="t", key="k2", status=StepStatus.FAILED,
                        permanent=True)
    windows = QuotaWindows()
    windows.record("rb", "aws.iam.x", 100.0, "k1")
    windows.record("rb", "aws.iam.x", 110.0, "k2")
    assert windows.take_removed() is None
    windows.settle("k2", failed)
    assert (windows.take_removed(), windows.take_removed()) == (2, None)
    windows.load(windows.runs(), [QuotaCharge("k2", "rb", "aws.iam.x", 110.0)])
    windows.settle("k2", failed)
    assert windows.take_removed() == 0
