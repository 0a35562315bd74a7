"""The metrics registry and the /metrics, /healthz, /readyz endpoint."""

from __future__ import annotations

from aiokafka import TopicPartition

from responder.instruments import HeldPartitions
from responder.metrics import Metrics
from responder.metrics_server import MetricsServer
from tests.http import http_request


def test_counters_are_per_instance_and_labelled() -> None:
    """Two Metrics objects do not share counts; labels separate reasons."""
    a, b = Metrics(), Metrics()
    a.deadlettered.labels("not_json").inc()
    a.deadlettered.labels("not_json").inc()
    a.events.labels("guardduty").inc()
    assert a.value("responder_deadlettered_total", reason="not_json") == 2
    assert a.value("responder_events_total", source="guardduty") == 1
    assert b.value("responder_deadlettered_total", reason="not_json") == 0


def test_held_partitions_are_read_at_each_scrape() -> None:
    """`responder_partition_held` is 1 for each partition held now, and has no sample once it is released."""
    metrics, held = Metrics(), {TopicPartition("alerts", 2), TopicPartition("alerts", 0)}
    metrics.registry.register(HeldPartitions(lambda: held))
    assert metrics.value("responder_partition_held", topic="alerts", partition="0") == 1
    assert metrics.value("responder_partition_held", topic="alerts", partition="2") == 1
    assert b'responder_partition_held{partition="0",topic="alerts"} 1.0' in metrics.exposition()
    held.discard(TopicPartition("alerts", 0))
    assert metrics.value("responder_partition_held", topic="alerts", partition="0") == 0
    assert b'partition="0"' not in metrics.exposition()


async def test_readyz_says_why_it_is_not_ready() -> None:
    """A 503 from /readyz carries the service's reason in its body; once ready it is a plain 200."""
    reason: dict[str, str | None] = {"now": "partition(s) 1 not restored: changelog unreadable"}
    server = MetricsServer(Metrics(), lambda: reason["now"] is None, "127.0.0.1", 0, why=lambda: reason["now"])
    port = await server.start()
    try:
        status, body = await http_request(port, "/readyz")
        assert (status, body.strip()) == (503, "not ready: partition(s) 1 not restored: changelog unreadable")
        reason["now"] = None
        assert await http_request(port, "/readyz") == (200, "ready\n")
    finally:
        await server.stop()


async def test_server_serves_metrics_health_and_readiness() -> None:
    """/metrics has the counters, /healthz is 200, /readyz follows readiness, unknown paths are 404, POST 405."""
    metrics = Metrics()
    metrics.records.labels("alerts").inc(3)
    ready = {"now": False}
    server = MetricsServer(metrics, lambda: ready["now"], "127.0.0.1", 0)
    port = await server.start()
    try:
        status, body = await http_request(port, "/metrics")
        assert status == 200
        assert 'responder_records_total{topic="alerts"} 3.0' in body
        assert (await http_request(port, "/healthz"))[0] == 200
        assert (await http_request(port, "/readyz"))[0] == 503
        ready["now"] = True
        assert (await http_request(port, "/readyz"))[0] == 200
        assert (await http_request(port, "/missing"))[0] == 404
        assert (await http_request(port, "/metrics", "POST"))[0] == 405
    finally:
        await server.stop()
