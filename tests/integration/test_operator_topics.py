"""The operator request and reply topics `responder run` creates at its start take the cluster's default replication
factor: on 3 Apache Kafka brokers (default.replication.factor 3, min.insync.replicas 2) each partition has 3
replicas. Before, they were created with 1, and one broker lost took `undo … --via kafka` down."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from responder.errors import ConfigError
from responder.ingest.admin import ensure_topics
from responder.service import Service
from tests.faults.brokers import create_replicated
from tests.integration.harness import make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]


async def _replicas(bootstrap: str, topics: list[str]) -> dict[str, set[int]]:
    """Per topic that exists, the replica counts of its partitions (empty while the cluster's metadata has none yet).
    Only listed topics are described: describing one that does not exist would create it (auto.create.topics.enable
    is on in the test cluster), with the default replication factor."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([t for t in topics if t in existing]) if existing & set(topics) else []
    finally:
        await admin.close()
    return {d["topic"]: {len(p["replicas"]) for p in d["partitions"]} for d in described}


async def test_operator_topics_are_created_with_the_clusters_replication_factor(kafka_cluster3, aws, unique, tmp_path,
                                                                                runbooks_dir):
    """A replica's operator request and reply topics get 3 replicas on a 3-broker cluster, not 1."""
    bootstrap = kafka_cluster3.bootstrap()
    topics = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    await create_replicated(bootstrap, list(topics.values()))
    operator = [f"opreq-{unique}", f"oprep-{unique}"]
    service = Service(make_settings(bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                                    operator_requests_topic=operator[0], operator_replies_topic=operator[1]))
    task = asyncio.create_task(service.run())
    seen: dict[str, set[int]] = {}

    async def created() -> bool:
        seen.update(await _replicas(bootstrap, operator))
        return all(seen.get(t) for t in operator)

    try:
        for _ in range(300):  # the service creates them right after it reaches Kafka; bounded by the count
            if await created():
                break
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
    finally:
        service.request_stop()
        await wait_for(task.done, 60, what="the service did not stop")
    assert seen == {operator[0]: {3}, operator[1]: {3}}


async def test_a_topic_the_broker_refuses_to_create_is_a_config_error(kafka_bootstrap, unique) -> None:
    """ensure_topics asking more replicas than the brokers have is a ConfigError naming the topic, not a silent gap."""
    with pytest.raises(ConfigError, match=f"five-{unique}: InvalidReplicationFactorError"):
        await ensure_topics(kafka_bootstrap, [f"five-{unique}"], replication=5)
