"""Quota windows through a real broker's changelog: a refund reaches every partition of its writer, and a step
resolved by a new owner after a failover counts once."""

from __future__ import annotations

from pathlib import Path

from responder.ingest.changelog import Changelog
from tests.fleet_kit import (
    OTHER,
    count_iam_quota,
    fail_permanently,
    in_flight_finding,
    quota_member,
    restored_kit,
    send_to,
)
from tests.kit import KEY


async def test_a_new_owner_does_not_count_a_slot_given_back(log: Changelog, tmp_path: Path) -> None:
    """A run refunded after another partition's `~quotas` recorded it is not counted by the replica restoring both."""
    kit, _ = quota_member(tmp_path, "first", log, {0, 1})  # type: ignore[arg-type]
    task, gate = await in_flight_finding(kit, OTHER, "other")
    await send_to(kit, 1)
    assert count_iam_quota(kit) == 2
    del kit.iam.keys[OTHER]
    gate.set()
    await task
    other = await restored_kit(quota_member(tmp_path, "second", log, set()), [1, 0])  # type: ignore[arg-type]
    assert count_iam_quota(other) == 1


async def test_a_step_resolved_after_a_failover_counts_once(log: Changelog, tmp_path: Path) -> None:
    """The new owner re-running a restored in-flight step counts it once, and refunds it on permanent failure."""
    kit, _ = quota_member(tmp_path, "first", log, {0})  # type: ignore[arg-type]
    task, _ = await in_flight_finding(kit, KEY, "ml-training")
    task.cancel()
    other = await restored_kit(quota_member(tmp_path, "second", log, set()), [0])  # type: ignore[arg-type]
    assert count_iam_quota(other) == 1
    fail_permanently(other)
    await send_to(other, 0)
    assert count_iam_quota(other) == 0
