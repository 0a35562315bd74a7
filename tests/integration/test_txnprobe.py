"""The transactions probe (responder/ingest/txnprobe.py) against real brokers: the embedded Tansu broker's answer is a
definitive "no" (auto runs without, loudly; on is a bad setting), also when the probe first met its port closed; on
Apache Kafka a probe that meets the only broker killed ends with BrokerUnreachable, never as "no transactions", and one
still trying when the broker comes back runs transactions."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from responder.errors import BrokerUnreachable, ConfigError
from responder.ingest.transactions import Transactions
from responder.ingest.txnprobe import choose, unsupported
from responder.sandbox.broker import Broker, free_port
from responder.sandbox.fixtures import own_apache_kafka
from responder.sandbox.kafka_jvm import KafkaCluster

pytestmark = pytest.mark.integration

cluster = own_apache_kafka()


async def test_tansu_answers_a_definitive_no(unique: str) -> None:
    """Tansu says "no" each time it is asked: auto runs without (a warning with it), on is a ConfigError."""
    with Broker() as broker, capture_logs() as probing:
        answer = await unsupported(broker.bootstrap, f"g-{unique}", deadline=30.0)
        assert answer is not None
        assert "UnknownError" in answer
        assert [e for e in probing if e["event"] == "kafka_transactions_probe_failed"] == []  # answered at once
        with capture_logs() as logs:
            assert await choose("auto", broker.bootstrap, "changelog", f"g-{unique}", deadline=30.0) is None
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["kafka_transactions"]
        with pytest.raises(ConfigError, match=r"does not run Kafka transactions for aiokafka \(UnknownError"):
            await choose("on", broker.bootstrap, "changelog", f"g-{unique}", deadline=30.0)


async def test_a_probe_that_met_tansu_s_port_closed_gets_its_answer_once_it_listens(unique: str) -> None:
    """No broker on the port, then Tansu started on it: the attempts without an answer are retried, then its "no"."""
    broker = Broker(port=free_port())
    with capture_logs() as logs:
        probing = asyncio.create_task(unsupported(broker.bootstrap, f"g-{unique}", deadline=60.0))
        await asyncio.sleep(1.5)
        assert not probing.done()
        try:
            await asyncio.to_thread(broker.start)
            answer = await asyncio.wait_for(probing, 30.0)
        finally:
            broker.stop()
    assert answer is not None
    assert "UnknownError" in answer
    failed = [e for e in logs if e["event"] == "kafka_transactions_probe_failed"]
    assert failed
    assert all("KafkaConnectionError" in e["error"] for e in failed)


@pytest.mark.apache_kafka
async def test_apache_kafka_killed_is_unreachable_never_unsupported_and_back_runs_transactions(
        cluster: KafkaCluster, unique: str) -> None:
    """Apache Kafka's only broker killed: BrokerUnreachable at the deadline; a probe under way when it is back: on."""
    bootstrap, node = cluster.bootstrap(), cluster.nodes[0]
    assert await unsupported(bootstrap, f"g-{unique}") is None  # the broker runs transactions
    cluster.kill_node(node)
    try:
        for mode in ("auto", "on"):
            with pytest.raises(BrokerUnreachable, match=r"its transactions probe\): no answer in 3s"):
                await choose(mode, bootstrap, "changelog", f"g-{unique}", deadline=3.0)
        probing = asyncio.create_task(choose("auto", bootstrap, "changelog", f"g-{unique}", deadline=150.0))
        await asyncio.sleep(1.0)
        assert not probing.done()
    finally:
        await asyncio.to_thread(cluster.start_node, node)
    txn = await asyncio.wait_for(probing, 150.0)
    assert isinstance(txn, Transactions)
    await txn.stop()  # nothing was started: no producer is open
