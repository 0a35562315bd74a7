"""A fleet's per-incident slices hold exactly what the whole snapshot holds of each incident, read without it."""

from __future__ import annotations

import pytest

from responder.engine.partitions import cut
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.step import StepResult, StepStatus
from tests.state_kit import busy_state


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
