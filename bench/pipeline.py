"""Full-pipeline benchmark through the embedded broker.

    .venv/bin/python bench/pipeline.py [--events 20000] [--rate 2000] [--seconds 5]

1. throughput: consume → normalise → match → plan → durable intent → result → commit, for
   N GuardDuty findings that all match (each one a step with an fsync'd intent), against a
   baseline of a plain aiokafka consumer group reading and JSON-decoding the same records;
2. latency: findings published at a fixed rate; time from send to the actuator's apply(),
   p50/p99, against the same baseline's send → consume latency.
Targets (DESIGN.md): ≥ 10k events/s; p99 alert → dispatch ≤ 50 ms at 2k events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from responder import log
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import registry
from responder.ingest.kafka import ensure_topics
from responder.models.runbook import Runbook
from responder.sandbox import Broker
from responder.service import Service
from responder.settings import Settings
from tests.findings import envelope_bytes, guardduty_finding

APPLIED: dict[str, float] = {}


class NoopParams(Params):
    access_key_id: str


class NoopActuator(Actuator[NoopParams]):
    """Records when it was dispatched; touches no cloud."""

    name = "bench.record_dispatch"
    params: ClassVar[type[NoopParams]] = NoopParams
    permissions = ("none:None",)

    def target(self, p: NoopParams) -> str:
        return p.access_key_id

    async def plan(self, p: NoopParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.access_key_id, summary="record")

    async def apply(self, p: NoopParams, ctx: ActuationContext) -> ActuationResult:
        APPLIED.setdefault(p.access_key_id, time.time())
        return ActuationResult(changed=True, target=p.access_key_id)

    async def verify(self, p: NoopParams, ctx: ActuationContext) -> bool:
        return p.access_key_id in APPLIED


class NoAws:
    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the benchmark touches no cloud")


RUNBOOK = Runbook.model_validate({
    "id": "bench", "trigger": {"source": "guardduty", "type": "*IAMUser/*",
                               "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]},
    "steps": [{"id": "dispatch", "actuator": "bench.record_dispatch",
               "with": {"access_key_id": "${event.resource.access_key.id}"}}],
})


def records(n: int, prefix: str) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        key = f"AKIA{prefix}{i:012d}"[:20]
        out.append((key.encode(), envelope_bytes(guardduty_finding(key, finding_id=f"{prefix}-{i}"))))
    return out


async def produce(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futs = [await producer.send(topic, v, key=k) for k, v in recs]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def baseline_consume(bootstrap: str, topic: str, n: int, group: str,
                           sent: dict[bytes, float] | None = None) -> tuple[float, list[float]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000)
    await consumer.start()
    seen, lat, start = 0, [], 0.0
    try:
        while seen < n:
            got = await consumer.getmany(timeout_ms=200, max_records=500)
            if got and not start:
                start = time.perf_counter()
            now = time.time()
            for msgs in got.values():
                for m in msgs:
                    orjson.loads(m.value)
                    if sent is not None and m.key in sent:
                        lat.append(now - sent[m.key])
                    seen += 1
            if got:
                await consumer.commit()
        return seen / (time.perf_counter() - start), lat
    finally:
        await consumer.stop()


def service(bootstrap: str, topic: str, group: str, tmp: Path) -> Service:
    settings = Settings(kafka_bootstrap=bootstrap, topics=[topic], group_id=group, session_timeout_ms=6000,
                        timeline_path=tmp / f"{group}.jsonl", max_batch=2000, deadletter_topic="bench-dlq")
    return Service(settings, aws=NoAws(), runbooks=[RUNBOOK])


async def pipeline_throughput(bootstrap: str, topic: str, n: int, tmp: Path) -> float:
    svc = service(bootstrap, topic, "pipe-tp", tmp)
    task = asyncio.create_task(svc.run())
    await svc.ready.wait()
    start = 0.0
    while svc.engine.actions < n:
        if svc.pipeline.counters.records and not start:
            start = time.perf_counter()
        await asyncio.sleep(0.002)
    rate = n / (time.perf_counter() - start)
    svc.request_stop()
    await task
    return rate


async def paced(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]], rate: int,
                sent: dict[bytes, float]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
    await producer.start()
    try:
        t0 = time.perf_counter()
        for i, (k, v) in enumerate(recs):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[k] = time.time()
            await producer.send(topic, v, key=k)
        await producer.flush()
    finally:
        await producer.stop()


async def pipeline_latency(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]], rate: int,
                           tmp: Path) -> list[float]:
    svc = service(bootstrap, topic, "pipe-lat", tmp)
    task = asyncio.create_task(svc.run())
    await svc.ready.wait()
    await asyncio.sleep(1.0)
    sent: dict[bytes, float] = {}
    await paced(bootstrap, topic, recs, rate, sent)
    while svc.engine.actions < len(recs):
        await asyncio.sleep(0.01)
    svc.request_stop()
    await task
    return [APPLIED[k.decode()] - sent[k] for k, _ in recs]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rate", type=int, default=2_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    log.configure("console", "warning")
    registry.add(NoopActuator())
    with Broker() as broker, tempfile.TemporaryDirectory() as tmpdir:
        bs, tmp = broker.bootstrap, Path(tmpdir)
        await ensure_topics(bs, ["base", "pipe", "base-lat", "pipe-lat"], partitions=3)
        recs = records(args.events, "T")
        await produce(bs, "base", recs)
        await produce(bs, "pipe", recs)
        base_rate, _ = await baseline_consume(bs, "base", args.events, "base-tp")
        pipe_rate = await pipeline_throughput(bs, "pipe", args.events, tmp)
        print(f"throughput  baseline consume+decode {base_rate:10,.0f} ev/s | pipeline to durable intent+result "
              f"{pipe_rate:10,.0f} ev/s | ratio {pipe_rate / base_rate:.2f} | target ≥ 10,000 ev/s")
        n_lat = int(args.rate * args.seconds)
        lat_recs = records(n_lat, "L")
        sent: dict[bytes, float] = {}
        consumer = asyncio.create_task(baseline_consume(bs, "base-lat", n_lat, "base-lat", sent))
        await asyncio.sleep(3.5)
        await paced(bs, "base-lat", lat_recs, args.rate, sent)
        _, base_lat = await consumer
        APPLIED.clear()
        pipe_lat = await pipeline_latency(bs, "pipe-lat", lat_recs, args.rate, tmp)
        print(f"latency @ {args.rate}/s  baseline send→consume p50 {pct(base_lat, .5):6.1f} ms p99 "
              f"{pct(base_lat, .99):6.1f} ms | send→dispatch p50 {pct(pipe_lat, .5):6.1f} ms p99 "
              f"{pct(pipe_lat, .99):6.1f} ms | p99 ratio {pct(pipe_lat, .99) / pct(base_lat, .99):.2f} "
              f"| target p99 ≤ 50 ms | mean {statistics.mean(pipe_lat) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
