"""Eviction for months of running: closed incidents leave memory, and a redelivery of their events does not act."""

from __future__ import annotations

from datetime import UTC, datetime

from responder.engine.partitions import Partitions, cut, merge, release
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import CLOSED_HORIZON, MAX_CLOSED, EngineState
from tests.kit import ECHO, make_kit


async def test_redelivered_event_of_an_evicted_incident_does_not_act_again(tmp_path):
    """After eviction, the same (old) event redelivered is suppressed as `evicted`; a newer event acts."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="window: 10m\ncooldown: 5m")})
    kit.clock.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    kit.clock.now += 16 * 60
    assert kit.engine.evict()
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    assert len(kit.echo.applied) == 1
    assert not kit.engine.state.incidents.all()
    await kit.send(finding_id="f2", updated="2026-11-25T10:20:00.000Z")
    assert len(kit.echo.applied) == 2


async def test_memory_of_evicted_group_keys_survives_a_snapshot_and_is_bounded(tmp_path):
    """The closed ring travels in the snapshot, keeps at most MAX_CLOSED group keys, and forgets after its horizon."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="window: 10m")})
    kit.clock.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    kit.clock.now += 11 * 60
    kit.engine.evict()
    state = EngineState()
    state.restore(EngineSnapshot.model_validate_json(kit.engine.state.snapshot().model_dump_json()))
    assert len(state.snapshot().closed) == 1
    state.restore(EngineSnapshot(closed=[("rb", f"k{i}", 1.0, 1.0) for i in range(MAX_CLOSED + 10)]))
    assert len(state.snapshot().closed) == MAX_CLOSED
    assert state.closed_until("rb", "k0") is None
    assert state.closed_until("rb", f"k{MAX_CLOSED + 9}") == 1.0
    state.evict(1.0 + CLOSED_HORIZON + 1, {})
    assert state.snapshot().closed == []


async def test_partition_slices_cut_merge_and_release(tmp_path):
    """An incident's slice carries its step results; merged into another state it dedupes; release drops it."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    await kit.send(finding_id="f1")
    parts = Partitions()
    entries = list(kit.engine.recorder.entries())
    for e in entries:  # the kit's records carry no origin: name the partition by hand
        if e.kind == "event.received":
            e.body["origin"] = {"partition": 4}
    touched = parts.route(entries)
    [incident] = touched[4]
    slices = cut(kit.engine.state, {incident})
    other = EngineState()
    merge(other, [EngineSnapshot.model_validate_json(slices[incident].model_dump_json())])
    assert other.results() == kit.engine.state.results()
    release(other, {incident})
    assert other.results() == []
    assert not other.incidents.all()


async def test_quota_windows_do_not_grow_with_history():
    """Runs older than the longest look-back of the quotas (a day here) leave the windows as new ones are recorded."""
    from responder.engine.quotas import QuotaWindows
    from responder.models.runbook import Quota

    windows = QuotaWindows()
    windows.configure([Quota(actuator="test.*", max=5, window=86400)], {"rb": [Quota(actuator="test.*", max=1,
                                                                                      window=86400)]})
    for day in range(30):
        windows.record("rb", "test.echo", day * 86400.0)
    assert all(len(run.times) <= 3 for run in windows.runs())


def test_recorder_resumes_a_long_timeline_from_its_tail(tmp_path):
    """A timeline larger than the tail read resumes at the right seq and head; the chain still verifies."""
    from responder.timeline.recorder import Recorder
    from responder.timeline.store import FileStore
    from responder.timeline.verify import verify_lines

    path = tmp_path / "t.jsonl"
    first = Recorder(FileStore(path))
    for i in range(3000):
        first.append("note", {"i": i, "pad": "x" * 100})
    first.flush_sync()
    head = first.head
    first.close()
    assert path.stat().st_size > 256 * 1024
    again = Recorder(FileStore(path))
    assert (again.next_seq, again.head) == (3000, head)
    again.append("note", {"i": 3000})
    again.close()
    assert verify_lines(path.read_bytes().splitlines()).entries == 3001


async def test_a_cooldown_suppressed_event_redelivered_after_eviction_does_not_act(tmp_path):
    """A cooldown-suppressed event redelivered after its incident was evicted is still suppressed."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="window: 5m\ncooldown: 1h")})
    kit.clock.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    kit.clock.now += 8 * 60
    await kit.send(finding_id="f2", updated="2026-11-25T10:08:00.000Z")  # past the window, inside the cooldown
    assert len(kit.echo.applied) == 1
    kit.clock.now += 66 * 60
    assert kit.engine.evict()
    await kit.send(finding_id="f2", updated="2026-11-25T10:08:00.000Z")  # redelivered
    assert len(kit.echo.applied) == 1
