"""`responder run --dry-run` as a user runs it: the plan is recorded, nothing is called."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from responder.ingest.kafka import ensure_topics, publish
from responder.sandbox import SANDBOX_CREDENTIALS, AwsSandbox, lifeline
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY = "AKIADRYRUNEXAMPLE001"


def test_run_dry_run_records_the_plan_and_calls_nothing(kafka_bootstrap, moto_server: AwsSandbox, unique, tmp_path):
    """A finding handled by `responder run --dry-run` yields step.planned with concrete params and no intent."""
    topic = f"alerts-{unique}"
    asyncio.run(ensure_topics(kafka_bootstrap, [topic], partitions=1))
    timeline = tmp_path / "t.jsonl"
    env = {
        **os.environ, "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap, "RESPONDER_TOPICS": f'["{topic}"]',
        "RESPONDER_GROUP_ID": f"g-{unique}", "RESPONDER_TIMELINE_PATH": str(timeline),
        "RESPONDER_AWS_ENDPOINT_URL": moto_server.endpoint_url, "RESPONDER_SESSION_TIMEOUT_MS": "6000",
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
    }
    proc = lifeline.popen([sys.executable, "-m", "responder", "run", "--dry-run"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while b"consumer_started" not in (line := proc.stderr.readline()):
            assert line, "responder run exited before consuming"
        asyncio.run(publish(kafka_bootstrap, topic, [envelope_bytes(guardduty_finding(KEY))], key=KEY.encode()))
        deadline = time.monotonic() + 60
        while not (timeline.exists() and timeline.read_bytes().count(b"step.planned") >= 3):
            assert time.monotonic() < deadline, "no step.planned recorded"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    entries = list(parse_lines(timeline.read_bytes().splitlines()))
    planned = {e.body["step"]: e.body for e in entries if e.kind == "step.planned"}
    assert planned["deactivate-key"]["params"] == {"user_name": "ml-training", "access_key_id": KEY}
    assert planned["revoke-sessions"]["params"]["principal_name"] == "ml-training"
    assert all(p["dry_run"] is True for p in planned.values())
    assert not [e for e in entries if e.kind in ("step.intent", "step.result")]


async def _count(bootstrap: str, topic: str) -> int:
    """Records on `topic` (0 when it does not exist)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        found = consumer.partitions_for_topic(topic) or set() if topic in await consumer.topics() else set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in found]) if found else {}
        return sum(ends.values())
    finally:
        await consumer.stop()


async def test_dry_run_of_the_shipped_runbooks_fails_nothing_and_produces_nothing(kafka_bootstrap, aws, topics,
                                                                                 unique, tmp_path):
    """Every shipped example, dry: later steps plan on declared outputs, a bad record is recorded, nothing produced."""
    from responder.service import Service
    from tests.integration.harness import make_settings, running, wait_for

    examples = sorted((ROOT / "runbooks" / "examples").glob("*.json"))
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks",
                             dry_run=True, timeline_mirror_topic=f"mirror-{unique}")
    service = Service(settings)

    def kinds() -> list[str]:
        return [e.kind for e in service.recorder.entries()]

    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [p.read_bytes() for p in examples] + [b"\x00 not a record"])
        await wait_for(lambda: kinds().count("record.rejected") == 1 and kinds().count("incident.opened") >= 10, 60)
    entries = list(parse_lines((tmp_path / "t.jsonl").read_bytes().splitlines()))
    assert [e.body for e in entries if e.kind in ("step.intent", "step.result")] == []
    planned = {(e.incident, e.body["step"]): e.body for e in entries if e.kind == "step.planned"}
    notify = next(b for (_, step), b in planned.items() if b["params"].get("fields", {}).get("snapshots"))
    assert notify["params"]["fields"]["snapshots"] == ["snap-0123456789abcdef0"]  # aws.ec2.snapshot_volumes' example
    [rejected] = [e.body for e in entries if e.kind == "record.rejected"]
    assert rejected["dry_run"] is True
    assert rejected["deadletter_topic"] == topics["deadletter"]
    assert await _count(kafka_bootstrap, topics["deadletter"]) == 0
    assert await _count(kafka_bootstrap, f"mirror-{unique}") == 0
