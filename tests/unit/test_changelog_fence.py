"""A restore reads up to a fence it wrote itself, not to an end offset that trails a leader failover."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.ingest import changelog as changelog_module
from responder.ingest.changelog import Changelog


class StaleLeaderLog:
    """One partition whose new leader's high watermark trails the acknowledged records until it is fetched from."""

    def __init__(self, values: list[tuple[bytes, bytes | None]], visible: int) -> None:
        self.records, self.visible = list(values), visible

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send_and_wait(self, topic: str, value: bytes | None, *, key: bytes, partition: int,
                            headers: Any = ()) -> Any:
        self.records.append((key, value))
        return SimpleNamespace(offset=len(self.records) - 1)


class StaleConsumer:
    """Serves the log up to its visible high watermark, which catches up after the first fetch."""

    log: StaleLeaderLog

    def __init__(self, **_: Any) -> None:
        self.at = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, _: Any) -> None: ...

    async def seek_to_beginning(self, _: Any) -> None:
        self.at = 0

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tps[0]: self.log.visible}

    def highwater(self, _: Any) -> int:
        return self.log.visible

    async def position(self, _: Any) -> int:
        return self.at

    async def getmany(self, tp: Any, **_: Any) -> dict[Any, list[Any]]:
        got = [SimpleNamespace(key=k, value=v) for k, v in self.log.records[self.at:self.log.visible]]
        self.at = self.log.visible
        self.log.visible = len(self.log.records)  # the followers fetched: the watermark is current again
        return {tp: got} if got else {}


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
