"""Rebalances that land between a poll and the lanes: what was polled before them is not handled after them."""

from __future__ import annotations

import asyncio
from typing import Any

from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import TP, AssignmentConsumer
from tests.fakes import FakeIam


def _record(offset: int) -> RawRecord:
    return RawRecord(topic="a", partition=0, offset=offset, key=b"k", value=b'{"x": 1}')


async def test_a_batch_polled_before_a_rebalance_in_the_kill_switch_read_is_not_handled(tmp_path) -> None:
    """A batch polled before a rebalance in the kill-switch read is not handled; no offset passes dropped records."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        fleet_guard_table="guards", kafka_commit_interval_ms=0)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    real = service.ingest.consumer
    service.ingest.consumer = AssignmentConsumer()  # type: ignore[assignment]
    handled: list[int] = []
    committed: list[dict[Any, int]] = []
    polls = [{TP: [_record(3), _record(4)]}, {TP: [_record(5)]}]
    prepare = service.pipeline.prepare_batch

    def prepare_batch(records: Any) -> Any:
        records = list(records)
        handled.extend(r.offset for r in records)
        return prepare(records)

    async def poll(timeout_ms: int = 200) -> dict[Any, list[RawRecord]]:
        if polls:
            return polls.pop(0)
        service._stop.set()  # the consumer would fetch 3 and 4 again from the committed offset: the test ends
        await asyncio.sleep(0.01)
        return {}

    rebalanced = False

    async def refresh() -> bool:
        nonlocal rebalanced
        if len(polls) == 0 and not rebalanced:  # after the second poll: the group rebalances meanwhile
            rebalanced = True
            await service._on_revoked([TP])  # 3 and 4, still queued in the lane, are dropped
            await service._on_assigned([TP])  # aiokafka starts the partition again at its committed offset
        return False

    async def commit(offsets: dict[Any, int]) -> None:
        committed.append(dict(offsets))

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        pass  # an unknown shape: dead-lettered, handled all the same

    service.pipeline.prepare_batch = prepare_batch  # type: ignore[method-assign]
    service.ingest.poll = poll  # type: ignore[method-assign]
    service.ingest.commit = commit  # type: ignore[method-assign]
    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    assert service.fleet_guard is not None
    service.fleet_guard.refresh = refresh  # type: ignore[method-assign]
    try:
        await asyncio.wait_for(service._alerts_loop(), 10)  # a hang guard
        assert rebalanced
        assert 5 not in handled  # polled before the rebalance, from a position the assignment reset
        assert all(offsets[TP] <= 3 for offsets in committed), committed
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()
