"""What a fleet member writes to the changelog for its incidents, and what a new owner makes of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from responder.engine.incidents import Incident
from responder.engine.partitions import Partitions, cut, merge
from responder.engine.quotas import QuotaRun
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.errors_kafka import ChangelogError
from responder.fleet import FleetState
from responder.ingest import changelog as changelog_module
from responder.ingest.changelog import QUOTAS_KEY, Changelog
from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.fleet_kit import FlakyChangelog, StaleConsumer, StaleLeaderLog, durable_entry, from_partition
from tests.kit import ECHO, WIPE, make_kit


async def test_every_incident_an_event_opens_learns_its_partition(tmp_path: Path) -> None:
    """An event matching two runbooks opens two incidents; both are routed to the event's partition and move."""
    kit = make_kit(tmp_path, {"rb": WIPE % "deny", "rb2": ECHO.format(guards="")})
    await kit.send()
    incidents = {i.id for i in kit.engine.state.incidents.all()}
    assert len(incidents) == 2
    parts = Partitions()
    assert parts.route(from_partition(kit, 4)) == {4: incidents}
    assert parts.owned(4) == incidents
    new_owner = EngineState()
    merge(new_owner, [EngineSnapshot.model_validate_json(s.model_dump_json())
                      for s in cut(kit.engine.state, parts.owned(4)).values()])
    assert new_owner.results() == kit.engine.state.results()
    assert new_owner.parked_steps() == kit.engine.state.parked_steps()


def test_a_runbook_naming_its_incident_after_a_flood_of_other_events_learns_its_partition() -> None:
    """A runbook naming its incident after 100,001 other events still finds the event's origin partition."""
    parts = Partitions()
    parts.route([durable_entry("event.received", "e"), durable_entry("incident.opened", "e", "i1")])
    parts.route([durable_entry("event.received", f"o{n}", partition=5) for n in range(100_001)])
    parts.route([durable_entry("incident.opened", "e", "i2")])
    assert parts.owned(4) == {"i1", "i2"}


def test_a_handled_chunk_leaves_no_origin_behind() -> None:
    """Once a partition's chunk is handled, its events' origins are forgotten, other partitions' kept."""
    parts = Partitions()
    parts.route([durable_entry("event.received", "e4"), durable_entry("event.received", "e5", partition=5)])
    parts.settle([("a", 4)])
    parts.route([durable_entry("incident.opened", "e4", "i4"), durable_entry("incident.opened", "e5", "i5")])
    assert parts.of == {"i5": 5}
    parts.settle([("a", 5)])
    assert not parts._origin
    assert not parts._handling


async def _changelog_holding(monkeypatch: pytest.MonkeyPatch,
                             records: list[tuple[bytes, bytes | None]]) -> Changelog:
    """A changelog whose partition holds `records` (served by the fence test's in-memory log and consumer)."""
    StaleConsumer.log = log = StaleLeaderLog(records, visible=len(records))
    monkeypatch.setattr(changelog_module, "AIOKafkaConsumer", StaleConsumer)
    changelog = Changelog("127.0.0.1:1", "changelog")
    await changelog.stop()  # never started: the fake log stands in for the producer
    monkeypatch.setattr(changelog, "producer", log)
    return changelog


@pytest.mark.parametrize("value", [b"{}", b'{"version": "0", "detail-type": "GuardDuty Finding", "detail": {}}',
                                   EngineSnapshot().model_dump_json().encode()])
async def test_a_changelog_record_that_holds_no_slice_stops_the_restore(monkeypatch: pytest.MonkeyPatch,
                                                                        value: bytes) -> None:
    """A changelog record that is JSON but holds no slice fails the restore loudly, not read as an empty slice."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    live = EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at)])
    changelog = await _changelog_holding(monkeypatch, [(b"i1", live.model_dump_json().encode()), (b"i2", value)])
    with pytest.raises(ChangelogError, match="i2"):
        await changelog.read(0)


async def test_the_changelog_keys_a_fleet_writes_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """An incident's slice, the quota windows and an evicted group key's record all read back; tombstones drop keys."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    records = [(b"i1", EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at)]).model_dump_json().encode()),
               (b"i2", EngineSnapshot(incidents=[Incident("i2", "rb", "g2", at, at)]).model_dump_json().encode()),
               (b"i2", None),
               (QUOTAS_KEY, EngineSnapshot(quotas=[QuotaRun("rb", "test.echo", (1.0,))]).model_dump_json().encode()),
               (b"~closed#rb#g3", EngineSnapshot(closed=[("rb", "g3", 1.0, 2.0)]).model_dump_json().encode())]
    restored = await (await _changelog_holding(monkeypatch, records)).read(0)
    assert [i.id for s in restored for i in s.incidents] == ["i1"]
    assert [r.times for s in restored for r in s.quotas] == [(1.0,)]
    assert [c for s in restored for c in s.closed] == [("rb", "g3", 1.0, 2.0)]


def test_merging_a_partition_keeps_runs_recorded_at_the_same_time() -> None:
    """Two runs at one clock reading count twice after a partition is merged in; a run written twice counts once."""
    state = EngineState()
    state.windows.record("rb", "test.echo", 100.0, "k1")
    state.windows.record("rb", "test.echo", 100.0, "k2")
    same = EngineSnapshot(quotas=state.windows.runs())  # this replica's own windows, read back from another key
    merge(state, [same, EngineSnapshot(quotas=[QuotaRun("rb", "test.echo", (50.0, 100.0))])])
    assert state.windows.count("rb", "test.*", 3600, 200.0) == 3


async def test_a_fleet_chunk_handled_settles_its_partitions(tmp_path: Path) -> None:
    """A fleet replica's chunk, once its entries are durable, settles its partitions' origins (the memory bound)."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        changelog_topic="changelog")
    service = Service(settings, runbooks=[])
    fleet = service.fleet
    assert fleet is not None
    real, fleet.changelog = fleet.changelog, FlakyChangelog()  # type: ignore[assignment]
    fleet.owned = {0}
    settled: list[list[tuple[str, int]]] = []

    async def quiet(*args: Any) -> None:
        pass

    fleet.partitions.settle = lambda chunk: settled.append(list(chunk))  # type: ignore[method-assign]
    service.ingest.deadletter = quiet  # type: ignore[method-assign]
    service.ingest.commit = quiet  # type: ignore[method-assign]
    try:
        await service._handle_batch({TopicPartition("a", 0): [RawRecord(topic="a", value=b"{}")]})
        assert settled == [[("a", 0)]]
    finally:
        fleet.changelog = real
        service.recorder.close()
        await service.close_unstarted()


async def test_every_record_a_fleet_writes_restores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every kind of record the fleet's own writers put in the changelog is read back by a restore, none refused."""
    written: list[tuple[bytes, bytes | None]] = []

    async def send_all(producer: Any, topic: str, records: list[tuple[bytes, bytes | None]], partition: int) -> None:
        written.extend(records)

    monkeypatch.setattr(changelog_module, "send_all", send_all)
    kit = make_kit(tmp_path, {"rb": WIPE % "deny", "rb2": ECHO.format(guards="window: 5m\ncooldown: 1h")})
    changelog = Changelog("127.0.0.1:1", "changelog")
    await changelog.stop()
    fleet = FleetState(kit.engine, changelog)
    fleet.owned = {0}
    await changelog.write(0, {}, quotas=[])  # a replica's windows before its first run
    await kit.send()
    await fleet.on_durable(from_partition(kit, 0))
    kit.clock.now += 3 * 3600
    assert await fleet.evict()  # rb2's incident (rb's waits for its approval)
    assert {key[:8] for key, _ in written} >= {b"~quotas", b"~closed#"}
    restored = await (await _changelog_holding(monkeypatch, written)).read(0)
    assert [i.runbook for s in restored for i in s.incidents] == ["rb"]
    assert [c[0] for s in restored for c in s.closed] == ["rb2"]
