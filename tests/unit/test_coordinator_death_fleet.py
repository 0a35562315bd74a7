"""A fleet replica's alerts consumer whose group coordinator died is rebuilt as after a real revocation: the timeline
made durable, the partition's state handed over and its producers closed, a restore under way ended, all before the
new consumer joins; the partition it is given again is restored from the changelog before it is consumed."""

from __future__ import annotations

import asyncio
from typing import Any

from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import TP, FakeBroker, GroupConsumer


async def test_a_fleet_alerts_consumer_rebuilt_hands_its_partition_over_first(tmp_path) -> None:
    """A rebuilt fleet alerts consumer hands its partition over before the new one starts and restores it."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    service = Service(settings, runbooks=[])
    fleet = service.fleet
    assert fleet is not None
    real = service.ingest.consumer
    broker = FakeBroker(records=0)
    first, second = GroupConsumer(broker, dies_after=1), GroupConsumer(broker)
    order: list[str] = []
    reads: list[int] = []

    async def read(partition: int) -> list[Any]:
        reads.append(partition)
        return []

    flush, revoke, close = service.recorder.flush, fleet.revoke, fleet.close

    async def flushed() -> None:
        order.append("flush")
        await flush()

    def revoked(partitions: Any) -> None:
        order.append(f"revoke {sorted(partitions)}")
        revoke(partitions)

    async def closed(partitions: Any) -> None:
        order.append(f"close {sorted(partitions)}")
        await close(partitions)

    fleet.changelog.read = read  # type: ignore[method-assign]
    service.recorder.flush = flushed  # type: ignore[method-assign]
    fleet.revoke = revoked  # type: ignore[method-assign]
    fleet.close = closed  # type: ignore[method-assign]
    second.on_start = lambda: order.append(f"start owned={sorted(fleet.owned)} given={sorted(service._given)}")
    service.ingest.consumer = first  # type: ignore[assignment]
    service.ingest._make = lambda: second  # type: ignore[assignment,method-assign]
    try:
        first.subscribe(["a"], service.ingest._listener)
        await first.start()
        await asyncio.wait_for(asyncio.gather(*service._restorers.values()), 10)  # a hang guard
        assert fleet.owned == {0}
        order.clear()
        assert await service._polled(service.ingest, "alerts") == {}  # the poll that killed the coordinator
        assert await service._polled(service.ingest, "alerts") == {}  # found dead: rebuilt
        assert order[:3] == ["flush", "revoke [0]", "close [0]"]
        assert order[3] == "start owned=[] given=[]"
        assert TP in service.ingest.held or fleet.owned == {0}  # held until restored again
        await asyncio.wait_for(asyncio.gather(*service._restorers.values()), 10)
        assert reads == [0, 0]
        assert fleet.owned == {0}
        assert not service.ingest.held
        assert service._rebalance_error is None
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()
