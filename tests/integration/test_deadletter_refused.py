"""A dead letter the broker refuses for good, through real Apache Kafka: the chunk's other keys, and the chunks other
partitions' lanes have in hand, finish their steps before the service stops, and nothing is committed after it
(responder/service/batches.py, responder/ingest/flow.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError

from responder.actuators.aws.session import AwsSession
from responder.exception_groups import only
from responder.models.event import RawRecord
from responder.sandbox.fixtures import apache_available, on_apache_kafka
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import access_key, key_status, make_settings

pytestmark = pytest.mark.integration
kafka_bootstrap = on_apache_kafka()


class _HeldAws:
    """The real AwsSession; deactivating `held` waits until `release` is set, and says whether it completed."""

    def __init__(self, inner: AwsSession, held: str) -> None:
        self.inner, self.held = inner, held
        self.entered, self.release = asyncio.Event(), asyncio.Event()
        self.held_call: list[str] = []

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Forward to moto; the deactivation of `held` once released."""
        if operation != "update_access_key" or kwargs.get("AccessKeyId") != self.held:
            return await self.inner.call(service, operation, **kwargs)
        self.entered.set()
        try:
            await self.release.wait()
            reply = await self.inner.call(service, operation, **kwargs)
        except asyncio.CancelledError:
            self.held_call.append("cancelled")
            raise
        self.held_call.append("completed")
        return reply


async def _refuse_every_record(bootstrap: str, topic: str) -> None:
    """The dead-letter topic takes no record at all (`max.message.bytes` 1): the full copy and the minimal copy are
    both refused, as a topic too small for them would."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "1"})])
    finally:
        await admin.close()


async def _to_partition(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], partition: int = 0
                        ) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return -1 if meta is None else int(meta.offset)


def _step_results(timeline: Path) -> list[dict[str, Any]]:
    return [e.body for e in parse_lines(timeline.read_bytes().splitlines()) if e.kind == "step.result"]


async def _stops_refused(service: Service, held: _HeldAws, timeline: Path, aws: AwsSession, poison: str, slow: str
                         ) -> list[dict[str, Any]]:
    """Run `service` until it stops with the refusal: `slow`'s held call completed and its result is in the timeline,
    `poison`'s key deactivated before its bad element was refused. Returns the timeline's step results."""
    with pytest.raises(BaseExceptionGroup) as raised:
        await asyncio.wait_for(service.run(), 120)
    assert only(raised.value, MessageSizeTooLargeError) is not None, raised.value
    assert held.held_call == ["completed"]
    results = _step_results(timeline)
    assert [r["status"] for r in results if r["step"] == "deactivate-key" and slow in str(r)] == ["ok"]
    assert await key_status(aws, slow, "user-b") == "Inactive"
    assert await key_status(aws, poison, "user-a") == "Inactive"  # acted on before its bad element was refused
    return results


async def test_a_refused_dead_letter_lets_the_other_keys_finish_then_stops_uncommitted(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path,
        runbooks_dir: Path) -> None:
    """A refused dead letter lets the other key's AWS call finish, then stops the service with nothing committed."""
    if not apache_available():
        pytest.skip("a topic refusing every record needs Apache Kafka (Tansu has no max.message.bytes)")
    poison, slow, later = [await access_key(aws, user) for user in ("user-a", "user-b", "user-later")]
    await _refuse_every_record(kafka_bootstrap, topics["deadletter"])
    partly_bad = b"[" + envelope_bytes(guardduty_finding(poison, "user-a")) + b', {"unknown": "shape"}]'
    await _to_partition(kafka_bootstrap, topics["alerts"], [
        (b"a", partly_bad), (b"b", envelope_bytes(guardduty_finding(slow, "user-b"))),
        (b"a", envelope_bytes(guardduty_finding(later, "user-later")))])
    timeline = tmp_path / "t.jsonl"
    settings = make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir)
    held = _HeldAws(aws, slow)
    service = Service(settings, aws=held)
    send = service.ingest.deadletter

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        await held.entered.wait()  # key b is in its call when the broker refuses the copy
        try:
            await send(record, reason, detail)
        finally:
            held.release.set()

    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    results = await _stops_refused(service, held, timeline, aws, poison, slow)
    assert await key_status(aws, later, "user-later") == "Active"
    assert not any(later in str(r) for r in results)
    assert await _committed(kafka_bootstrap, settings.group_id, TopicPartition(topics["alerts"], 0)) == -1


async def test_a_refused_dead_letter_lets_another_partitions_aws_call_finish_then_stops_uncommitted(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path,
        runbooks_dir: Path) -> None:
    """Partition 0's dead letter is refused while partition 1's deactivation is in its moto call: the call completes."""
    if not apache_available():
        pytest.skip("a topic refusing every record needs Apache Kafka (Tansu has no max.message.bytes)")
    poison, slow = [await access_key(aws, user) for user in ("user-a", "user-b")]
    await _refuse_every_record(kafka_bootstrap, topics["deadletter"])
    partly_bad = b"[" + envelope_bytes(guardduty_finding(poison, "user-a")) + b', {"unknown": "shape"}]'
    await _to_partition(kafka_bootstrap, topics["alerts"], [(b"b", envelope_bytes(guardduty_finding(slow, "user-b")))],
                          partition=1)
    await _to_partition(kafka_bootstrap, topics["alerts"], [(b"a", partly_bad)])
    timeline = tmp_path / "t.jsonl"
    settings = make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir, kafka_commit_interval_ms=0)
    held = _HeldAws(aws, slow)
    service = Service(settings, aws=held)
    send, end_restore, stopping = service.ingest.deadletter, service._end_restore, asyncio.Event()

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        await held.entered.wait()  # partition 1's chunk is in its call when the broker refuses the copy
        await send(record, reason, detail)

    async def ending() -> None:  # the alert loop has failed and stops the lanes next
        await end_restore()
        stopping.set()

    async def release_once_stopping() -> None:
        await stopping.wait()
        for _ in range(20):  # before s31 the loop had cancelled every lane's chunk by now
            await asyncio.sleep(0)
        held.release.set()

    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    service._end_restore = ending  # type: ignore[method-assign]
    releasing = asyncio.create_task(release_once_stopping())
    try:
        await _stops_refused(service, held, timeline, aws, poison, slow)
    finally:
        releasing.cancel()
    for partition in (0, 1):
        assert await _committed(kafka_bootstrap, settings.group_id, TopicPartition(topics["alerts"], partition)) == -1
