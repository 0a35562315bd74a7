"""The series the alert rules read: those a rule needs from the start exist at 0 (records per topic, rebuilds per
consumer), in a new service and in one rebuilt after a rejoin; a partition that leaves takes its series with it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from responder.service import Service, rebuilds
from responder.settings import Settings
from tests.consumer_kit import TP, FakeBroker, GroupConsumer
from tests.fakes import FakeIam

PARTITION_SERIES = ("responder_consumer_lag", "responder_partition_in_flight", "responder_partition_paused",
                    "responder_partition_pauses_total")


def _settings(tmp_path: Any, **more: Any) -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                    **{"topics": ["a", "b"], "kafka_commit_interval_ms": 0, **more})


def _exposed(service: Service, *names: str) -> list[str]:
    """The exposition's sample lines of these metrics."""
    return [line for line in service.metrics.exposition().decode().splitlines() if line.startswith(names)]


async def _closed(service: Service) -> None:
    service.recorder.close()
    await service.close_unstarted()


async def test_a_new_service_and_one_rebuilt_after_a_rejoin_export_records_and_rebuilds_at_zero(tmp_path):
    """A fresh service, and the one rebuilt after a rejoin, export records per topic and rebuilds per consumer at 0."""
    build = rebuilds(_settings(tmp_path), aws=FakeIam(), runbooks=[])
    first = build(None)
    await _closed(first)
    second = build(first)
    try:
        for service in (first, second):
            assert sorted(_exposed(service, "responder_records_total")) == [
                'responder_records_total{topic="a"} 0.0', 'responder_records_total{topic="b"} 0.0']
            assert sorted(_exposed(service, "responder_consumer_rebuilds_total")) == [
                f'responder_consumer_rebuilds_total{{consumer="{c}"}} 0.0' for c in ("alerts", "approvals", "operator")]
    finally:
        await _closed(second)


async def test_a_dry_run_has_no_operator_consumer_and_no_series_for_one(tmp_path):
    """A dry run builds no operator consumer, so it exports rebuild series for the alerts and approvals ones only."""
    service = Service(_settings(tmp_path, dry_run=True), aws=FakeIam(), runbooks=[])
    try:
        assert {line.split('"')[1] for line in _exposed(service, "responder_consumer_rebuilds_total")} == {
            "alerts", "approvals"}
    finally:
        await _closed(service)


class _Revoking(GroupConsumer):
    """Far behind (high watermark 5002); its second poll revokes partition 0 as aiokafka does while the group
    rebalances: the old assignment still reported and nothing fetched until the new one comes."""

    def __init__(self, service: Service, handled: asyncio.Event) -> None:
        super().__init__(FakeBroker(records=2))
        self.service, self.handled = service, handled
        self.started = True

    def highwater(self, tp: TopicPartition) -> int | None:
        return 5002

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self.polls += 1
        if self.polls == 2:
            await self.service.ingest._listener.on_partitions_revoked({TP})
            return {}
        if self.polls == 3:  # the chunk in hand ends after the revocation; then the test ends
            self.handled.set()
            for _ in range(5):
                await asyncio.sleep(0)
            self.service._stop.set()
        return {TP: self.broker.log} if self.polls == 1 else {}


async def test_a_revoked_partition_leaves_no_lag_in_flight_paused_or_pauses_series(tmp_path):
    """Once its partition is revoked, a replica exports none of its series, not after the chunk in hand ends either."""
    service = Service(_settings(tmp_path, topics=["a"], max_batch=2, max_in_flight=3), aws=FakeIam(), runbooks=[])
    handled = asyncio.Event()
    real = service.ingest.consumer
    service.ingest.consumer = _Revoking(service, handled)  # type: ignore[assignment]

    async def handle(batch: dict[Any, list[Any]]) -> None:
        await handled.wait()  # the chunk is in hand while the partition is revoked

    service.flow.handle = handle
    seen: list[list[str]] = []
    observe = service.flow.observe

    def observed(*args: Any, **kwargs: Any) -> None:
        if observe is not None:
            observe(*args, **kwargs)
        seen.append(_exposed(service, *PARTITION_SERIES))

    service.flow.observe = observed
    try:
        await asyncio.wait_for(service._alerts_loop(), 10)  # a hang guard
        assert any('responder_consumer_lag{partition="0",topic="a"} 5000.0' in s for s in seen)  # before
        assert any('responder_partition_pauses_total{partition="0",topic="a"} 1.0' in s for s in seen)
        assert _exposed(service, *PARTITION_SERIES) == []
    finally:
        service.ingest.consumer = real
        await _closed(service)


async def test_a_stopped_service_exports_no_partition_series(tmp_path):
    """The teardown removes every partition's series once the alert consumer has left its group."""
    service = Service(_settings(tmp_path), aws=FakeIam(), runbooks=[])
    service.metrics.partitions.lag.labels("a", "0").set(7)
    service.metrics.partitions.flow(TopicPartition("a", 1), 3, True, True)
    assert len(_exposed(service, *PARTITION_SERIES)) == 4
    await service._close_started([])
    assert _exposed(service, *PARTITION_SERIES) == []
