"""Quota windows in a fleet: a refund reaches every changelog partition, and a step resolved by a new owner after a
failover counts once (and is refunded if it fails permanently)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from responder.engine.quotas import QuotaWindows
from responder.models.step import StepResult, StepStatus
from tests.fleet_kit import (
    OTHER,
    CompactedChangelog,
    count_iam_quota,
    fail_permanently,
    in_flight_finding,
    quota_member,
    restored_kit,
    send_to,
)
from tests.kit import KEY


async def test_a_refund_reaches_every_partition_of_the_writer(tmp_path: Path) -> None:
    """A permanent failure's refund is written to every partition the replica owns."""
    log = CompactedChangelog()
    kit, _ = quota_member(tmp_path, "first", log, {0, 1})
    task, gate = await in_flight_finding(kit, OTHER, "other")
    await send_to(kit, 1)  # partition 1 written while the other step is in flight: two runs
    assert count_iam_quota(kit) == 2
    del kit.iam.keys[OTHER]  # the call fails permanently: refunded
    gate.set()
    await task
    assert count_iam_quota(kit) == 1
    other = await restored_kit(quota_member(tmp_path, "second", log, set()), [1, 0])
    assert count_iam_quota(other) == 1


async def test_a_step_resolved_after_a_failover_counts_once_and_is_refunded(tmp_path: Path) -> None:
    """The new owner of an in-flight step counts its rerun once and gives it back when it fails permanently."""
    log = CompactedChangelog()
    kit, _ = quota_member(tmp_path, "first", log, {0})
    task, _ = await in_flight_finding(kit, KEY, "ml-training")
    task.cancel()  # the replica dies inside the call
    other = await restored_kit(quota_member(tmp_path, "second", log, set()), [0])
    assert count_iam_quota(other) == 1
    fail_permanently(other)
    await send_to(other, 0)  # the record redelivered: the open intent is run again, and fails permanently
    assert [r["status"] for r in other.entries("step.result")] == ["failed"]
    assert count_iam_quota(other) == 0


def test_a_step_key_run_again_before_its_result_counts_once() -> None:
    """An intent rerun after a crash moves its counted run rather than adding one; a permanent failure refunds it."""
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
    kit, fleet = quota_member(tmp_path, "first", log, {0})
    task, _ = await in_flight_finding(kit, KEY, "ml-training")
    assert [len(s.charges) for s in log.keys[0].values() if s is not None and s.incidents] == [1]
    fleet.revoke([0])
    assert kit.engine.state.windows.charges() == []
    task.cancel()


async def test_a_flood_of_refunds_rewrites_only_the_partitions_holding_the_runs(tmp_path: Path) -> None:
    """Each refund rewrites `~quotas` only in the partition holding the run, not in every partition owned."""
    log = CompactedChangelog()
    kit, _ = quota_member(tmp_path, "first", log, {0, 1, 2, 3})
    written: list[int] = []
    real = log.write

    async def write(partition: int, slices: Any, quotas: Any = None, urgent: bool = False, until: Any = None) -> None:
        if quotas is not None:
            written.append(partition)
        await real(partition, slices, quotas, urgent)

    log.write = write  # type: ignore[method-assign]
    fail_permanently(kit)
    for _ in range(3):
        kit.iam.add_key("ml-training", KEY)  # found again by the next alert, gone again when deactivated
        await send_to(kit, 0)
    assert [r["status"] for r in kit.entries("step.result")] == ["failed"] * 3
    assert set(written) == {0}
    assert count_iam_quota(kit) == 0


def test_a_refunded_run_says_which_records_may_hold_it() -> None:
    """A refund names the earliest run it took out and the records that may hold it, each named once."""
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
