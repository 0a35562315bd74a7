"""Poison and forged records through the real broker: dead-lettered with a reason, counted, committed, replayable."""

from __future__ import annotations

import asyncio
import hashlib
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion
from typer.testing import CliRunner

from responder.auth import signed_headers
from responder.cli.app import app
from responder.ingest.deadletter import replay_deadletters
from responder.ingest.dlq import DLQ_MAX_BYTES
from responder.ingest.dlqsend import send_deadletter
from responder.ingest.kafka import publish
from responder.models.event import RawRecord
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding
from tests.http import http_request
from tests.integration.harness import access_key, key_status, make_settings, read_all, running, wait_for

pytestmark = pytest.mark.integration
SECRET = "rotate-me-2026"


async def _allow_large_records(bootstrap: str, topic: str) -> None:
    """Raise the alert topic's record limit, as a team with big findings would (Tansu has no limit to raise)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  configs={"max.message.bytes": str(16 * 1024 * 1024)})])
    except IncompatibleBrokerVersion:
        pass
    finally:
        await admin.close()


async def test_every_poison_kind_is_deadlettered_counted_committed(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """Not JSON, too large, unknown shape, invalid, unsigned and forged records go to the DLQ; a signed one acts."""
    key = await access_key(aws)
    settings = make_settings(
        kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
        max_record_bytes=4096, require_signature=["guardduty"],
        event_signing_keys={"k-old": "old-secret", "k-new": SECRET}, metrics_port=0,
    )
    finding = envelope_bytes(guardduty_finding(key))
    drift = orjson.dumps({"source": "responder.drift", "model": "m", "version": "1", "metric": "psi",
                          "window": "1h", "statistic": 0.3, "threshold": 0.2, "verdict": "maybe"})
    poison = [
        ("not_json", b"{not json", [("trace-id", b"t-1")]),
        ("too_large", b'{"pad": "' + b"x" * 5000 + b'"}', []),
        ("unknown_shape", b'{"hello": "world"}', []),
        ("validation", drift, []),
        ("authentication", finding, []),
        ("authentication", finding, signed_headers("k-new", b"wrong-secret", finding)),
    ]
    service = Service(settings)
    async with running(service):
        assert service.metrics_server is not None
        port = service.metrics_server.port
        for _, value, headers in poison:
            await publish(kafka_bootstrap, topics["alerts"], [value], key=b"same-partition", headers=headers)
        await publish(kafka_bootstrap, topics["alerts"], [finding], key=b"same-partition",
                      headers=signed_headers("k-old", b"old-secret", finding))
        await wait_for(lambda: bool(service.engine.state.results()) and service.pipeline.counters.records >= 7)
        status, metrics_text = await http_request(port, "/metrics")
        ready, _ = await http_request(port, "/readyz")
        health, _ = await http_request(port, "/healthz")
        missing, _ = await http_request(port, "/nope")
    assert await key_status(aws, key) == "Inactive"
    dead = await read_all(kafka_bootstrap, topics["deadletter"], len(poison))
    assert [(dict(m.headers)["dlq.reason"].decode(), m.value) for m in dead] == [(r, v) for r, v, _ in poison]
    first = dict(dead[0].headers)
    assert first["trace-id"] == b"t-1"
    assert first["dlq.topic"] == topics["alerts"].encode()
    assert [int(dict(m.headers)["dlq.offset"]) for m in dead] == list(range(6))
    assert all(int(dict(m.headers)["dlq.time"]) > 0 for m in dead)
    assert "requires a signature" in dict(dead[4].headers)["dlq.detail"].decode()
    assert "bad signature" in dict(dead[5].headers)["dlq.detail"].decode()
    expected = {"not_json": 1, "too_large": 1, "unknown_shape": 1, "validation": 1, "authentication": 2}
    for reason, count in expected.items():
        assert service.metrics.value("responder_deadlettered_total", reason=reason) == count
    assert service.metrics.value("responder_records_authenticated_total", key_id="k-old") == 1
    assert (status, ready, health, missing) == (200, 200, 200, 404)
    assert 'responder_deadlettered_total{reason="authentication"} 2.0' in metrics_text
    partition = int(first["dlq.partition"])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topics["alerts"], partition)
        committed = await admin.list_consumer_group_offsets(settings.group_id, partitions=[tp])
    finally:
        await admin.close()
    assert committed[tp].offset == 7


async def test_replay_after_the_fix_acts_on_the_record(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """A record signed with a key not yet configured is dead-lettered; after adding the key, replay makes it act."""
    key = await access_key(aws)
    finding = envelope_bytes(guardduty_finding(key))
    signed = signed_headers("k-2027", SECRET.encode(), finding)
    common = {"require_signature": ["guardduty"], "session_timeout_ms": 3000}
    before = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir, **common)
    first = Service(before)
    async with running(first):
        await publish(kafka_bootstrap, topics["alerts"], [b"garbage"], key=key.encode())
        await publish(kafka_bootstrap, topics["alerts"], [finding], key=key.encode(), headers=signed)
        await wait_for(lambda: sum(first.deadlettered.values()) >= 2)
    assert first.deadlettered == {"not_json": 1, "authentication": 1}
    assert await key_status(aws, key) == "Active"

    runner = CliRunner()
    env = {"RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap, "RESPONDER_DEADLETTER_TOPIC": topics["deadletter"]}
    dry = await asyncio.to_thread(runner.invoke, app, ["deadletter", "replay", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    assert orjson.loads(dry.stdout)["by_reason"] == {"not_json": 1, "authentication": 1}
    human = await asyncio.to_thread(runner.invoke, app, ["deadletter", "replay", "--dry-run"], env=env)
    assert "not_json" in human.stdout
    assert "{" not in human.stdout  # a table, not a printed Python dict
    result = await replay_deadletters(kafka_bootstrap, topics["deadletter"], reason="authentication")
    assert (result.scanned, result.replayed) == (2, 1)

    fixed = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                          event_signing_keys={"k-2027": SECRET}, **common)
    second = Service(fixed)
    async with running(second):
        await wait_for(lambda: bool(second.engine.state.results()), timeout=60)
    assert await key_status(aws, key) == "Inactive"
    replayed = (await read_all(kafka_bootstrap, topics["alerts"], 3))[-1]
    assert replayed.value == finding
    assert sorted(k for k, _ in replayed.headers) == ["responder-key-id", "responder-replay-of", "responder-signature"]


async def test_a_poison_record_near_the_size_cap_is_deadlettered_truncated(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A ~1 MB non-JSON record whose copy plus dlq headers would exceed 1 MiB is dead-lettered truncated."""
    key = await access_key(aws)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir))
    poison = b"x" * 1_047_000
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [poison], key=b"poison")
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: any(r.step == "deactivate-key" for r in service.engine.state.results()))
    [dead] = await read_all(kafka_bootstrap, topics["deadletter"], 1)
    headers = dict(dead.headers)
    assert headers["dlq.truncated"] == b"1047000"
    assert poison.startswith(dead.value)
    assert await key_status(aws, key) == "Inactive"


async def test_a_record_whose_copy_cannot_fit_does_not_block_its_partition(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A 900 kB value with ten 15 kB headers is dead-lettered within the size cap; the valid alert behind it acts."""
    key = await access_key(aws)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir))
    poison = b"X" * 900_000
    fat = [(f"h{i}", b"y" * 15_000) for i in range(10)]
    await _allow_large_records(kafka_bootstrap, topics["alerts"])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        await producer.send_and_wait(topics["alerts"], poison, key=key.encode(), headers=fat)
    finally:
        await producer.stop()
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: any(r.step == "deactivate-key" for r in service.engine.state.results()))
    assert await key_status(aws, key) == "Inactive"
    [dead] = await read_all(kafka_bootstrap, topics["deadletter"], 1)
    headers = dict(dead.headers)
    assert headers["dlq.reason"] == b"not_json"
    assert headers["dlq.sha256"] == hashlib.sha256(poison).hexdigest().encode()
    assert int(headers["dlq.offset"]) == 0
    assert len(dead.value) + sum(len(k) + len(v) for k, v in dead.headers) < 1_000_000
    assert poison.startswith(dead.value)


async def test_replaying_the_same_range_twice_publishes_each_record_once(kafka_bootstrap, topics, unique):
    """Two replays of the same dead letters send each once (noted in the ledger); cut copies are never sent."""
    dlq = topics["deadletter"]
    coords = [("dlq.topic", topics["alerts"].encode()), ("dlq.partition", b"0"), ("dlq.offset", b"7")]
    await publish(kafka_bootstrap, dlq, [b"{bad-1", b"{bad-2"], key=b"k",
                  headers=[("trace", b"t"), ("dlq.reason", b"not_json"), *coords])
    await publish(kafka_bootstrap, dlq, [b""], key=b"k",
                  headers=[("dlq.reason", b"not_json"), ("dlq.minimal", b"too large"), *coords])
    target = f"replayed-{unique}"
    first = await replay_deadletters(kafka_bootstrap, dlq, to_topic=target, idle_seconds=1.5)
    second = await replay_deadletters(kafka_bootstrap, dlq, to_topic=target, idle_seconds=1.5)
    assert (first.replayed, first.already, first.unreplayable) == (2, 0, 1)
    assert (second.replayed, second.already, second.unreplayable) == (0, 2, 1)
    sent = await read_all(kafka_bootstrap, target, 2)
    with pytest.raises(TimeoutError):
        await read_all(kafka_bootstrap, target, 3, timeout=3.0)
    assert [m.value for m in sent] == [b"{bad-1", b"{bad-2"]
    assert [dict(m.headers)["responder-replay-of"].split(b":")[0] for m in sent] == [dlq.encode()] * 2
    assert all("dlq.reason" not in dict(m.headers) for m in sent)


async def test_a_record_dead_lettered_twice_is_replayed_once(kafka_bootstrap, topics, unique):
    """Two dead-letter copies of one keyless record (a restart before its commit) are published once, then skipped."""
    dlq, target = topics["deadletter"], f"replayed-{unique}"
    record = RawRecord(topic=topics["alerts"], partition=1, offset=41, value=b"{bad", headers=(("trace", b"t"),),
                       timestamp_ms=int(time.time() * 1000) - 60_000)  # recent: the target deletes by time, 7 days
    other = record.model_copy(update={"offset": 42, "value": b"{worse"})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for copy in (record, record, other):  # no key: the two copies may sit in different partitions
            await send_deadletter(producer, dlq, copy, "not_json", "not JSON", DLQ_MAX_BYTES)
    finally:
        await producer.stop()
    first = await replay_deadletters(kafka_bootstrap, dlq, to_topic=target, idle_seconds=1.5)
    second = await replay_deadletters(kafka_bootstrap, dlq, to_topic=target, idle_seconds=1.5)
    assert await _topic_config(kafka_bootstrap, f"{dlq}.replayed", "cleanup.policy") == "compact"
    assert (first.scanned, first.replayed, first.duplicates, first.already) == (3, 2, 1, 0)
    assert (second.scanned, second.replayed, second.duplicates, second.already) == (3, 0, 0, 3)
    sent = await read_all(kafka_bootstrap, target, 2)
    with pytest.raises(TimeoutError):
        await read_all(kafka_bootstrap, target, 3, timeout=3.0)
    assert sorted(m.value for m in sent) == [b"{bad", b"{worse"]
    assert all(dict(m.headers)["trace"] == b"t" for m in sent)


async def _topic_config(bootstrap: str, topic: str, name: str) -> str:
    """The value of configuration `name` of `topic`, as the broker describes it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [answer] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = answer.resources
    return str({entry[0]: entry[1] for entry in entries}[name])
