"""The service SIGKILLed mid-stream in consumer-group mode and restarted with the same `kafka_group_instance_id`
(hole 14): every finding acted on once (counted in moto), and the restart → first action time in the fault table.

The worker is the real Service (`tests.integration.crash_worker`, the marker actuator whose every apply leaves a new
S3 object) in a subprocess, already imported when it is told to start: the time measured is the groups' rejoin
plus the first step, not Python's import. The dynamic-membership row is the comparison.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from responder.actuators.aws.session import AwsSession
from responder.sandbox.fixtures import broker_choice
from tests.faults.cloud import effects
from tests.faults.table import FaultRow, record
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.crash import Workers, fake_key, timeline_state, wait_ready, worker_env
from tests.integration.crash_worker import write_runbook

pytestmark = pytest.mark.integration

BEFORE, WHILE_DEAD = 6, 6  # findings published before the kill (half acted on when it lands) and while it is dead


async def _until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> float:
    """Poll `check()` until true; the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def restart_run(bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp: Path,
                      static: bool) -> FaultRow:
    """Publish, SIGKILL the worker once half its findings are acted on, publish while it is dead, restart it."""
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    write_runbook(tmp / "runbooks", bucket)
    env = worker_env(bootstrap, aws, topics["alerts"], topics["deadletter"], unique, tmp)
    env.pop("RESPONDER_TIMELINE_ARCHIVE")
    env["RESPONDER_APPROVALS_TOPIC"] = f"approvals-{unique}"
    if static:
        env["RESPONDER_KAFKA_GROUP_INSTANCE_ID"] = f"responder-{unique}"
    timeline, keys = tmp / "timeline.jsonl", [fake_key() for _ in range(BEFORE + WHILE_DEAD)]
    workers = Workers(tmp, env)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()

    async def send(batch: list[str]) -> None:
        for key in batch:
            finding = envelope_bytes(guardduty_finding(key, finding_id=uuid.uuid4().hex))
            await producer.send_and_wait(topics["alerts"], finding, key=key.encode())

    try:
        first, go, ready = workers.spawn()
        second, go2, ready2 = workers.spawn()  # imports while the first one runs; starts when go2 appears
        go.touch()
        await wait_ready(first, ready.with_name(ready.name + ".serving"), tmp)
        await send(keys[:BEFORE])
        await _until(lambda: len(timeline_state(timeline)[0]) >= BEFORE // 2, "the first actions")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        done_at_kill = timeline_state(timeline)[0]
        await send(keys[BEFORE:])
        go2.touch()
        restarted = time.monotonic()
        serving = await _until(lambda: ready2.with_name(ready2.name + ".serving").exists(), "the restarted worker")
        await _until(lambda: bool(timeline_state(timeline)[0] - done_at_kill), "the first action after restart")
        first_action = time.monotonic() - restarted
        await _until(lambda: timeline_state(timeline)[0] >= set(keys), "every finding acted on")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        await producer.stop()
        workers.kill_all()
    seen = await effects(aws, bucket)
    membership = "static group_instance_id" if static else "dynamic membership"
    broker = broker_choice()
    caveat = " (Tansu: even a static rejoin takes seconds, docs/security.md)" if broker == "tansu" else ""
    return record(FaultRow(
        fault=f"service: SIGKILL mid-stream, restart in its consumer groups ({membership})", events=len(keys),
        expected=len(keys), done=sum(seen[k] > 0 for k in keys), duplicates=sum(max(0, seen[k] - 1) for k in keys),
        lost=sum(seen[k] == 0 for k in keys), recover_s=first_action,
        note=f"{broker} broker{caveat}; {len(done_at_kill)} acted on before the kill; session 10000 ms; "
             f"restart → groups joined {serving:.2f} s, → first action (timeline step.result)"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
async def test_restart_after_sigkill_in_consumer_groups(kafka_bootstrap, aws, topics, unique, tmp_path, static):
    """SIGKILL mid-stream, restart in the same groups (static or dynamic membership): each finding acted on once."""
    row = await restart_run(kafka_bootstrap, aws, topics, unique, tmp_path, static)
    assert (row.done, row.duplicates, row.lost) == (row.expected, 0, 0), row
