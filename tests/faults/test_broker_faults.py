"""Broker faults under the real Service: SIGKILL + restart of a broker that keeps its data (Tansu's S3 engine on the
moto server), and the broker unreachable (its process stopped with SIGSTOP) for a while."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from responder.ingest.kafka import ensure_topics
from responder.sandbox import SANDBOX_CREDENTIALS, Broker
from responder.sandbox.aws import AwsSandbox
from tests.faults.brokers import stopped_after
from tests.faults.cloud import direct, effects, marker_service, publish_findings, step_results
from tests.faults.table import FaultRow, record
from tests.integration.crash import fake_key
from tests.integration.harness import running, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def s3_broker(moto_server: AwsSandbox, unique: str, tmp_path) -> AsyncIterator[Broker]:
    """A Tansu broker of its own whose data lives in a moto S3 bucket, so it survives SIGKILL."""
    bucket = f"tansu-{unique}"
    await direct(moto_server).call("s3", "create_bucket", Bucket=bucket)
    env = {"AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"], "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT": moto_server.endpoint_url, "AWS_ALLOW_HTTP": "true"}
    with stopped_after(Broker(storage=f"s3://{bucket}/", env=env, log_path=tmp_path / "broker.log")) as broker:
        yield broker


async def broker_fault_run(broker: Broker, moto: AwsSandbox, unique: str, tmp, *, fault: str, outage: float,
                           kill: bool, per_phase: int = 4) -> FaultRow:
    """Alerts before, during and after the outage; every one acted on once; restart → first action timed."""
    topics = {"alerts": f"alerts-{unique}", "deadletter": f"dlq-{unique}"}
    await ensure_topics(broker.bootstrap, list(topics.values()), partitions=3)
    aws = direct(moto)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    service = marker_service(broker.bootstrap, aws, topics, unique, tmp, bucket)
    before, during, after = ([fake_key() for _ in range(per_phase)] for _ in range(3))
    async with running(service):
        await publish_findings(broker.bootstrap, topics["alerts"], before)
        await wait_for(lambda: len(step_results(service, "escalate")) == per_phase, timeout=60)
        await publish_findings(broker.bootstrap, topics["alerts"], during)  # in the log, maybe not yet consumed
        pid = broker.pid
        assert pid is not None
        if kill:
            broker.kill()
        else:
            os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(outage)
        if kill:
            broker.start(timeout=30)
        else:
            os.kill(pid, signal.SIGCONT)
        back = time.monotonic()
        await publish_findings(broker.bootstrap, topics["alerts"], after)
        done_before = len(step_results(service, "put-marker"))
        await wait_for(lambda: len(step_results(service, "put-marker")) > done_before or
                       len(step_results(service, "put-marker")) == 3 * per_phase, timeout=120)
        recover = time.monotonic() - back
        await wait_for(lambda: len(step_results(service, "escalate")) == 3 * per_phase, timeout=120)
    seen = await effects(aws, bucket)
    keys = before + during + after
    return record(FaultRow(fault=fault, events=len(keys), expected=len(keys), done=sum(seen[k] > 0 for k in keys),
                           duplicates=sum(max(0, seen[k] - 1) for k in keys), lost=sum(seen[k] == 0 for k in keys),
                           recover_s=recover, note="Tansu S3 engine on moto"))


async def test_broker_sigkill_and_restart_loses_nothing(s3_broker, moto_server, unique, tmp_path):
    """The broker SIGKILLed mid-stream and restarted on its data: every alert acted on exactly once."""
    row = await broker_fault_run(s3_broker, moto_server, unique, tmp_path, fault="broker: SIGKILL, restart after 2 s",
                                 outage=2.0, kill=True)
    assert (row.lost, row.duplicates) == (0, 0), row


async def test_broker_unreachable_short(s3_broker, moto_server, unique, tmp_path):
    """The broker frozen (SIGSTOP) for 8 s: the service waits it out and then acts on every alert exactly once."""
    row = await broker_fault_run(s3_broker, moto_server, unique, tmp_path, fault="broker: unreachable 8 s",
                                 outage=8.0, kill=False)
    assert (row.lost, row.duplicates) == (0, 0), row


@pytest.mark.soak
async def test_broker_unreachable_60s(s3_broker, moto_server, unique, tmp_path):
    """The broker frozen for 60 s: the service survives and acts on every alert exactly once."""
    row = await broker_fault_run(s3_broker, moto_server, unique, tmp_path, fault="broker: unreachable 60 s",
                                 outage=60.0, kill=False, per_phase=10)
    assert (row.lost, row.duplicates) == (0, 0), row


@pytest.mark.soak
async def test_broker_sigkill_down_60s(s3_broker, moto_server, unique, tmp_path):
    """The broker SIGKILLed and down for 60 s before it restarts on its data: nothing lost, nothing twice."""
    row = await broker_fault_run(s3_broker, moto_server, unique, tmp_path, fault="broker: SIGKILL, down 60 s",
                                 outage=60.0, kill=True, per_phase=10)
    assert (row.lost, row.duplicates) == (0, 0), row
