"""Full-pipeline benchmark through a broker; every figure is a ratio to a baseline in the same run.

    .venv/bin/python bench/pipeline.py [--events 20000] [--rate R] [--seconds 10] [--replicas 3]
                                       [--latency-only] [--idle S] [--broker tansu|apache|auto]
                                       [--loadgen-tick-ms T] [--no-fleet]

The broker is the embedded Tansu broker unless `--broker` says otherwise (`apache`: one Apache Kafka node
from its Maven jars, as the fleet tests use; it needs Java).

1. throughput, N GuardDuty findings pre-loaded per topic, drained by one process (wall events/s and
   CPU µs per event of this process; the broker is a separate process):
   - baseline: a plain aiokafka consumer group that JSON-decodes each record and commits each batch
     (run before and after the pipeline phases; their mean is the baseline);
   - no match: the pipeline with a runbook that is a candidate for every finding but whose condition
     fails (severity 2 < 5): consume → authenticate → decode → normalise → match → commit;
   - acting: every finding matches and runs one step on a no-op actuator, every timeline entry durable
     (intent fsync'd before the call, the batch's entries before the commit).
   Targets: no match ≥ 0.5 of the baseline, acting ≥ 0.15.
2. latency: `--replicas` `Service` processes in one consumer group, fed by a separate open-loop load
   generator process (bench/_loadgen.py) at R events/s for `--seconds`; latency is actuator dispatch
   minus the *scheduled* send time. The replicas are a fleet: they share a changelog topic (`lat.changelog`,
   compacted, as many partitions as the input topic), so each partition's engine state follows it, written to the
   changelog before each timeline batch counts as durable (in Kafka transactions on Apache Kafka; Tansu has none,
   so there without them). `--no-fleet` runs them without a changelog, as before 2026-12-07: a configuration each
   replica now reports as an error (`group_shared_without_fleet`), kept to compare the two. The latency line says
   which ("3 replicas, fleet (changelog lat.changelog)" or "3 replicas, not a fleet"). R defaults to
   min(2,000, half the measured acting throughput).
   Prints p50 / p99 / p99.9, and CPU and peak RSS of every process; per replica also the CPU per dispatched
   event between its first polled record and its last dispatch (start-up excluded), its chunks, fsyncs and
   collector runs under load; and the broker's CPU while the load ran. Target: p99 ≤ 50 ms.
   The generator stands for producers on other machines but shares these cores, so it is kept cheap: this
   process builds the envelope template once and passes it (`--template`), so the generator does not import
   tests.findings (≈ 1.3 s less CPU at start-up); each record's partition is computed before the load as the
   default partitioner would (murmur2 of the key), and each due record is appended to its partition's open
   batch (`create_batch` / `send_batch`) stamped with its scheduled time (header `bench-scheduled`), so
   lateness is never hidden. Its line gives its CPU at start-up and during the load (first send → flush)
   apart. What is left during the load (≈ 20 % of a core at 757/s, as before) is the loop's wake-up per record
   and a produce request per batch, set by the schedule and the broker's round trip; `--loadgen-tick-ms T`
   makes it wake at most every T ms (fewer wake-ups and requests) at the price of up to T ms more latency,
   which is counted (default 0: as each record falls due). See docs/development.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._dispatch import RUNBOOK, NoAws, NoopActuator, settings  # noqa: E402
from bench._latency import idle_cpu, latency, replica  # noqa: E402
from responder import log  # noqa: E402
from responder.actuators.registry import registry  # noqa: E402
from responder.ingest.kafka import ensure_topics  # noqa: E402
from responder.sandbox import Broker  # noqa: E402
from responder.sandbox.kafka_jars import java_binary  # noqa: E402
from responder.sandbox.kafka_jvm import KafkaCluster  # noqa: E402
from responder.service import Service  # noqa: E402
from tests.findings import envelope_bytes, guardduty_finding  # noqa: E402


def records(n: int, prefix: str, severity: float = 8) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        key = f"AKIA{prefix}{i:012d}"[:20]
        out.append((key.encode(), envelope_bytes(guardduty_finding(key, finding_id=f"{prefix}-{i}",
                                                                   severity=severity))))
    return out


async def produce(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futs = [await producer.send(topic, v, key=k) for k, v in recs]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def baseline(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(events/s, CPU µs/event) of a plain consumer group: getmany, orjson.loads each record, commit each batch."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-g", enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    seen, start, cpu = 0, 0.0, 0.0
    try:
        while seen < n:
            got = await consumer.getmany(timeout_ms=200, max_records=2000)
            if got and not start:
                start, cpu = time.perf_counter(), time.process_time()
            for msgs in got.values():
                for m in msgs:
                    orjson.loads(m.value)
                    seen += 1
            if got:
                await consumer.commit()
        return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6
    finally:
        await consumer.stop()


async def pipeline(bootstrap: str, topic: str, n: int, tmp: Path, *, acting: bool) -> tuple[float, float]:
    """(events/s, CPU µs/event) of the service draining n records (acting: until n actions are done).

    Timed from the return of the service's first poll that brought records, as the baseline is from its first
    `getmany`: the counters move a chunk at a time, so a start taken when they first move left the first chunk's
    work out (all of it when the records fit one poll: "0 ev/s" at `--events 2000`).
    """
    svc = Service(settings(bootstrap, topic, f"{topic}-g", tmp), aws=NoAws(), runbooks=[RUNBOOK])
    poll, first = svc.ingest.poll, [0.0, 0.0]  # perf_counter, process_time at the first poll with records

    async def stamped(timeout_ms: int = 200) -> Any:
        batch = await poll(timeout_ms)
        if batch and not first[0]:
            first[:] = time.perf_counter(), time.process_time()
        return batch

    svc.ingest.poll = stamped  # type: ignore[method-assign]
    task = asyncio.create_task(svc.run())
    await svc.ready.wait()
    while (svc.engine.actions if acting else svc.pipeline.counters.records) < n:
        await asyncio.sleep(0.002)
    rate, per_event = n / (time.perf_counter() - first[0]), (time.process_time() - first[1]) / n * 1e6
    assert svc.pipeline.counters.matched == (n if acting else 0), svc.pipeline.counters
    svc.request_stop()
    await task
    return rate, per_event


class ApacheBroker:
    """One Apache Kafka node (KRaft) from its Maven jars, shaped like the embedded `Broker` for this script."""

    def __init__(self) -> None:
        self.cluster = KafkaCluster(nodes=1)
        self.bootstrap, self.pid = "", 0

    def __enter__(self) -> ApacheBroker:
        self.bootstrap = self.cluster.start()
        proc = self.cluster.nodes[0].proc
        self.pid = proc.pid if proc is not None else 0
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop()


def open_broker(kind: str) -> Any:
    """The broker the run uses: `tansu` (embedded), `apache`, or `auto` (Apache Kafka when Java is present)."""
    if kind == "apache" or (kind == "auto" and java_binary() is not None):
        return ApacheBroker()
    return Broker()


def parser() -> argparse.ArgumentParser:
    """This script's options (a replica process's hidden ones too: `bench._latency.replica_argv`)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=None, help="default: min(2000, half the acting throughput)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--latency-only", action="store_true", help="skip the throughput phases (needs --rate)")
    ap.add_argument("--idle", type=float, default=0.0, help="only measure an idle replica's CPU for this many s")
    ap.add_argument("--only", choices=("nomatch", "acting"), help="run the baseline and this throughput phase only "
                    "(quicker; implies --skip-latency)")
    ap.add_argument("--broker", choices=("auto", "tansu", "apache"), default="tansu",
                    help="tansu: the embedded broker (default); apache: Apache Kafka from its Maven jars (needs "
                         "Java); auto: apache when Java is present")
    ap.add_argument("--loadgen-tick-ms", type=float, default=0.0, help="the load generator wakes at most this often "
                    "(default 0: as each record falls due); a record may then wait that long, counted in its latency")
    ap.add_argument("--no-fleet", dest="fleet", action="store_false", help="run the latency phase's replicas "
                    "without a changelog topic (one consumer group, not a fleet), to compare with the default fleet")
    ap.add_argument("--replica", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--changelog", help=argparse.SUPPRESS)  # a replica's: its fleet's changelog topic
    return ap


async def main() -> None:
    ap = parser()
    args = ap.parse_args()
    log.configure("console", "warning")
    registry.add(NoopActuator())
    if args.replica:
        await replica(args.bootstrap, args.replica, args.changelog)
        return
    if args.latency_only and not args.rate:
        ap.error("--latency-only needs --rate")
    with open_broker(args.broker) as broker, tempfile.TemporaryDirectory() as tmpdir:
        bs, tmp, n = broker.bootstrap, Path(tmpdir), args.events
        if args.idle:
            await idle_cpu(bs, args.idle, tmp)
            return
        if args.latency_only:
            await latency(bs, args.rate, args.seconds, args.replicas, tmp, broker.pid or 0, args.loadgen_tick_ms,
                          fleet=args.fleet)
            return
        await ensure_topics(bs, ["base1", "base2", "nomatch", "acting"], partitions=3)
        acting_recs = records(n, "T")
        for topic in ("base1", "base2", *(["acting"] if args.only != "nomatch" else [])):
            await produce(bs, topic, acting_recs)
        if args.only != "acting":
            await produce(bs, "nomatch", records(n, "N", severity=2))
        b1 = await baseline(bs, "base1", n)
        phases = {}
        if args.only != "acting":
            phases["no match"] = (await pipeline(bs, "nomatch", n, tmp, acting=False), 0.5)
        if args.only != "nomatch":
            phases["acting"] = (await pipeline(bs, "acting", n, tmp, acting=True), 0.15)
        b2 = await baseline(bs, "base2", n)
        base_rate, base_cpu = (b1[0] + b2[0]) / 2, (b1[1] + b2[1]) / 2
        print(f"baseline consume + orjson.loads + commit: {base_rate:9,.0f} ev/s ({b1[0]:,.0f} before, {b2[0]:,.0f} "
              f"after), {base_cpu:6.1f} µs CPU/event")
        for name, ((rate, cpu), target) in phases.items():
            ratio, cpu_ratio = rate / base_rate, base_cpu / cpu
            print(f"{name:9} {rate:9,.0f} ev/s, {cpu:6.1f} µs CPU/event | ratio {ratio:.2f} (by CPU {cpu_ratio:.2f}) "
                  f"| target ≥ {target}: {'met' if ratio >= target else 'NOT met'}")
        if not args.skip_latency and not args.only:
            rate = args.rate or min(2000.0, phases["acting"][0][0] / 2)
            why = "given" if args.rate else ("2,000" if rate == 2000 else "half the acting throughput")
            print(f"latency rate {rate:,.0f} ev/s ({why})")
            await latency(bs, rate, args.seconds, args.replicas, tmp, broker.pid or 0, fleet=args.fleet)


if __name__ == "__main__":
    asyncio.run(main())
