"""Backpressure under a 20x flood while the actuators are slow: bounded in-flight and memory, nothing lost or twice.

The real Service on the real broker, its AWS calls through the fault proxy (latency on the marker calls) to moto;
effects are counted in moto.
"""

from __future__ import annotations

import asyncio
import resource
import tracemalloc
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer

from responder.actuators.aws.session import AwsSession
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.sandbox.faults import FaultProxy
from tests.faults.cloud import direct, effects, marker_service, markers_only, step_results
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.crash import fake_key
from tests.integration.harness import running, wait_for

pytestmark = pytest.mark.integration
MAX_BATCH, MAX_IN_FLIGHT = 10, 30


@dataclass
class Sampled:
    """What the sampler saw while the flood drained."""

    in_flight: int = 0  # most records of one partition in flight
    total: int = 0  # most records in flight over all partitions
    lag: int = 0  # most records seen waiting in the broker (a paused partition's high watermark is not refreshed)
    paused: int = 0  # most partitions paused at once


async def _sample(service, seen: Sampled, stop: asyncio.Event) -> None:
    flow = service.flow
    while not stop.is_set():
        lanes = [flow.in_flight(tp) for tp in service.ingest.assigned()]
        seen.in_flight = max(seen.in_flight, *lanes, 0)
        seen.total = max(seen.total, flow.in_flight())
        seen.lag = max(seen.lag, sum(service.ingest.lag().values()))
        seen.paused = max(seen.paused, len(flow.paused()))
        await asyncio.sleep(0.01)


async def _send(bootstrap: str, topic: str, keys: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, envelope_bytes(guardduty_finding(k)), key=k.encode())
                               for k in keys])
    finally:
        await producer.stop()


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


async def test_20x_flood_with_slow_actuators_pauses_partitions_bounds_memory_and_acts_once(
        kafka_bootstrap, moto_server, topics, unique, tmp_path):
    """A 20x alert flood with slow actuators pauses partitions, bounds memory, and acts on every alert exactly once."""
    aws = direct(moto_server)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    proxy = FaultProxy(moto_server.endpoint_url, matches=markers_only(bucket))
    proxy.start()
    normal, flood = [fake_key() for _ in range(10)], [fake_key() for _ in range(10 * 20)]
    seen, stop = Sampled(), asyncio.Event()
    try:
        behind = AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS, call_timeout=20)
        service = marker_service(kafka_bootstrap, behind, topics, unique, tmp_path, bucket, step_timeout=60,
                                 max_batch=MAX_BATCH, max_in_flight=MAX_IN_FLIGHT)
        async with running(service):
            await _send(kafka_bootstrap, topics["alerts"], normal)  # the normal rate: handled as it comes
            await wait_for(lambda: len(step_results(service, "escalate")) >= len(normal), timeout=60)
            assert service.flow.pauses == 0
            rss_before = _rss_kb()
            tracemalloc.start()
            sampler = asyncio.create_task(_sample(service, seen, stop))
            proxy.latency(1.0, 40)  # the actuators turn slow
            await _send(kafka_bootstrap, topics["alerts"], flood)  # 20x: all at once
            total = len(normal) + len(flood)
            await wait_for(lambda: len(step_results(service, "escalate")) >= total, timeout=240)
            stop.set()
            await sampler
            grown, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss_after = _rss_kb()
            pauses = service.flow.pauses
            paused_metric = sum(service.metrics.value("responder_partition_pauses_total", topic=topics["alerts"],
                                                      partition=p) for p in "012")  # read before the stop clears them
    finally:
        stop.set()
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        proxy.stop()
    counted = await effects(aws, bucket)
    print(f"in-flight peak {seen.in_flight}/partition, {seen.total} total; lag peak {seen.lag}; "
          f"paused {seen.paused} at once, {pauses} pauses; traced +{grown // 1024} KiB kept, "
          f"peak +{peak // 1024} KiB; RSS +{(rss_after - rss_before) // 1024} MiB")
    bound = max(MAX_IN_FLIGHT, MAX_BATCH)
    assert pauses > 0, "no partition was paused while its actuators were slow"
    assert seen.paused > 0
    assert service.flow.peak <= bound, "a partition held more than its budget"
    assert seen.in_flight <= bound
    assert seen.total <= 3 * bound < len(flood), "the service held the flood instead of leaving it in Kafka"
    assert paused_metric == pauses
    assert peak - grown < 32 * 1024 * 1024, "transient memory during the flood grew past the in-flight budget"
    assert rss_after - rss_before < 128 * 1024, "RSS grew by more than 128 MiB"
    for key in normal + flood:  # every alert acted exactly once, for both steps
        assert (counted[key], counted[f"ESC{key}"]) == (1, 1), key
