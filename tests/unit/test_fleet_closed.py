"""The fleet's `~closed#` changelog records are bounded like the engine's memory of evicted group keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.engine import state as state_module
from responder.engine.partitions import closed_key, expired
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import CLOSED_HORIZON, EngineState
from responder.fleet import FleetState
from tests.fleet_kit import COOLDOWN_RB, CompactedChangelog, from_partition
from tests.kit import make_kit


def test_the_state_reports_the_group_keys_it_forgets_past_the_horizon() -> None:
    """An eviction past the horizon reports each group key it forgot, and the next eviction reports only its own."""
    state = EngineState()
    state.restore(EngineSnapshot(closed=[("rb", "g1", 10.0, 100.0), ("rb", "g2", 10.0, 200.0)]))
    state.evict(150.0 + CLOSED_HORIZON, {})
    assert state.forgotten == [("rb", "g1")]
    assert state.closed_until("rb", "g2") == 10.0
    state.evict(160.0 + CLOSED_HORIZON, {})
    assert state.forgotten == []


def test_the_state_reports_the_group_keys_it_forgets_over_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore over MAX_CLOSED keeps the newest evictions (whatever the order merged) and reports the others."""
    monkeypatch.setattr(state_module, "MAX_CLOSED", 2)
    state = EngineState()
    state.restore(EngineSnapshot(closed=[("rb", "g3", 1.0, 300.0), ("rb", "g1", 1.0, 100.0),
                                         ("rb", "g2", 1.0, 200.0)]))
    assert state.forgotten == [("rb", "g1")]
    assert [state.closed_until("rb", g) for g in ("g1", "g2", "g3")] == [None, 1.0, 1.0]


def test_expired_splits_off_the_closed_keys_past_the_horizon() -> None:
    """Only `~closed#` entries evicted before the horizon are split off (their keys named); other slices are kept."""
    fresh = EngineSnapshot(closed=[("rb", "g2", 1.0, 500.0)])
    quotas = EngineSnapshot(quotas=[])
    kept, stale = expired([EngineSnapshot(closed=[("rb", "g1", 1.0, 100.0)]), fresh, quotas], 400.0)
    assert kept == [fresh, quotas]
    assert stale == [closed_key("rb", "g1")]


async def _evicted(tmp_path: Path) -> tuple[FleetState, CompactedChangelog, str]:
    """A fleet member owning partition 0 whose one incident was evicted (its `~closed#` record written)."""
    kit = make_kit(tmp_path, {"rb": COOLDOWN_RB})
    log = CompactedChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    fleet.owned = {0}
    await kit.send()
    [incident] = kit.engine.state.incidents.all()
    await fleet.on_durable(from_partition(kit, 0))
    kit.clock.now += 3 * 3600
    assert await fleet.evict() == [incident.id]
    key = closed_key("rb", incident.group_key)
    assert log.closed(0) == [key]
    return fleet, log, key


async def test_a_closed_record_is_tombstoned_when_the_engine_forgets_its_key(tmp_path: Path) -> None:
    """Once the horizon has passed, the eviction that forgets a group key tombstones its `~closed#` record."""
    fleet, log, key = await _evicted(tmp_path)
    fleet.engine.clock.now += CLOSED_HORIZON / 2  # type: ignore[attr-defined]
    await fleet.evict()
    assert log.closed(0) == [key]
    fleet.engine.clock.now += CLOSED_HORIZON  # type: ignore[attr-defined]
    await fleet.evict()
    assert log.closed(0) == []
    assert (0, key) in log.tombstones
    assert fleet.closed.held == {}


async def test_a_restore_after_the_horizon_drops_and_tombstones_the_closed_records(tmp_path: Path) -> None:
    """A new owner restoring after the horizon merges no stale `~closed#` record and tombstones it."""
    fleet, log, key = await _evicted(tmp_path)
    fleet.revoke([0])
    (tmp_path / "other").mkdir()
    kit = make_kit(tmp_path / "other", {"rb": COOLDOWN_RB})
    kit.clock.now = fleet.engine.clock() + CLOSED_HORIZON + 1  # type: ignore[attr-defined]
    other = FleetState(kit.engine, log)  # type: ignore[arg-type]
    slices = await other.fetch(0)
    assert slices is not None
    assert not [c for s in slices for c in s.closed]
    assert log.closed(0) == []
    assert (0, key) in log.tombstones
    assert not any(s.closed for s in await log.read(0))


async def test_a_restore_within_the_horizon_keeps_and_later_tombstones_the_closed_record(tmp_path: Path) -> None:
    """A restore within the horizon suppresses the group key and tombstones its record once forgotten."""
    fleet, log, key = await _evicted(tmp_path)
    fleet.revoke([0])
    (tmp_path / "other").mkdir()
    kit = make_kit(tmp_path / "other", {"rb": COOLDOWN_RB})
    kit.clock.now = fleet.engine.clock() + 60  # type: ignore[attr-defined]
    other = FleetState(kit.engine, log)  # type: ignore[arg-type]
    slices = await other.fetch(0)
    assert slices is not None
    other.adopt(0, slices)
    assert [c[1] for c in kit.engine.state.snapshot().closed] == [key.rsplit("#", 1)[1]]
    fleet.engine.clock.now += 2 * CLOSED_HORIZON  # type: ignore[attr-defined]
    log.tombstones.clear()
    await fleet.evict()
    assert log.tombstones == []  # no longer its partition
    kit.clock.now += CLOSED_HORIZON
    await other.evict()
    assert log.tombstones == [(0, key)]
