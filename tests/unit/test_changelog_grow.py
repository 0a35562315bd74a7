"""A fleet member given an alert partition the changelog has no partition for (one added while the fleet runs) grows
the changelog first, idempotently with other members doing the same; when growing is refused it does not consume
that partition, and says why in its log, a metric and `/readyz`."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import InvalidPartitionsError, TopicAuthorizationFailedError

from responder.errors_kafka import ChangelogError, ChangelogTooShort
from responder.fleet import FleetState
from responder.ingest import changelog as module
from responder.ingest.changelog import Changelog
from tests.fleet_kit import fleet_service
from tests.kit import ECHO, make_kit, restore

TOPIC = "changelog"


class _Broker:
    """A topic's partition count as the cluster has it, grown by CreatePartitions as a broker does: a total count
    the topic already has or passes is refused (InvalidPartitionsError), never shrunk; `refusal` refuses any."""

    def __init__(self, count: int, refusal: Exception | None = None) -> None:
        self.count, self.refusal, self.requests = count, refusal, []

    async def create_partitions(self, topics: dict[str, Any]) -> None:
        total = topics[TOPIC].total_count
        self.requests.append(total)
        await asyncio.sleep(0)  # another member's request may come in between
        if self.refusal is not None:
            raise self.refusal
        if total <= self.count:
            raise InvalidPartitionsError(f"Topic currently has {self.count} partitions, which is higher than the "
                                         f"requested {total}.")
        self.count = total


def _member(broker: _Broker, monkeypatch: pytest.MonkeyPatch) -> Changelog:
    """A changelog client whose producer's metadata is the broker's count as last read (`force_metadata_update`): a
    stand-in made in the real one's place, so no Kafka producer is left unclosed."""
    seen = {"count": broker.count}

    async def partitions_for(topic: str) -> set[int]:
        return set(range(seen["count"]))

    async def refresh() -> None:
        seen["count"] = broker.count

    producer = SimpleNamespace(partitions_for=partitions_for, client=SimpleNamespace(force_metadata_update=refresh))
    monkeypatch.setattr(module, "AIOKafkaProducer", lambda **kwargs: producer)

    async def with_admin(bootstrap: str, call: Any, **kwargs: Any) -> Any:
        return await call(broker)

    monkeypatch.setattr(module, "with_admin", with_admin)
    return Changelog("127.0.0.1:9", TOPIC)


async def test_a_partition_the_changelog_has_asks_the_cluster_nothing(monkeypatch) -> None:
    """The common case (every restore): the metadata shows the partition, no CreatePartitions is sent."""
    broker = _Broker(3)
    await _member(broker, monkeypatch).ensure_partition(2)
    assert broker.requests == []


async def test_an_added_alert_partition_grows_the_changelog_to_hold_it(monkeypatch) -> None:
    """A new alert partition 3 grows the changelog to 4 partitions, returning once the metadata shows partition 3."""
    broker = _Broker(3)
    await _member(broker, monkeypatch).ensure_partition(3)
    assert broker.requests == [4]
    assert broker.count == 4


async def test_members_growing_it_at_once_all_succeed_and_it_never_shrinks(monkeypatch) -> None:
    """Members growing the changelog at once all succeed, a request already met being success; it never shrinks."""
    broker = _Broker(3)
    members = [_member(broker, monkeypatch) for _ in range(4)]
    await asyncio.gather(*(m.ensure_partition(p) for m, p in zip(members, (5, 3, 4, 5), strict=True)))
    assert broker.count == 6
    assert max(broker.requests) == 6


async def test_a_refused_grow_says_how_to_grow_it_by_hand(monkeypatch) -> None:
    """No ALTER on the topic: ChangelogTooShort names the topic, the partition, the ACL to grant and the command."""
    broker = _Broker(3, refusal=TopicAuthorizationFailedError("Could not create partitions for changelog"))
    with pytest.raises(ChangelogTooShort) as raised:
        await _member(broker, monkeypatch).ensure_partition(3)
    assert raised.value.partition == 3
    message = str(raised.value)
    assert "grant this principal ALTER" in message
    assert "kafka-topics.sh --alter --topic changelog --partitions N" in message
    assert "alert partition 3 is not consumed" in message


class _ShortChangelog:
    """Partition 3 is missing and cannot be grown until `grown`."""

    txn = None  # no Kafka transactions

    def __init__(self) -> None:
        self.grown = False

    async def read(self, partition: int) -> list[Any]:
        if partition == 3 and not self.grown:
            raise ChangelogTooShort("changelog has 3 partition(s), none for alert partition 3 ...", 3)
        return []

    async def write(self, *args: Any, **kwargs: Any) -> None:
        return None


async def test_a_partition_the_changelog_cannot_hold_is_held_counted_and_retried(tmp_path) -> None:
    """A partition the changelog cannot hold is not owned, counted in `short`, and taken once the changelog grows."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")})
    log = _ShortChangelog()
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    assert await restore(fleet, [0, 3]) == {3}
    assert (fleet.owned, fleet.short) == ({0}, {3})
    assert "none for alert partition 3" in fleet.failed[3]
    log.grown = True
    assert await restore(fleet, [3]) == set()
    assert (fleet.owned, fleet.short) == ({0, 3}, set())


async def test_the_metric_and_readyz_say_a_partition_waits_for_the_changelog(tmp_path) -> None:
    """`responder_changelog_partitions_missing` counts partitions waiting for the changelog; `/readyz` is not ready."""
    service = fleet_service(tmp_path)
    assert service.fleet is not None
    service.ready.set()
    service.fleet._failed(3, ChangelogTooShort("changelog has 3 partition(s), none for alert partition 3", 3))
    assert service.metrics.value("responder_changelog_partitions_missing") == 1
    assert "none for alert partition 3" in (service.unready() or "")
    service.fleet.abandon([3])  # revoked
    assert service.metrics.value("responder_changelog_partitions_missing") == 0
    service.recorder.close()
    await service.close_unstarted()


async def test_a_partition_the_changelog_cannot_hold_leaves_the_quotas_counted(tmp_path) -> None:
    """A partition held for want of a changelog partition leaves quotas counted; a failed restore stops the count."""
    service = fleet_service(tmp_path)
    assert service.fleet is not None
    service._given, service.fleet.owned = {0, 3}, {0}
    service.fleet._failed(3, ChangelogTooShort("changelog has 3 partition(s), none for alert partition 3", 3))
    assert service._uncounted() is None
    service.fleet._failed(3, ChangelogError("changelog[3] is unreadable"))
    assert service._uncounted() == "partition(s) 3 are not restored yet (their quota windows are not in)"
    service.recorder.close()
    await service.close_unstarted()
