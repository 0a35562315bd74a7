"""Run the real service against the test broker and moto server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from responder.actuators.aws.session import AwsSession
from responder.errors_kafka import ConsumerRebuildsExhausted
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.service import Service, rebuilds_exhausted
from responder.settings import Settings


class CountingAws:
    """Wraps the real AwsSession and counts every call by operation (`calls`: each as `service.operation`)."""

    def __init__(self, inner: AwsSession) -> None:
        self.inner = inner
        self.counts: dict[str, int] = {}
        self.calls: list[str] = []

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Count, then forward to moto."""
        self.counts[operation] = self.counts.get(operation, 0) + 1
        self.calls.append(f"{service}.{operation}")
        return await self.inner.call(service, operation, **kwargs)


def make_settings(bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, timeline: Path,
                  runbooks_dir: Path, **extra: Any) -> Settings:
    """Settings wired to the test broker and moto server."""
    return Settings(
        kafka_bootstrap=bootstrap, topics=[topics["alerts"]], deadletter_topic=topics["deadletter"],
        group_id=f"g-{unique}", session_timeout_ms=extra.pop("session_timeout_ms", 6000),
        aws_endpoint_url=aws.endpoint_url, timeline_path=timeline, runbooks_dir=runbooks_dir,
        aws_access_key_id=SANDBOX_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=SANDBOX_CREDENTIALS["aws_secret_access_key"], **extra,
    )


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    """Start the service, wait until it consumes, stop and drain it on exit."""
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.ready.wait(), 60)
        yield service
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 60)


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, *, what: str = "condition not reached in time",
                   serving: asyncio.Task[Any] | None = None) -> None:
    """Poll until `predicate()` holds; AssertionError (`what`) after `timeout` seconds, or at once when the task
    `serving` ended meanwhile (with its error)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if serving is not None:
            assert not serving.done(), serving.exception() if not serving.cancelled() else "cancelled"
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


async def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[Any]:
    """At least `expect` records of `topic`, read from the start (no group), sorted by partition and offset."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < expect:
                batch = await consumer.getmany(timeout_ms=300)
                out += [m for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    return sorted(out, key=lambda m: (m.partition, m.offset))


async def notifications(bootstrap: str, keep: Callable[[dict[str, Any]], bool],
                        topic: str = "responder.notifications", timeout: float = 30.0) -> list[dict[str, Any]]:
    """The notify.kafka records on `topic` that `keep` selects, read from the start until one is found or `timeout`."""
    import orjson
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while not found and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            found += [doc for msgs in batch.values() for m in msgs if keep(doc := orjson.loads(m.value))]
        return found
    finally:
        await consumer.stop()


async def exhausted(service: Service, within: float) -> ConsumerRebuildsExhausted:
    """Run `service` until it stops with ConsumerRebuildsExhausted (what `responder run` exits 75 for), returned."""
    with pytest.raises(BaseException) as raised:  # noqa: PT011 - the service's task groups wrap it
        await asyncio.wait_for(service.run(), within)
    gave_up = rebuilds_exhausted(raised.value)
    assert gave_up is not None, raised.value
    return gave_up


def rebuilt(service: Service) -> dict[str, float]:
    """Each consumer's `responder_consumer_rebuilds_total`."""
    return {consumer: service.metrics.value("responder_consumer_rebuilds_total", consumer=consumer)
            for consumer in ("alerts", "approvals", "operator")}


def all_closed(service: Service) -> bool:
    """Whether every aiokafka client the service holds now is closed."""
    clients = [service.ingest.consumer, service.ingest.producer, service.approvals.consumer,
               service.publisher.producer]
    if service.operator_ingest is not None:
        clients.append(service.operator_ingest.consumer)
    return all(client._closed for client in clients)


async def access_key(aws: AwsSession, user: str = "ml-training") -> str:
    """A new IAM user `user` in moto and the id of an access key made for it."""
    await aws.call("iam", "create_user", UserName=user)
    created = await aws.call("iam", "create_access_key", UserName=user)
    return str(created["AccessKey"]["AccessKeyId"])


async def key_status(aws: AwsSession, key_id: str, user: str = "ml-training") -> str:
    """What moto says of `user`'s access key `key_id`: Active or Inactive."""
    listed = await aws.call("iam", "list_access_keys", UserName=user)
    return next(k["Status"] for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key_id)


async def grow_partitions(bootstrap: str, topic: str, total: int) -> None:
    """Add partitions to `topic` (the admin client's CreatePartitions), up to `total`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=total)})
    finally:
        await admin.close()


async def send_to_partition(bootstrap: str, topic: str, partition: int, value: bytes,
                            headers: list[tuple[str, bytes]]) -> None:
    """Produce `value` to one partition, once the producer's metadata knows it (just added)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        async with asyncio.timeout(30):
            while partition not in await producer.partitions_for(topic):
                await asyncio.sleep(0.2)
                await producer.client.force_metadata_update()
        await producer.send_and_wait(topic, value, partition=partition, headers=headers)
    finally:
        await producer.stop()


async def send_one(bootstrap: str, topic: str, value: bytes, key: bytes = b"k") -> None:
    """Produce one record (acks=all) with a producer of its own, stopped after."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
