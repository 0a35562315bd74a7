"""A restore reads up to a fence it wrote itself, not to an end offset that trails a leader failover."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.ingest import changelog as changelog_module
from responder.ingest.changelog import Changelog
from tests.fleet_kit import StaleConsumer, StaleLeaderLog


async def test_restore_after_failover_reads_the_latest_slice_not_a_stale_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the end offset trailing the last acknowledged write, the restore still returns that write."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    old = EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at, events=1)])
    new = EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at, events=2)])
    StaleConsumer.log = log = StaleLeaderLog([(b"i1", old.model_dump_json().encode()),
                                              (b"i1", new.model_dump_json().encode())], visible=1)
    monkeypatch.setattr(changelog_module, "AIOKafkaConsumer", StaleConsumer)
    changelog = Changelog("127.0.0.1:1", "changelog")
    await changelog.stop()  # never started: the fake log stands in for the producer
    monkeypatch.setattr(changelog, "producer", log)
    restored = await changelog.read(0)
    assert [s.incidents[0].events for s in restored] == [2]
    assert log.records[-1] == (b"~fence", None)  # the fence is a tombstone: compaction drops it
