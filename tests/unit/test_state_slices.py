"""A fleet's per-incident slices hold exactly what the whole snapshot holds of each incident, read without it."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from responder.engine.incidents import Incident
from responder.engine.partitions import cut, merge, release
from responder.engine.snapshot import EngineSnapshot, done_record
from responder.engine.state import EngineState
from responder.models.step import StepIntent, StepResult, StepStatus
from tests.state_kit import NOW, busy_state, parked


def _from_snapshot(state: EngineState, incidents: set[str]) -> dict[str, EngineSnapshot]:
    """The definition: each incident's part of the whole snapshot."""
    snap = state.snapshot()
    out = {i.id: EngineSnapshot(incidents=[i]) for i in snap.incidents if i.id in incidents}
    for slice_id, part in out.items():
        part.done = {k: d for k, d in snap.done.items() if d.incident == slice_id}
        part.inflight = {k: f for k, f in snap.inflight.items() if f.incident == slice_id}
        part.parked = [p for p in snap.parked if p.incident == slice_id]
        part.granted = [p for p in snap.granted if p.incident == slice_id]
        part.continuing = [c for c in snap.continuing if c[0].incident == slice_id]
        part.charges = [c for c in snap.charges if c.key in part.inflight]
    return out


@pytest.mark.parametrize("asked", [{"i0"}, {"i1", "i2"}, {"i0", "i4", "gone"}, set()])
def test_a_slice_holds_what_the_snapshot_holds_of_its_incident(asked: set[str]) -> None:
    """Each slice equals its incident's part of the snapshot, byte for byte; an incident not held has none."""
    state = busy_state(6, closed=3)
    got = cut(state, asked)
    want = _from_snapshot(state, asked)
    assert set(got) == set(want) == asked - {"gone"}
    assert {i: s.model_dump_json() for i, s in got.items()} == {i: s.model_dump_json() for i, s in want.items()}
    if "i1" in asked:
        assert all((got["i1"].granted, got["i1"].done, got["i1"].inflight, got["i1"].charges))
    if "i2" in asked:
        assert got["i2"].continuing


def test_slices_follow_evictions_and_restores() -> None:
    """An evicted incident's steps leave its slice; a restored state slices as the one it was taken from."""
    state = busy_state(4)
    for n in range(4):
        state.finish(StepResult(step="b", actuator="test.echo", key=f"fly{n}", status=StepStatus.OK), f"i{n}")
        state.unpark(f"i{n}", "c")
        state.settle(f"i{n}", "c")
    assert sorted(state.evict(10_000.0, {"rb": (1.0, 1.0)})) == ["i0", "i1", "i2", "i3"]
    assert cut(state, {"i0", "i3"}) == {}
    state = busy_state(4)
    restored = EngineState()
    restored.restore(EngineSnapshot.model_validate_json(state.snapshot().model_dump_json()))
    assert {i: s.model_dump_json() for i, s in cut(restored, {"i1", "i3"}).items()} == \
        {i: s.model_dump_json() for i, s in cut(state, {"i1", "i3"}).items()}


def test_slicing_never_takes_the_whole_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flush's slices are read without `snapshot()`: their cost follows what it touched, not the evicted keys."""
    state = busy_state(3, closed=1_000)
    want = {i: s.model_dump_json() for i, s in _from_snapshot(state, {"i1"}).items()}

    def whole(self: EngineState) -> EngineSnapshot:
        raise AssertionError("the whole state was snapshotted to cut one slice")

    monkeypatch.setattr(EngineState, "snapshot", whole)
    assert {i: s.model_dump_json() for i, s in cut(state, {"i1"}).items()} == want


_IDS = [f"i{n}" for n in range(5)]


def _incident(incident: str, seen: float = 0.0) -> Incident:
    return Incident(id=incident, runbook="rb", group_key=f"g{incident}", opened_at=NOW,
                    last_seen=NOW + timedelta(seconds=seen))


def _random_step(rnd: random.Random, state: EngineState, clock: float, shared_keys: bool) -> None:
    """One random change through the state's API, a merge, a release, a restore, a clear or an evicted id reopened."""
    incident = None if rnd.random() < 0.1 else rnd.choice(_IDS)
    key = f"k{rnd.randrange(4)}" if shared_keys or incident is None else f"{incident}:k{rnd.randrange(4)}"
    op, step = rnd.randrange(14), rnd.choice("cd")
    if op in (0, 1):
        state.intend(StepIntent(step=key[-1], actuator="test.echo", key=key, runbook="rb"), incident, clock)
    elif op in (2, 3, 4):
        status = rnd.choice([StepStatus.OK, StepStatus.FAILED])
        state.finish(StepResult(step=key[-1], actuator="test.echo", key=key, status=status), incident)
    elif op == 5:
        state.park(parked(rnd.choice(_IDS), step))
    elif op in (6, 7) and (waiting := list(state._parked.values())):
        chosen = rnd.choice(waiting)
        if op == 6:
            state.grant(chosen, settles=rnd.random() < 0.7)
        else:
            state.unpark(chosen.incident, chosen.step)
            state.deny(chosen, settles=rnd.random() < 0.7)
    elif op == 8:
        state.passed(rnd.choice(_IDS), step, ok=rnd.random() < 0.5)
    elif op == 9:
        state.settle(rnd.choice(_IDS), step)
    elif op == 10:
        state.evict(clock + rnd.choice([0, 1000]), {"rb": (1.0, 1.0)})
    elif op == 11 and incident is not None:  # an incident's slice restored (again) from the changelog
        part = EngineSnapshot(incidents=[_incident(incident, clock)], done={key: done_record(
            {"incident": incident, "params": None, "undone": None,
             "result": StepResult(step="m", actuator="test.echo", key=key, status=StepStatus.OK)})})
        merge(state, [part])
    elif op == 13 and incident is not None and incident not in state.incidents.by_id:  # its id again, after an
        state.incidents.restore(incident, "rb", f"g{incident}", NOW)  # eviction: none of its old steps come back
    elif op == 12:
        which = rnd.randrange(6)
        if which == 0:
            state.clear()
        elif which < 3:
            release(state, set(rnd.sample(_IDS, 2)))
        else:
            state.restore(EngineSnapshot.model_validate_json(state.snapshot().model_dump_json()))


@pytest.mark.parametrize("shared_keys", [False, True])
def test_slices_equal_the_snapshots_parts_after_any_sequence_of_changes(shared_keys: bool) -> None:
    """After each of 80 random changes (60 runs), every slice equals the snapshot's part; JSON too for engine keys."""
    for seed in range(60):
        rnd = random.Random(seed)
        state = EngineState()
        state.restore(EngineSnapshot(incidents=[_incident(i) for i in _IDS[:3]]))
        for n in range(80):
            _random_step(rnd, state, 100.0 + n * rnd.choice([0.0, 1.0, 50.0]), shared_keys)
            asked = set(rnd.sample([*_IDS, "gone"], rnd.randrange(6)))
            got, want = cut(state, asked), _from_snapshot(state, asked)
            assert set(got) == set(want), (seed, n)
            for incident, part in want.items():  # a key finished under two incidents (never the engine's) may
                assert got[incident] == part, (seed, n)  # change its place among the incident's done keys
                if not shared_keys:
                    assert got[incident].model_dump_json() == part.model_dump_json(), (seed, n)
