"""Run the real Service on the real broker with its AWS endpoint behind the fault proxy; count effects in moto.

The runbook's step leaves a new, uniquely named S3 object per apply (tests.integration.crash_worker.PutMarker), so
an action applied twice shows as two objects in moto whatever responder recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from responder.actuators.aws.session import AwsSession
from responder.actuators.registry import Registry
from responder.ingest.kafka import publish
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.aws import AwsSandbox
from responder.sandbox.faults import Call, FaultProxy
from responder.service import Service
from tests.faults.table import FaultRow
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.crash import effects, fake_key
from tests.integration.crash_worker import PutMarker, marker_runbook
from tests.integration.harness import make_settings, running, wait_for

RUNBOOK = marker_runbook(
    "fault-marker", "Leave one marker object per compromised key, then one escalation marker (fault suite).",
    retries="RETRIES", timeout="TIMEOUT") + """\
    on_failure: continue
  - id: escalate
    actuator: test.s3.put_marker
    with:
      bucket: BUCKET
      marker: ESC${event.resource.access_key.id}
    retries: 0
    timeout: TIMEOUT
"""


def direct(moto: AwsSandbox) -> AwsSession:
    """A session straight to moto (no proxy): what the tests count effects with."""
    return AwsSession(endpoint_url=moto.endpoint_url, credentials=SANDBOX_CREDENTIALS)


def markers_only(bucket: str, prefix: str = "") -> Callable[[Call], bool]:
    """Faults hit only the marker step's calls (PutObject and its verify listing) under effects/<prefix>."""
    def match(call: Call) -> bool:
        return call.path.startswith(f"/{bucket}/effects/{prefix}") or (
            call.path.startswith(f"/{bucket}?") and f"prefix=effects%2F{prefix}" in call.path)
    return match


def step_results(service: Service, step: str) -> dict[str, dict[str, object]]:
    """{target: result body} of one step, from the engine's finished steps."""
    return {str(r.target): r.body() for r in service.engine.state.results() if r.step == step}


def marker_service(bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp: Path, bucket: str, *,
                   retries: int = 6, step_timeout: float = 30.0, manual_assignment: bool = True,
                   **extra: object) -> Service:
    """The real Service running the fault-marker runbook on `bucket`, its AWS calls going through `aws` (its consumers
    assigned by hand unless `manual_assignment` is False: then in their groups)."""
    books = tmp / "runbooks"
    books.mkdir(parents=True, exist_ok=True)
    text = RUNBOOK.replace("BUCKET", bucket).replace("RETRIES", str(retries)).replace("TIMEOUT", str(step_timeout))
    (books / "fault-marker.yaml").write_text(text, encoding="utf-8")
    registry = Registry()
    registry.add(PutMarker())
    settings = make_settings(bootstrap, aws, topics, unique, tmp / "timeline.jsonl", books,
                             kafka_manual_assignment=manual_assignment, aws_call_timeout=aws.call_timeout, **extra)
    return Service(settings, registry=registry)


async def publish_findings(bootstrap: str, topic: str, keys: list[str], *, keyed: bool = False) -> None:
    """One GuardDuty finding per key; `keyed`: each with its access key as the Kafka key (handled concurrently),
    else all unkeyed (one after another)."""
    if not keyed:
        await publish(bootstrap, topic, [envelope_bytes(guardduty_finding(k)) for k in keys], key=None)
        return
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:  # all sent before any ack is awaited, so they reach the service together
        sent = [await producer.send(topic, envelope_bytes(guardduty_finding(k)), key=k.encode()) for k in keys]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def cloud_fault_run(bootstrap: str, moto: AwsSandbox, topics: dict[str, str], unique: str, tmp: Path, *,
                          fault: str, arm: Callable[[FaultProxy], None], events: int = 6, retries: int = 6,
                          call_timeout: float = 1.0, step_timeout: float = 30.0, prefix: str = "AKIA",
                          keyed: bool = False) -> tuple[FaultRow, FaultProxy, Service]:
    """Publish `events` findings with the fault armed; wait until every marker step has a result; count in moto."""
    aws = direct(moto)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    proxy = FaultProxy(moto.endpoint_url, matches=markers_only(bucket, prefix))
    proxy.start()
    try:
        behind = AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS, call_timeout=call_timeout)
        service = marker_service(bootstrap, behind, topics, unique, tmp, bucket, retries=retries,
                                 step_timeout=step_timeout)
        keys = [fake_key() for _ in range(events)]
        async with running(service):
            arm(proxy)
            started = time.monotonic()
            await publish_findings(bootstrap, topics["alerts"], keys, keyed=keyed)
            await wait_for(lambda: len(step_results(service, "escalate")) >= events, timeout=step_timeout * 4)
            took = time.monotonic() - started
        proxy.clear()
    finally:
        proxy.stop()
    seen = await effects(aws, bucket)
    done = sum(1 for k in keys if seen[k] > 0)
    row = FaultRow(fault=fault, events=events, expected=events, done=done,
                   duplicates=sum(max(0, seen[k] - 1) for k in keys), lost=events - done, recover_s=took,
                   note=", ".join(f"{k} {v}" for k, v in sorted(proxy.injected.items())))
    return row, proxy, service
