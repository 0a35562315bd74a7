"""The partition leader SIGKILLed on a 3-broker Apache Kafka cluster (replication factor 3, min.insync.replicas=2),
as rows of the fault table: alerts before, during and after each kill, every one acted on once, counted in moto.

Both forms share the module's one cluster (`kafka_cluster3`, started once, about 30 s).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from responder.sandbox.aws import AwsSandbox
from responder.sandbox.kafka_jvm import KafkaCluster
from tests.faults.brokers import create_replicated
from tests.faults.cloud import direct, effects, marker_service, publish_findings, step_results
from tests.faults.table import FaultRow, record
from tests.integration.crash import fake_key
from tests.integration.fleet import leader_of
from tests.integration.harness import running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]


async def leader_kill_run(cluster: KafkaCluster, moto: AwsSandbox, unique: str, tmp, *, fault: str, kills: int = 1,
                          down: float = 0.0, per_phase: int = 4) -> FaultRow:
    """Per kill: SIGKILL partition 0's leader, alerts while it is down (`down` s more), restart it, alerts after.

    Time to recover is kill → first action on an alert published after the kill (the slowest kill).
    """
    topics = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    await create_replicated(cluster.bootstrap(), list(topics.values()))
    aws = direct(moto)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    service = marker_service(cluster.bootstrap(), aws, topics, unique, tmp, bucket,
                             approvals_topic=topics["deadletter"])
    keys: list[str] = []
    recover: list[float] = []

    async def send() -> None:
        batch = [fake_key() for _ in range(per_phase)]
        keys.extend(batch)
        await publish_findings(cluster.bootstrap(), topics["alerts"], batch)

    async with running(service):
        await send()
        await wait_for(lambda: len(step_results(service, "escalate")) == len(keys), timeout=60)
        for _ in range(kills):
            node = cluster.nodes[await leader_of(cluster.bootstrap(), topics["alerts"], 0, wait=30.0) - 1]
            cluster.kill_node(node)
            killed = time.monotonic()
            acted = len(step_results(service, "put-marker"))
            await send()
            await wait_for(lambda: len(step_results(service, "put-marker")) > acted, timeout=120)  # noqa: B023
            recover.append(time.monotonic() - killed)
            await wait_for(lambda: len(step_results(service, "escalate")) == len(keys), timeout=120)
            await asyncio.sleep(down)
            await asyncio.to_thread(cluster.start_node, node)  # the service keeps consuming meanwhile
            await send()
            await wait_for(lambda: len(step_results(service, "escalate")) == len(keys), timeout=120)
    seen = await effects(aws, bucket)
    return record(FaultRow(fault=fault, events=len(keys), expected=len(keys), done=sum(seen[k] > 0 for k in keys),
                           duplicates=sum(max(0, seen[k] - 1) for k in keys), lost=sum(seen[k] == 0 for k in keys),
                           recover_s=max(recover), note="Apache Kafka, 3 brokers, RF 3, min.insync.replicas 2"))


# back in CI on 2026-12-05: it had failed 3 of 8 runs (aiokafka's coordinator of the operator requests consumer died,
# docs/faults.md "A consumer whose group coordinator died"); 7 of 7 passed after the fix
async def test_leader_broker_killed_mid_stream_every_finding_acted_once(kafka_cluster3, moto_server, unique, tmp_path):
    """SIGKILL of partition 0's leader mid-stream, then its restart: every alert is acted on once (counted in moto)."""
    row = await leader_kill_run(kafka_cluster3, moto_server, unique, tmp_path, fault="Kafka leader broker: SIGKILL, "
                                "restart (3-broker cluster)")
    assert (row.lost, row.duplicates, row.done) == (0, 0, row.expected), row


# stays in soak for its length, not a failure: 14 of 14 passed on 2026-12-05 (s23-rebuild, no consumer rebuilt in any),
# 122-140 s each, the cluster's start included (3 kills, each down 20 s); it had passed 3 of 4 before the coordinator
# lookup-lock guard (20d27eb), output of the failure not kept
@pytest.mark.soak
@pytest.mark.timeout(1200)
async def test_successive_leaders_killed_and_down_20s(kafka_cluster3, moto_server, unique, tmp_path):
    """Three successive leaders of partition 0 SIGKILLed, each down 20 s with alerts flowing: nothing lost or twice."""
    row = await leader_kill_run(kafka_cluster3, moto_server, unique, tmp_path, fault="Kafka leader broker: 3 "
                                "successive leaders SIGKILLed, each down 20 s", kills=3, down=20.0, per_phase=10)
    assert (row.lost, row.duplicates, row.done) == (0, 0, row.expected), row
