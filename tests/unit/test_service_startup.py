"""A service that fails while starting up closes the Kafka clients it never started."""

from __future__ import annotations

import socket

import pytest

from responder.service import Service
from responder.settings import Settings


async def test_start_up_failure_closes_the_unstarted_kafka_clients(tmp_path):
    """A metrics port already in use stops `run()` before consuming; every Kafka client is closed, none left to GC."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                            topics=["a"], metrics_host="127.0.0.1", metrics_port=taken.getsockname()[1])
        service = Service(settings, runbooks=[])
        with pytest.raises(OSError, match="address already in use"):
            await service.run()
    consumers = [service.ingest.consumer, service.approvals.consumer]
    if service.operator_ingest is not None:
        consumers.append(service.operator_ingest.consumer)
    assert [c._closed for c in consumers] == [True] * len(consumers)  # else: "Unclosed AIOKafkaConsumer" at GC
    assert service.publisher.producer._closed
