"""The engine's state is a value: snapshot, restore, evict; and every time in the engine is the injected clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.step import StepIntent, StepResult, StepStatus
from responder.service import Service
from responder.settings import Settings
from tests.kit import ECHO, KEY, make_kit

WIPE = """\
steps:
  - id: wipe
    actuator: test.wipe
    with: {target: t1}
"""


async def test_snapshot_round_trips_through_json_and_restores_behaviour(tmp_path):
    """A restored snapshot (via JSON) remembers the done step: the next event for the key does not act again."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    await kit.send(finding_id="f1")
    wire = kit.engine.state.snapshot().model_dump_json()
    kit.engine.state.clear()
    assert kit.engine.state.results() == []
    kit.engine.state.restore(EngineSnapshot.model_validate_json(wire))
    await kit.send(finding_id="f1")
    assert len(kit.echo.applied) == 1
    assert kit.engine.state.snapshot().model_dump_json() != EngineSnapshot().model_dump_json()


async def test_snapshot_keeps_parked_steps_and_quota_windows(tmp_path):
    """Parked approvals and quota windows survive snapshot → JSON → restore into a fresh state."""
    guards = "guards: {quotas: [{actuator: test.echo, max: 1, window: 1h}]}"
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards=guards), "w": WIPE})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    snap = EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json())
    state = EngineState()
    state.restore(snap)
    assert [p.step for p in state.parked_steps()] == ["wipe"]
    assert state.windows.count("rb", "test.echo", 3600, kit.clock()) == 1


def test_a_permanent_failure_after_restore_refunds_its_quota_run():
    """An in-flight run's charge survives snapshot → JSON → restore; its permanent failure then refunds it."""
    state = EngineState()
    intent = StepIntent(step="s", actuator="aws.iam.x", key="k1", runbook="rb", clock=100.0)
    state.intend(intent, None, 100.0)
    state.intend(intent.model_copy(update={"key": "k2"}), None, 101.0)
    restored = EngineState()
    restored.restore(EngineSnapshot.model_validate_json(state.snapshot().model_dump_json()))
    restored.finish(StepResult(step="s", actuator="aws.iam.x", key="k1", status=StepStatus.FAILED, permanent=True),
                    None)
    restored.finish(StepResult(step="s", actuator="aws.iam.x", key="k2", status=StepStatus.FAILED, permanent=False),
                    None)
    assert restored.windows.count("rb", "aws.iam.*", 3600, 200.0) == 1
    assert restored.windows.count("*", "aws.iam.*", 3600, 200.0) == 1


async def test_closed_incidents_are_evicted_after_window_and_cooldown_on_the_engine_clock(tmp_path):
    """An incident and its step results are dropped once window + cooldown have passed on the injected clock."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="window: 10m\ncooldown: 5m")})
    kit.clock.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    kit.clock.now += 14 * 60
    assert kit.engine.evict() == []
    assert kit.engine.state.results()
    kit.clock.now += 2 * 60
    [gone] = kit.engine.evict()
    assert gone not in kit.engine.state.incidents.by_id
    assert kit.engine.state.results() == []


async def test_parked_incidents_are_not_evicted(tmp_path):
    """An incident with a step waiting for a human stays, however old."""
    kit = make_kit(tmp_path, {"w": WIPE})
    await kit.send()
    kit.clock.now += 10 * 86400
    assert kit.engine.evict() == []


async def test_quota_window_advances_on_the_injected_clock_only(tmp_path, monkeypatch):
    """A jump of the machine's clock does not free the quota; moving the engine's clock past the window does."""
    guards = "guards: {quotas: [{actuator: test.echo, max: 1, window: 60}]}"
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards=guards)})
    await kit.send(key="AKIAABCDEFGHIJKLMNO1", user="user-1")
    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 86400)
    monkeypatch.setattr(time, "monotonic", lambda: real + 86400)
    await kit.send(key="AKIAABCDEFGHIJKLMNO2", user="user-2")
    assert len(kit.echo.applied) == 1
    kit.clock.now += 61
    await kit.send(key="AKIAABCDEFGHIJKLMNO3", user="user-3")
    assert len(kit.echo.applied) == 2


async def test_incident_window_and_approval_deadline_follow_the_injected_clock(tmp_path, monkeypatch):
    """Approval expiry and future-dated event clamping use the engine's clock, not the machine's."""
    kit = make_kit(tmp_path, {"w": WIPE})
    await kit.send(key=KEY)
    monkeypatch.setattr(time, "time", lambda: kit.clock() + 10 * 86400)
    assert await kit.engine.expire() == 0
    kit.clock.now += 3601
    assert await kit.engine.expire() == 1


async def test_service_takes_one_clock_for_engine_and_timeline(tmp_path):
    """Service(clock=…) stamps timeline entries and drives the engine with that clock."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl",
                        runbooks_dir=tmp_path, topics=["a"])
    service = Service(settings, runbooks=[], clock=lambda: 1_700_000_000.0)
    entry = service.recorder.append("test.entry", {})
    assert entry.at == datetime.fromtimestamp(1_700_000_000.0, UTC).isoformat(timespec="microseconds")
    assert service.engine.clock() == 1_700_000_000.0
    service.recorder.close()
    await service.close_unstarted()


async def test_granted_steps_survive_snapshot_and_fleet_slices(tmp_path):
    """A released step without a result is kept through snapshot → JSON → restore and through cut/merge per incident."""
    from responder.engine.partitions import cut, merge

    kit = make_kit(tmp_path, {"w": WIPE})
    await kit.send()
    [parked] = kit.engine.state.parked_steps()
    kit.engine.state.grant(parked)
    snap = EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json())
    state = EngineState()
    state.restore(snap)
    assert [(p.incident, p.step) for p in state.granted()] == [(parked.incident, "wipe")]
    assert state.parked_steps() == []
    merged = EngineState()
    merge(merged, cut(state, {parked.incident}).values())
    assert [p.step for p in merged.granted()] == ["wipe"]
    merged.finish(StepResult(step="wipe", actuator="test.wipe", key="k", status=StepStatus.OK), parked.incident)
    assert merged.granted() == []
