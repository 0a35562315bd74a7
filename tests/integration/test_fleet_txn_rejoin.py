"""A replica whose partition's transactional producer dies (aiokafka 0.14's sender routine ends when its group
coordinator lookup loses the connection, as to a killed broker) rejoins in-process and goes on serving, each alert
acted on once (Apache Kafka; CI 2026-12-06: the 3-broker leader-kill test's replica exited 1 instead)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import Registry
from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.ingest.transactions import Transactions
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service, rebuilds, serve_rejoining
from responder.settings import Settings
from responder.timeline.verify import verify_lines
from tests.integration.crash import effects, fake_key
from tests.integration.crash_worker import PutMarker, write_runbook
from tests.integration.fleet import stream

kafka_bootstrap = on_apache_kafka()


def _lose_one_coordinator_lookup(monkeypatch: pytest.MonkeyPatch, lookups: list[str]) -> None:
    """The first transactional producer any service initialises gets one KafkaConnectionError from its next coordinator
    lookup (its first offsets' commit looks up the group coordinator): aiokafka's `Sender._find_coordinator` does not
    retry it, and its sender routine dies with "Unexpected error during batch delivery", as in the CI run."""
    assign = Transactions.assign

    async def assigning(self: Transactions, partitions: Any, deadline: float = 30.0) -> None:
        await assign(self, partitions, deadline)
        if lookups or not self.producers:
            return
        client = next(iter(self.producers.values())).client
        lookup = client.coordinator_lookup

        async def lost(*args: Any, **kwargs: Any) -> Any:
            client.coordinator_lookup = lookup  # once
            lookups.append(" ".join(str(getattr(arg, "name", arg)) for arg in args))
            raise KafkaConnectionError("Connection at 127.0.0.1 closed (reset by the killed broker)")

        client.coordinator_lookup = lost
        lookups.append("armed")

    monkeypatch.setattr(Transactions, "assign", assigning)


async def _until(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_a_dead_transactional_producer_rejoins_and_every_alert_acts_once(transactional, aws: AwsSession,
                                                                             unique, tmp_path, monkeypatch):
    """A dead transactional producer makes the replica rejoin with a new service, every alert acting once."""
    topic, changelog, bucket = f"alerts-{unique}", f"changelog-{unique}", f"effects-{unique}"
    await ensure_topics(transactional, [topic, f"dlq-{unique}"], partitions=1)
    await ensure_changelog(transactional, changelog, 1)
    await aws.call("s3", "create_bucket", Bucket=bucket)
    write_runbook(tmp_path / "runbooks", bucket)
    settings = Settings(
        kafka_bootstrap=transactional, topics=[topic], deadletter_topic=f"dlq-{unique}", group_id=f"txn-{unique}",
        changelog_topic=changelog, session_timeout_ms=6000, approvals_topic=f"approvals-{unique}",
        kafka_transactions="on", fenced_rejoins=5, runbooks_dir=tmp_path / "runbooks",
        timeline_path=tmp_path / "timeline.jsonl", aws_endpoint_url=aws.endpoint_url,
        aws_access_key_id=SANDBOX_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=SANDBOX_CREDENTIALS["aws_secret_access_key"])
    registry = Registry()
    registry.add(PutMarker())
    lookups: list[str] = []
    _lose_one_coordinator_lookup(monkeypatch, lookups)
    make = rebuilds(settings, registry=registry, aws=aws)
    built: list[Service] = []

    def build(previous: Service | None) -> Service:
        built.append(make(previous))
        return built[-1]

    first, later = fake_key(), fake_key()
    stop = asyncio.Event()  # ends serving as SIGTERM does, without signalling the pytest process (an xdist worker)
    with capture_logs() as logs:
        task = asyncio.create_task(serve_rejoining(build, rejoins=settings.fenced_rejoins, backoff=0.5, stop=stop))
        try:
            await _until(lambda: _ready(built, 0, task), "the first service did not start")
            await stream(transactional, topic, [first], 1, redeliver=0)
            await _until(lambda: _ready(built, 1, task), "the replica did not rejoin after its producer died")
            await stream(transactional, topic, [later], 1, redeliver=0)

            async def both_acted() -> bool:
                counted = await effects(aws, bucket)
                return counted[first] >= 1 and counted[later] >= 1 and bool(_results(tmp_path, later))

            await _until(both_acted, "the rebuilt service did not act on the next alert")
            await asyncio.sleep(2.0)  # had a redelivery acted again, its object would be in moto by now
            assert not task.done(), task
        finally:
            if not task.done():  # serving: stop it as a supervisor's SIGTERM does
                stop.set()
                await asyncio.wait_for(task, 60)
    assert lookups == ["armed", f"GROUP {settings.group_id}"], lookups  # once, the group coordinator's lookup
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["rejoin"]) for e in rejoining] == [("transaction_failed", 1)], rejoining
    assert "Unexpected error during batch delivery" in rejoining[0]["error"]
    assert len(built) == 2
    counted = await effects(aws, bucket)
    assert (counted[first], counted[later]) == (1, 1), counted
    # the first alert, its offsets' commit aborted, came again to the new service: its step, whose intent was
    # committed before acting and whose result was aborted, was resolved by verify(), not acted on again
    assert [b'"recovered":true' in line for line in _results(tmp_path, first)] == [False, True]
    lines = (tmp_path / "timeline.jsonl").read_bytes().splitlines()
    assert verify_lines(lines).entries == len(lines)  # both services wrote one chain


async def _ready(built: list[Service], n: int, task: asyncio.Task[None]) -> bool:
    """Whether the n-th service built (0: the first) is consuming; fails at once if serving ended."""
    assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
    return len(built) > n and built[n].ready.is_set()


def _results(tmp_path: Any, key: str) -> list[bytes]:
    """The timeline's put-marker results for `key`."""
    return [line for line in (tmp_path / "timeline.jsonl").read_bytes().splitlines()
            if b'"step.result"' in line and b"put-marker" in line and key.encode() in line]
