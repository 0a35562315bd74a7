"""Broker failure on a 3-node Apache Kafka cluster (replication factor 3, min.insync.replicas=2)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from responder.ingest.kafka import publish
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import CountingAws, make_settings, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]


async def _create(bootstrap: str, names: list[str]) -> int:
    """Create the topics with 3 replicas; returns the leader node of the first topic's partition 0."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(100):  # right after start-up aiokafka may not know the controller yet (AttributeError)
            try:
                await admin.create_topics([NewTopic(n, 3, 3) for n in names])
                break
            except AttributeError:
                await asyncio.sleep(0.1)
        for _ in range(100):
            [described] = await admin.describe_topics([names[0]])
            leaders = {p["partition"]: p["leader"] for p in described["partitions"]}
            if leaders.get(0, -1) >= 0:
                return int(leaders[0])
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise AssertionError("no leader elected for partition 0")


async def _keys(aws, unique: str, count: int) -> list[tuple[str, str]]:
    """One IAM user with one access key per finding: (user, key id)."""
    out = []
    for i in range(count):
        user = f"u{i}-{unique}"
        await aws.call("iam", "create_user", UserName=user)
        created = await aws.call("iam", "create_access_key", UserName=user)
        out.append((user, created["AccessKey"]["AccessKeyId"]))
    return out


def _deactivated(service: Service) -> int:
    return sum(1 for result in service.engine.state.results() if result.step == "deactivate-key")


async def test_leader_broker_killed_mid_stream_every_finding_acted_once(kafka_cluster3, aws, unique, tmp_path,
                                                                       runbooks_dir):
    """SIGKILL of the leader of partition 0 mid-stream: with 2 of 3 brokers left every finding still acts, once."""
    bootstrap = kafka_cluster3.bootstrap()
    topics = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    leader = await _create(bootstrap, list(topics.values()))
    counting = CountingAws(aws)
    settings = make_settings(bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             approvals_topic=topics["deadletter"])
    keys = await _keys(aws, unique, 8)
    findings = [guardduty_finding(key, user, finding_id=f"f-{i}") for i, (user, key) in enumerate(keys)]
    service = Service(settings, aws=counting)
    async with running(service):
        for i, finding in enumerate(findings[:4]):
            await publish(bootstrap, topics["alerts"], [envelope_bytes(finding)], key=str(i).encode())
        await wait_for(lambda: _deactivated(service) >= 4, timeout=60)
        node = kafka_cluster3.nodes[leader - 1]
        kafka_cluster3.kill_node(node)
        for i, finding in enumerate(findings[4:], start=4):
            await publish(kafka_cluster3.bootstrap(), topics["alerts"], [envelope_bytes(finding)], key=str(i).encode())
        await wait_for(lambda: _deactivated(service) >= 8, timeout=120)
        kafka_cluster3.start_node(node)
    assert counting.counts["update_access_key"] == 8
    for user, key in keys:
        listed = await aws.call("iam", "list_access_keys", UserName=user)
        assert [k["Status"] for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key] == ["Inactive"]
