"""A rolling restart of a 3-broker Apache Kafka cluster under a running service whose operator requests consumer is
quiet: its group coordinator's broker restarted again and again, aiokafka's coordination task made to die at each
loss of the coordinator (as it did of an AssertionError in tests/faults/test_kafka_cluster.py), the consumer is
rebuilt each time, the service runs on (no exit 75) and acts on an alert sent afterwards (docs/faults.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator

from responder.ingest.coordinator import caught_up
from responder.service import Service
from tests.faults.brokers import create_replicated
from tests.faults.cloud import direct, marker_service, publish_findings, step_results
from tests.integration.crash import fake_key
from tests.integration.harness import running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

RESTARTS = 6  # one more coordinator death than the rebuilds allowed without progress


def _rebuilds(service: Service) -> float:
    return service.metrics.value("responder_consumer_rebuilds_total", consumer="operator")


def _settled(service: Service) -> bool:
    """The service ready, its operator consumer joined and caught up (its coordinator known)."""
    ingest = service.operator_ingest
    return ingest is not None and service.unready() is None and caught_up(ingest.consumer)


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_a_rolling_restart_that_kills_the_quiet_operator_coordinator_each_time_leaves_the_service_running(
        kafka_cluster3, moto_server, unique, tmp_path, monkeypatch) -> None:
    """Six restarts of the operator group's coordinator broker, each killing its coordination task: no exit 75."""
    cluster = kafka_cluster3
    topics = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}", "operator": f"ops-{unique}"}
    await create_replicated(cluster.bootstrap(), list(topics.values()))
    aws = direct(moto_server)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    service = marker_service(cluster.bootstrap(), aws, topics, unique, tmp_path, bucket, manual_assignment=False,
                             approvals_topic=topics["deadletter"], operator_requests_topic=topics["operator"])
    group = f"{service.settings.group_id}.operator"
    lost, autocommit = GroupCoordinator.coordinator_dead, GroupCoordinator._maybe_do_autocommit

    def coordinator_dead(self: GroupCoordinator) -> None:
        if self.group_id == group and self.coordinator_id is not None:
            self.responder_lost = True  # type: ignore[attr-defined]
        lost(self)

    async def dies(self: GroupCoordinator, assignment: Any) -> Any:
        if getattr(self, "responder_lost", False):
            raise RuntimeError("injected: the coordination task dies once its coordinator was lost")
        return await autocommit(self, assignment)

    monkeypatch.setattr(GroupCoordinator, "coordinator_dead", coordinator_dead)
    monkeypatch.setattr(GroupCoordinator, "_maybe_do_autocommit", dies)
    async with running(service):
        for _ in range(RESTARTS):
            await wait_for(lambda: _settled(service), timeout=120)
            ingest = service.operator_ingest
            assert ingest is not None
            node = next(n for n in cluster.nodes if n.node_id == ingest.consumer._coordinator.coordinator_id)
            rebuilt = _rebuilds(service)
            cluster.kill_node(node)
            await asyncio.to_thread(cluster.start_node, node)  # the service keeps consuming meanwhile
            await wait_for(lambda: _rebuilds(service) > rebuilt, timeout=120)  # noqa: B023
        await wait_for(lambda: _settled(service), timeout=120)
        acted = len(step_results(service, "put-marker"))
        await publish_findings(cluster.bootstrap(), topics["alerts"], [fake_key()])
        await wait_for(lambda: len(step_results(service, "put-marker")) > acted, timeout=120)
        assert _rebuilds(service) >= RESTARTS
        assert service.unready() is None
