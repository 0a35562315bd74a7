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
    """Far behind (high watermark 5002); its second poll rebalances as aiokafka does (eagerly: partition 0 revoked,
    then the new assignment, `back`, which may give it straight back) and records the partition series each poll."""

    def __init__(self, service: Service, handled: asyncio.Event, back: set[TopicPartition]) -> None:
        super().__init__(FakeBroker(records=2))
        self.service, self.handled, self.back = service, handled, back
        self.started = True
        self.owned = {TP}
        self.seen: dict[int, list[str]] = {}

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    def highwater(self, tp: TopicPartition) -> int | None:
        return 5002

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self.polls += 1
        self.seen[self.polls] = _exposed(self.service, *PARTITION_SERIES)
        if self.polls == 2:
            await self.service.ingest._listener.on_partitions_revoked({TP})
            self.seen[0] = _exposed(self.service, *PARTITION_SERIES)  # revoked, not assigned yet
            self.owned = set(self.back)
            await self.service.ingest._listener.on_partitions_assigned(self.back)
            return {}
        if self.polls == 3:  # the chunk in hand ends after the rebalance; then the test ends
            self.handled.set()
            for _ in range(5):
                await asyncio.sleep(0)
            self.service._stop.set()
        return {TP: self.broker.log} if self.polls == 1 else {}


async def _rebalanced(tmp_path: Any, back: set[TopicPartition]) -> tuple[Service, _Revoking]:
    """A service whose partition 0 is revoked with a chunk in hand, then `back` assigned; its alert loop run."""
    service = Service(_settings(tmp_path, topics=["a"], max_batch=2, max_in_flight=3), aws=FakeIam(), runbooks=[])
    handled = asyncio.Event()
    consumer = _Revoking(service, handled, back)

    async def handle(batch: dict[Any, list[Any]]) -> None:
        await handled.wait()  # the chunk is in hand while the partition is revoked

    service.flow.handle = handle
    real = service.ingest.consumer
    service.ingest.consumer = consumer  # type: ignore[assignment]
    try:
        await asyncio.wait_for(service._alerts_loop(), 10)  # a hang guard
    except BaseException:
        await _closed(service)
        raise
    finally:
        service.ingest.consumer = real
    return service, consumer


async def test_a_partition_moved_away_leaves_no_lag_in_flight_paused_or_pauses_series(tmp_path):
    """Once a rebalance gives its partition to another replica, none of its series is left, nor after its chunk ends."""
    service, consumer = await _rebalanced(tmp_path, set())
    try:
        assert 'responder_consumer_lag{partition="0",topic="a"} 5000.0' in consumer.seen[2]  # before
        assert 'responder_partition_pauses_total{partition="0",topic="a"} 1.0' in consumer.seen[2]
        assert consumer.seen[3] == []
        assert _exposed(service, *PARTITION_SERIES) == []
    finally:
        await _closed(service)


async def test_a_partition_revoked_and_assigned_straight_back_keeps_its_series_through_the_rebalance(tmp_path):
    """An eager rebalance that gives the partition back removes none of its series: the lag is exported at each poll."""
    service, consumer = await _rebalanced(tmp_path, {TP})
    try:
        lag = 'responder_consumer_lag{partition="0",topic="a"}'
        for poll in (0, 3):  # between the revocation and the assignment, and after it before any fetch
            assert any(line.startswith(lag) for line in consumer.seen[poll]), poll
            assert any(line.startswith("responder_partition_paused{") for line in consumer.seen[poll]), poll
        assert f"{lag} 5000.0" in _exposed(service, *PARTITION_SERIES)
        assert 'responder_partition_in_flight{partition="0",topic="a"} 0.0' in _exposed(service, *PARTITION_SERIES)
    finally:
        await _closed(service)


async def test_a_stopped_service_exports_no_partition_series(tmp_path):
    """The teardown removes every partition's series once the alert consumer has left its group."""
    service = Service(_settings(tmp_path), aws=FakeIam(), runbooks=[])
    service.metrics.partitions.lag.labels("a", "0").set(7)
    service.metrics.partitions.flow(TopicPartition("a", 1), 3, True, True)
    assert len(_exposed(service, *PARTITION_SERIES)) == 4
    await service._close_started([])
    assert _exposed(service, *PARTITION_SERIES) == []
