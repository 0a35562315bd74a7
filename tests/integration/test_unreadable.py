"""A record the Kafka client cannot parse (a header key that is not UTF-8, which the broker accepts from any
producer) is read past once and dead-lettered with its bytes, instead of stopping its partition for ever; no other
record is lost on the way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.consumer import fetcher

from responder.ingest import unreadable
from responder.ingest.changelog import ensure_changelog
from responder.ingest.deadletter import replay_deadletters
from responder.ingest.kafka import ensure_topics
from responder.ingest.reading import read_to_end
from responder.ingest.unreadable import Unreadable, getmany_past
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.approval_kit import SECRET as APPROVAL_SECRET
from tests.integration.approval_kit import approval_of, park
from tests.integration.approval_kit import approval_setup as approvals_setup
from tests.integration.harness import access_key, key_status, make_settings, read_all, running, wait_for
from tests.integration.unreadable_producer import produce

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()  # the broker aiokafka meets in production, when Java is present


async def _poll_for_ever(consumer: AIOKafkaConsumer) -> None:
    """What a consumer without the second read does: poll, and raise on the same record each time."""
    while True:
        await consumer.getmany(timeout_ms=500)


async def _consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    return consumer


async def _take(consumer: AIOKafkaConsumer, want: int, most: int = 100) -> list[Any]:
    """Records from getmany_past until `want` came, then one more poll that must bring none."""
    seen: list[Any] = []
    async with asyncio.timeout(30):
        while len(seen) < want:
            batch = await getmany_past(consumer, timeout_ms=500, max_records=most)
            seen += [m for msgs in batch.values() for m in msgs]
    assert await getmany_past(consumer, timeout_ms=1000, max_records=most) == {}
    return seen


@pytest.mark.parametrize("gzip", [False, True])
async def test_a_record_in_the_middle_of_a_batch_is_read_past_once(kafka_bootstrap, unique, tmp_path, gzip):
    """`getmany_past` hands out the records around an unreadable one once each, and the bad one once as Unreadable."""
    topic = f"unreadable-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    extra = ("--gzip",) if gzip else ()
    await produce(kafka_bootstrap, topic, tmp_path, [(b"a", False), (b"b", True), (b"c", False)], *extra)
    await produce(kafka_bootstrap, topic, tmp_path, [(b"d", False)])  # another batch
    consumer = await _consumer(kafka_bootstrap, topic)
    try:
        with pytest.raises(UnicodeDecodeError):
            await asyncio.wait_for(_poll_for_ever(consumer), 20)
        consumer.seek(TopicPartition(topic, 0), 0)
        seen = await _take(consumer, 4)
    finally:
        await consumer.stop()
    assert [(m.offset, m.value, isinstance(m, Unreadable)) for m in seen] == \
        [(0, b"a", False), (1, b"b", True), (2, b"c", False), (3, b"d", False)]
    assert "header key is not UTF-8" in seen[1].error
    read = await read_to_end(kafka_bootstrap, topic)  # `approvals pending` reads past it too, and refuses it
    assert [(r.offset, r.unreadable is not None) for r in read] == [(0, False), (1, True), (2, False), (3, False)]


async def test_no_other_partition_loses_a_record(kafka_bootstrap, unique, tmp_path, monkeypatch):
    """Records of another partition taken by the poll that raised are read again, so no good record is lost."""
    shuffle = fetcher.random.shuffle

    def partition_1_first(items: list[Any]) -> None:  # aiokafka shuffles a fetch's partitions: here p1, then p0,
        if items and isinstance(items[0], tuple) and isinstance(items[0][0], TopicPartition):  # so the poll takes
            items.sort(key=lambda item: -item[0].partition)  # p1's records before p0 raises
        else:
            shuffle(items)

    monkeypatch.setattr(fetcher.random, "shuffle", partition_1_first)
    set_back: list[set[TopicPartition]] = []
    give_back = unreadable._give_back

    async def spied(*args: Any) -> Any:
        now, advanced = await give_back(*args)
        set_back.append(set(advanced))
        return now, advanced

    monkeypatch.setattr(unreadable, "_give_back", spied)
    topic = f"unreadable2-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    for round_ in range(3):
        await produce(kafka_bootstrap, topic, tmp_path, [(f"p1-{round_}-{i}".encode(), False) for i in range(50)],
                       "--partition", "1")
    await produce(kafka_bootstrap, topic, tmp_path, [(b"p0-a", False), (b"p0-bad", True), (b"p0-c", False)],
                   "--partition", "0")
    consumer = await _consumer(kafka_bootstrap, topic)
    try:
        seen = await _take(consumer, 153, most=1000)
    finally:
        await consumer.stop()
    good = {(m.partition, m.value) for m in seen if not isinstance(m, Unreadable)}
    assert good == {(1, f"p1-{r}-{i}".encode()) for r in range(3) for i in range(50)} | {(0, b"p0-a"), (0, b"p0-c")}
    assert [(m.partition, m.offset) for m in seen if isinstance(m, Unreadable)] == [(0, 1)]
    assert TopicPartition(topic, 1) in set().union(*set_back), "the failed poll never took p1's records"


async def test_the_service_deadletters_it_and_acts_on_the_alerts_around_it(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """An unreadable finding is dead-lettered as `unreadable`, the alerts around it contained, and offsets committed."""
    before, middle, after = await access_key(aws, "ml-a"), await access_key(aws, "ml-m"), await access_key(aws, "ml-b")
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir)
    service = Service(settings)
    unreadable = envelope_bytes(guardduty_finding(middle, user="ml-m"))
    async with running(service):
        for value, bad in [(envelope_bytes(guardduty_finding(before, user="ml-a")), False), (unreadable, True),
                           (envelope_bytes(guardduty_finding(after, user="ml-b")), False)]:
            await produce(kafka_bootstrap, topics["alerts"], tmp_path, [(value, bad)], "--partition", "0")
        await wait_for(lambda: len(service.engine.state.results()) >= 2 and service.pipeline.counters.records >= 3,
                       timeout=60)
    assert (await key_status(aws, before, "ml-a"), await key_status(aws, after, "ml-b")) == ("Inactive", "Inactive")
    assert await key_status(aws, middle, "ml-m") == "Active"  # its alert is on the dead-letter topic, not acted on
    [dead] = await read_all(kafka_bootstrap, topics["deadletter"], 1)
    headers = dict(dead.headers)
    assert (headers["dlq.reason"], headers["dlq.offset"], dead.value) == (b"unreadable", b"1", unreadable)
    assert b"header key is not UTF-8" in headers["dlq.detail"]
    assert service.metrics.value("responder_deadlettered_total", reason="unreadable") == 1
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topics["alerts"], 0)
        committed = await admin.list_consumer_group_offsets(settings.group_id, partitions=[tp])
    finally:
        await admin.close()
    assert committed[tp].offset == 3


async def test_replay_counts_an_unreadable_dead_letter_and_sends_the_rest(kafka_bootstrap, unique, tmp_path):
    """Replay counts an unparseable dead letter as unreplayable and replays the readable one after it."""
    topic = f"dlq-unreadable-{unique}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    await produce(kafka_bootstrap, topic, tmp_path, [(b"bad", True), (b"good", False)])
    result = await replay_deadletters(kafka_bootstrap, topic, to_topic=f"back-{unique}", dry_run=True,
                                      idle_seconds=2.0, force=True)
    assert (result.scanned, result.unreplayable, result.replayed) == (2, 1, 1)


async def test_an_unreadable_decision_is_refused_on_the_timeline_and_the_next_one_acts(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """An unparseable signed approval is recorded as approval.rejected; a readable resend of it releases the step."""
    names, key, settings = await approvals_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    service = Service(settings)
    async with running(service):
        parked = await park(service, kafka_bootstrap, topics, key, timeout=60)
        value = approval_of(parked).canonical()
        signer = ("--sign", f"k1:{APPROVAL_SECRET}")
        await produce(kafka_bootstrap, names["decisions"], tmp_path, [(value, True)], *signer)
        await wait_for(lambda: bool(_entries(settings.timeline_path, "approval.rejected")), timeout=60)
        assert service.engine.state.parked(parked.incident, parked.step) is not None
        assert await key_status(aws, key) == "Active"
        await produce(kafka_bootstrap, names["decisions"], tmp_path, [(value, False)], *signer)
        await wait_for(lambda: bool(service.engine.state.results()), timeout=60)
    assert await key_status(aws, key) == "Inactive"
    [refused] = _entries(settings.timeline_path, "approval.rejected")
    assert (refused["topic"], refused["partition"], refused["offset"]) == (names["decisions"], 0, 0)
    assert "header key is not UTF-8" in refused["reason"]
    assert len(_entries(settings.timeline_path, "approval.decided")) == 1


def _entries(path: Path, kind: str) -> list[dict[str, Any]]:
    """The bodies of the timeline's entries of one kind, in order."""
    return [e.body for e in parse_lines(path.read_bytes().splitlines()) if e.kind == kind]


async def test_a_changelog_record_the_client_cannot_parse_stops_that_partitions_restore_loudly(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A changelog partition holding an unparseable record is paused, unrestored and not ready; the other restores."""
    changelog = f"changelog-{unique}"
    await ensure_changelog(kafka_bootstrap, changelog, 3)
    await produce(kafka_bootstrap, changelog, tmp_path, [(b"{}", True)], "--partition", "0")
    held, acted = await access_key(aws, "ml-h"), await access_key(aws, "ml-x")
    await produce(kafka_bootstrap, topics["alerts"], tmp_path,
                   [(envelope_bytes(guardduty_finding(held, user="ml-h")), False)], "--partition", "0")
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             changelog_topic=changelog)
    service = Service(settings)
    p0 = TopicPartition(topics["alerts"], 0)
    async with running(service):
        assert service.fleet is not None
        await wait_for(lambda: 0 in service.fleet.failed and {1, 2} <= service.fleet.owned, timeout=60)
        await produce(kafka_bootstrap, topics["alerts"], tmp_path,
                       [(envelope_bytes(guardduty_finding(acted, user="ml-x")), False)], "--partition", "1")
        await wait_for(lambda: len(service.engine.state.results()) >= 1, timeout=60)
        await asyncio.sleep(2.0)  # had partition 0 been consumed, its finding would have acted by now
        assert p0 in service.ingest.consumer.paused()
        assert p0 not in service.ingest.positions.next  # never polled: not fetched during the restore and dropped
        assert not service.ready_now()
        assert "cannot parse at or after offset 0" in (service.unready() or "")
        assert service.pipeline.counters.records == 1
    assert (await key_status(aws, held, "ml-h"), await key_status(aws, acted, "ml-x")) == ("Active", "Inactive")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.group_id, partitions=[p0])
    finally:
        await admin.close()
    assert committed.get(p0) is None or committed[p0].offset <= 0
