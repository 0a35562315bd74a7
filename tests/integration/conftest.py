"""Fixtures shared by the integration test modules (the broker and moto server ones come from
responder.sandbox.fixtures, through tests/conftest.py); the model registry tests' `s3store`
(their `keys` is tests/conftest.py's)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.errors import IncompatibleBrokerVersion

from responder.actuators.aws.session import AwsSession
from responder.actuators.model.s3 import S3Store
from responder.ingest.changelog import Changelog, ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.ingest.txnprobe import supported
from tests.http import Receiver
from tests.integration.harness import grow_partitions
from tests.modelkit import BUCKET, URL


@pytest.fixture(name="transactional")
async def _transactional(kafka_bootstrap: str, unique: str) -> str:
    """The broker (the requesting module's `kafka_bootstrap`: Apache Kafka with `on_apache_kafka()`), skipped when
    it has no transactions for aiokafka (Tansu)."""
    if not await supported(kafka_bootstrap, f"probe-{unique}"):
        pytest.skip("this broker does not run Kafka transactions for aiokafka (Tansu): docs/fleet.md")
    return kafka_bootstrap


@pytest.fixture(name="growable")
async def _growable(kafka_bootstrap: str, unique: str) -> None:
    """Skips the requesting test on a broker (its module's `kafka_bootstrap`) with no CreatePartitions (Tansu, where
    Java is missing), where each test that adds partitions errored."""
    probe = f"grow-{unique}"
    await ensure_topics(kafka_bootstrap, [probe], partitions=1)
    try:
        await grow_partitions(kafka_bootstrap, probe, 2)
    except IncompatibleBrokerVersion as exc:
        pytest.skip(f"this broker cannot add partitions to a topic (Tansu: no CreatePartitions): {exc}")


@pytest.fixture(name="log")
async def _log(kafka_bootstrap: str, unique: str) -> AsyncIterator[Changelog]:
    """A started changelog on a fresh two-partition topic, stopped after the test."""
    topic = f"changelog-{unique}"
    await ensure_changelog(kafka_bootstrap, topic, 2)
    log = Changelog(kafka_bootstrap, topic)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    """A `Receiver` serving on a thread of its own, shut down after the test."""
    rec = Receiver()
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()
        thread.join(5)


@pytest.fixture(name="s3store")
async def _s3store(aws: AwsSession) -> S3Store:
    """An S3 registry in a fresh bucket on the moto server."""
    await aws.call("s3", "create_bucket", Bucket=BUCKET)
    return S3Store(aws, URL)
