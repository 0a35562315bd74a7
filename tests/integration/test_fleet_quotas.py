"""Quota windows through a real broker's changelog: a refund reaches every partition of its writer, and a step
resolved by a new owner after a failover counts once."""

from __future__ import annotations

from pathlib import Path

from responder.ingest.changelog import Changelog
from tests.kit import KEY
from tests.unit.test_fleet_quotas import OTHER, _count, _fail_permanently, _in_flight, _member, _restored, _send


async def test_a_new_owner_does_not_count_a_slot_given_back(log: Changelog, tmp_path: Path) -> None:
    """A run refunded after another partition's `~quotas` was written with it is not counted by the replica that
    restores both partitions."""
    kit, _ = _member(tmp_path, "first", log, {0, 1})  # type: ignore[arg-type]
    task, gate = await _in_flight(kit, OTHER, "other")
    await _send(kit, 1)
    assert _count(kit) == 2
    del kit.iam.keys[OTHER]
    gate.set()
    await task
    other = await _restored(_member(tmp_path, "second", log, set()), [1, 0])  # type: ignore[arg-type]
    assert _count(other) == 1


async def test_a_step_resolved_after_a_failover_counts_once(log: Changelog, tmp_path: Path) -> None:
    """The new owner re-running an in-flight step restored from the changelog counts it once, and refunds it when
    it fails permanently."""
    kit, _ = _member(tmp_path, "first", log, {0})  # type: ignore[arg-type]
    task, _ = await _in_flight(kit, KEY, "ml-training")
    task.cancel()
    other = await _restored(_member(tmp_path, "second", log, set()), [0])  # type: ignore[arg-type]
    assert _count(other) == 1
    _fail_permanently(other)
    await _send(other, 0)
    assert _count(other) == 0
