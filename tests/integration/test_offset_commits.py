"""Coalesced offset commits through the real broker: a graceful stop commits every record handled, the interval
commits while running, and a crash before any commit redelivers records that act on nothing twice (moto counts)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from responder.actuators.aws.session import AwsSession
from responder.ingest.kafka import publish
from responder.service import Service
from responder.timeline.chain import parse_lines, verify_entries
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import CountingAws, make_settings, running, wait_for

pytestmark = pytest.mark.integration
KEYS = 6


async def _seed(aws: AwsSession) -> list[str]:
    keys = []
    for i in range(KEYS):
        await aws.call("iam", "create_user", UserName=f"user-{i}")
        created = await aws.call("iam", "create_access_key", UserName=f"user-{i}")
        keys.append(str(created["AccessKey"]["AccessKeyId"]))
    return keys


async def _publish(bootstrap: str, topic: str, keys: list[str], first: int = 0) -> None:
    for i, key in enumerate(keys, start=first):
        await publish(bootstrap, topic, [envelope_bytes(guardduty_finding(key, f"user-{i}"))], key=key.encode())


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    """Records committed by `group` on the three partitions of `topic`, in all."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return sum(max(0, meta.offset) for meta in offsets.values() if meta is not None)


def _deactivated(service: Service) -> int:
    return sum(1 for r in service.engine.state.results() if r.step == "deactivate-key")


async def test_graceful_stop_commits_every_handled_record(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                          runbooks_dir):
    """With a minute's interval nothing is committed while running; the stop commits all; a restart gets nothing."""
    keys = await _seed(aws)
    counting = CountingAws(aws)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_commit_interval_ms=60_000, session_timeout_ms=3000)
    first = Service(settings, aws=counting)
    async with running(first):
        await _publish(kafka_bootstrap, topics["alerts"], keys[:-1])
        await wait_for(lambda: _deactivated(first) == KEYS - 1, timeout=60)
        assert await _committed(kafka_bootstrap, settings.group_id, topics["alerts"]) == 0
    assert await _committed(kafka_bootstrap, settings.group_id, topics["alerts"]) == KEYS - 1
    second = Service(settings, aws=counting)
    async with running(second):
        await _publish(kafka_bootstrap, topics["alerts"], keys[-1:], first=KEYS - 1)
        await wait_for(lambda: _deactivated(second) >= KEYS, timeout=60)
        await asyncio.sleep(0.5)
    assert second.pipeline.counters.records == 1  # nothing handled before the stop came again
    assert counting.counts["update_access_key"] == KEYS
    verify_entries(parse_lines((tmp_path / "t.jsonl").read_bytes().splitlines()))


async def test_the_interval_commits_while_the_service_runs(kafka_bootstrap, aws, topics, unique, tmp_path,
                                                           runbooks_dir):
    """With a 50 ms interval the handled records are committed without a stop or a rebalance."""
    keys = await _seed(aws)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_commit_interval_ms=50)
    service = Service(settings, aws=CountingAws(aws))
    async with running(service):
        await _publish(kafka_bootstrap, topics["alerts"], keys)
        await wait_for(lambda: _deactivated(service) == KEYS, timeout=60)
        for _ in range(100):
            if await _committed(kafka_bootstrap, settings.group_id, topics["alerts"]) == KEYS:
                break
            await asyncio.sleep(0.1)
        assert await _committed(kafka_bootstrap, settings.group_id, topics["alerts"]) == KEYS
        assert service.commits.commits >= 1


async def test_a_crash_before_the_commit_redelivers_and_acts_on_nothing_twice(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """A crash before the offset commit redelivers the records, and no key is deactivated twice."""
    keys = await _seed(aws)
    counting = CountingAws(aws)
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir,
                             kafka_commit_interval_ms=60_000, session_timeout_ms=3000)
    first = Service(settings, aws=counting)
    task: asyncio.Task[Any] = asyncio.create_task(first.run())
    await asyncio.wait_for(first.ready.wait(), 60)
    await _publish(kafka_bootstrap, topics["alerts"], keys)
    await wait_for(lambda: _deactivated(first) == KEYS, timeout=60)
    task.cancel()  # no graceful stop: the offsets marked are never committed
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _committed(kafka_bootstrap, settings.group_id, topics["alerts"]) == 0
    second = Service(settings, aws=counting)
    async with running(second):
        await wait_for(lambda: second.pipeline.counters.records >= KEYS, timeout=60)
    assert counting.counts["update_access_key"] == KEYS
    assert await _committed(kafka_bootstrap, settings.group_id, topics["alerts"]) == KEYS
    verify_entries(parse_lines((tmp_path / "t.jsonl").read_bytes().splitlines()))
