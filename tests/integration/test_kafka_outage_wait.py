"""On Apache Kafka, a full outage (the only broker SIGKILLed, then restarted on its ports and data) longer than the
consumers' start bound: no consumer is rebuilt, `/readyz` says Kafka is unreachable meanwhile, and an alert sent once
Kafka is back is consumed and committed (responder/service/watch.py `_watched`, responder/ingest/lost.py
`cluster_answers`)."""

from __future__ import annotations

import asyncio

import pytest

from responder.ingest.coordinator import RebuildBudget
from responder.sandbox.fixtures import own_apache_kafka
from responder.sandbox.kafka_jvm import KafkaCluster
from responder.service import Service
from tests.integration.harness import make_settings, rebuilt, running, send_one, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

BOUND = 20.0  # the consumers' start bound here (160 s at the defaults)
NONE = {"alerts": 0, "approvals": 0, "operator": 0}


cluster = own_apache_kafka()


@pytest.fixture(scope="module", name="kafka_bootstrap")
def _kafka_bootstrap(cluster: KafkaCluster) -> str:
    """This module's broker (`topics` creates the test's topics on it)."""
    return cluster.bootstrap()


def _unready(service: Service) -> str:
    return service.unready() or ""


async def test_a_full_kafka_outage_longer_than_the_bound_is_waited_out_without_a_rebuild(
        cluster, kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch) -> None:
    """A Kafka outage past the 20 s bound gives `/readyz` 503 and rebuilds no consumer; once back, alerts commit."""
    monkeypatch.setattr(Service, "cluster_probe_s", 2.0, raising=False)  # without the fix: its asserts fail
    monkeypatch.setattr(Service, "cluster_probe_every_s", 2.0, raising=False)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir), aws=aws)
    service.start_timeout = lambda: BOUND  # type: ignore[method-assign]
    service.rebuild_budget = lambda: RebuildBudget(backoff=0.0, backoff_max=0.0)  # type: ignore[method-assign]
    node = cluster.nodes[0]
    async with running(service):
        cluster.kill_node(node)
        await wait_for(lambda: "Kafka unreachable" in _unready(service) or rebuilt(service) != NONE, BOUND + 60)
        await asyncio.sleep(5)  # asked again meanwhile: still down
        assert rebuilt(service) == NONE  # before the fix: each of the three rebuilt once
        assert "Kafka unreachable" in _unready(service)
        await asyncio.to_thread(cluster.start_node, node)
        before = service.ingest.commits
        await send_one(kafka_bootstrap, topics["alerts"], b'{"not": "an alert"}')
        await wait_for(lambda: service.ingest.commits > before and service.unready() is None, 120,
                       what="the alert sent once Kafka was back was not committed")
        assert rebuilt(service) == NONE
