"""The walking skeleton through the real broker and the moto server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from responder.actuators.aws.session import AwsSession
from responder.ingest.kafka import publish
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service
from responder.timeline.chain import parse_lines, verify_entries
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import CountingAws, make_settings, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]
kafka_bootstrap = on_apache_kafka()  # this module runs on real Apache Kafka when Java is present


async def _seed(aws: AwsSession, user: str = "ml-training", keys: int = 1) -> list[str]:
    await aws.call("iam", "create_user", UserName=user)
    out = []
    for _ in range(keys):
        created = await aws.call("iam", "create_access_key", UserName=user)
        out.append(created["AccessKey"]["AccessKeyId"])
    return out


async def _status(aws: AwsSession, user: str, key_id: str) -> str:
    listed = await aws.call("iam", "list_access_keys", UserName=user)
    return next(k["Status"] for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key_id)


def _deactivated(service: Service) -> int:
    return sum(1 for r in service.engine.state.results() if r.step == "deactivate-key")


def _results(path: Path) -> list[dict[str, object]]:
    return [e.body for e in parse_lines(path.read_bytes().splitlines()) if e.kind == "step.result"]


async def test_published_finding_deactivates_key(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """A GuardDuty finding on Kafka sets the named key Inactive in moto and the timeline verifies."""
    [key] = await _seed(aws)
    timeline = tmp_path / "t.jsonl"
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(service.engine.state.results()))
    assert await _status(aws, "ml-training", key) == "Inactive"
    count, _ = verify_entries(parse_lines(timeline.read_bytes().splitlines()))
    kinds = [e.kind for e in parse_lines(timeline.read_bytes().splitlines())]
    assert kinds.index("step.intent") < kinds.index("step.result")
    assert count == len(kinds) >= 4


async def test_same_finding_twice_acts_once(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """The same finding delivered twice calls UpdateAccessKey once and records the second as already done."""
    [key] = await _seed(aws)
    counting = CountingAws(aws)
    timeline = tmp_path / "t.jsonl"
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir), aws=counting)
    record = envelope_bytes(guardduty_finding(key))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [record, record], key=key.encode())
        await wait_for(lambda: service.pipeline.counters.records >= 2)
    assert counting.counts.get("update_access_key") == 1
    assert counting.counts.get("put_user_policy") == 1
    skipped = [e.body for e in parse_lines(timeline.read_bytes().splitlines()) if e.kind == "step.skipped"]
    assert [(s["step"], s["reason"]) for s in skipped] == [
        ("deactivate-key", "already_done"), ("revoke-sessions", "already_done"), ("notify-oncall", "already_done")]


async def test_restart_mid_stream_no_duplicate_no_loss(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """Stopping the consumer mid-stream and starting a new one acts on every key exactly once."""
    keys = []
    for i in range(6):
        keys += await _seed(aws, user=f"user-{i}", keys=1)
    counting = CountingAws(aws)
    timeline = tmp_path / "t.jsonl"
    settings = make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir,
                             max_batch=1, session_timeout_ms=3000)
    records = [envelope_bytes(guardduty_finding(k, f"user-{i}")) for i, k in enumerate(keys)]
    first = Service(settings, aws=counting)
    async with running(first):
        for i, rec in enumerate(records):
            await publish(kafka_bootstrap, topics["alerts"], [rec, rec], key=keys[i].encode())
        await wait_for(lambda: _deactivated(first) >= 2)
    done_first = _deactivated(first)
    second = Service(settings, aws=counting)
    async with running(second):
        await wait_for(lambda: _deactivated(second) == len(keys), timeout=60)
    assert done_first < len(keys) or second.pipeline.counters.records == 0
    assert counting.counts["update_access_key"] == len(keys)
    for i, k in enumerate(keys):
        assert await _status(aws, f"user-{i}", k) == "Inactive"
    ok = [r for r in _results(timeline) if r["status"] == "ok" and r["step"] == "deactivate-key"]
    assert sorted(r["target"] for r in ok) == sorted(keys)
    verify_entries(parse_lines(timeline.read_bytes().splitlines()))


async def test_malformed_record_is_deadlettered_and_consumer_continues(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A non-JSON record goes to the dead-letter topic with its reason; the next finding is still handled."""
    [key] = await _seed(aws)
    timeline = tmp_path / "t.jsonl"
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, timeline, runbooks_dir))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [b"{not json"], key=key.encode())
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(service.engine.state.results()))
    assert await _status(aws, "ml-training", key) == "Inactive"
    consumer = AIOKafkaConsumer(topics["deadletter"], bootstrap_servers=kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=f"dlq-{unique}")
    await consumer.start()
    try:
        batch = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    headers = dict(batch.headers)
    assert batch.value == b"{not json"
    assert headers["dlq.reason"] == b"not_json"
    assert headers["dlq.topic"] == topics["alerts"].encode()


async def test_manual_assignment_owns_every_partition_and_acts(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                              runbooks_dir):
    """With kafka_manual_assignment the alert and approval consumers own every partition and a finding is acted on."""
    [key] = await _seed(aws)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_manual_assignment=True, approvals_topic=topics["deadletter"])
    service = Service(settings)
    async with running(service):
        assert len(service.ingest.consumer.assignment()) == 3
        assert len(service.approvals.consumer.assignment()) == 3
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(service.engine.state.results()))
    assert await _status(aws, "ml-training", key) == "Inactive"


async def test_a_manual_assignment_that_fails_fails_the_start(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                             runbooks_dir):
    """A manual assignment whose callback fails fails the service's start, and `run` raises why."""
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_manual_assignment=True, approvals_topic=topics["deadletter"])
    service = Service(settings)
    readied: list[bool] = []

    def broken(partitions: object) -> None:
        raise RuntimeError("the partitions' state is not rebuilt")

    service.ingest.release = broken  # type: ignore[method-assign]
    service.ready.set = lambda: readied.append(True)  # type: ignore[method-assign]
    failed: list[str] = []
    try:
        await asyncio.wait_for(service.run(), 60)
    except* RuntimeError as group:  # raised out of the shippers' task group
        failed = [str(e) for e in group.exceptions]
    assert failed == ["the partitions' state is not rebuilt"]
    assert readied == []
    assert service.unready() is not None
