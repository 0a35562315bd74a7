"""Full-pipeline benchmark through a broker; every figure is a ratio to a baseline in the same run.

    .venv/bin/python bench/pipeline.py [--events 20000] [--rate R] [--seconds 10] [--replicas 3]
                                       [--latency-only] [--idle S] [--broker tansu|apache|auto]
                                       [--loadgen-tick-ms T]

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
   minus the *scheduled* send time. R defaults to min(2,000, half the measured acting throughput).
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
import gc
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from responder import log  # noqa: E402
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview  # noqa: E402
from responder.actuators.registry import registry  # noqa: E402
from responder.ingest.kafka import ensure_topics  # noqa: E402
from responder.models.runbook import Runbook  # noqa: E402
from responder.sandbox import Broker  # noqa: E402
from responder.sandbox.kafka_jars import java_binary  # noqa: E402
from responder.sandbox.kafka_jvm import KafkaCluster  # noqa: E402
from responder.service import Service, serve  # noqa: E402
from responder.settings import Settings  # noqa: E402
from tests.findings import envelope_bytes, guardduty_finding  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from _loadgen import peak_rss_mib, template  # noqa: E402

APPLIED: dict[str, float] = {}
LOAD_CPU = [0.0, 0.0]  # the replica's process CPU time at its first polled record and once its last dispatch is seen
POLLED: dict[str, tuple[float, float]] = {}  # key -> (record's CreateTime, when the replica's poll returned it)


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


def settings(bootstrap: str, topic: str, group: str, tmp: Path) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, topics=[topic], group_id=group, session_timeout_ms=6000,
                    timeline_path=tmp / f"{group}-{os.getpid()}.jsonl", max_batch=2000, deadletter_topic="bench-dlq")


async def pipeline(bootstrap: str, topic: str, n: int, tmp: Path, *, acting: bool) -> tuple[float, float]:
    """(events/s, CPU µs/event) of the service draining n records (acting: until n actions are done)."""
    svc = Service(settings(bootstrap, topic, f"{topic}-g", tmp), aws=NoAws(), runbooks=[RUNBOOK])
    task = asyncio.create_task(svc.run())
    await svc.ready.wait()
    start, cpu = 0.0, 0.0
    while (svc.engine.actions if acting else svc.pipeline.counters.records) < n:
        if svc.pipeline.counters.records and not start:
            start, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(0.002)
    rate, per_event = n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6
    assert svc.pipeline.counters.matched == (n if acting else 0), svc.pipeline.counters
    svc.request_stop()
    await task
    return rate, per_event


def usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": peak_rss_mib()}


def gc_pauses() -> list[tuple[int, float]]:
    """(generation, seconds) of the cyclic collector's runs in this process once the load reached it."""
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif LOAD_CPU[0]:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(timed)
    return pauses


async def replica(bootstrap: str, topic: str, out: Path) -> None:
    """One `Service` of the latency test's group; writes progress while running and its results on SIGTERM."""
    pauses = gc_pauses()
    svc = Service(settings(bootstrap, topic, "lat-g", out.parent), aws=NoAws(), runbooks=[RUNBOOK])

    async def report() -> None:
        await svc.ready.wait()
        (out.parent / f"{out.name}.ready").touch()
        seen = -1
        while True:
            if len(APPLIED) != seen:  # CPU read here, not per dispatch: process_time() is a syscall
                seen, LOAD_CPU[1] = len(APPLIED), time.process_time()
                (out.parent / f"{out.name}.count").write_text(str(seen))
            await asyncio.sleep(0.1)

    poll = svc.ingest.poll

    async def stamped(timeout_ms: int = 200) -> Any:
        batch = await poll(timeout_ms)
        now = time.time()
        if batch and not LOAD_CPU[0]:
            LOAD_CPU[0] = time.process_time()
        for records in batch.values():
            for r in records:
                POLLED.setdefault((r.key or b"").decode(), ((r.timestamp_ms or 0) / 1000, now))
        return batch

    svc.ingest.poll = stamped  # type: ignore[method-assign]
    handle, chunks = svc.flow.handle, [0]

    async def counted(batch: Any) -> None:
        chunks[0] += 1
        await handle(batch)

    svc.flow.handle = counted
    reporter = asyncio.create_task(report())
    await serve(svc)
    reporter.cancel()
    out.write_bytes(orjson.dumps({"applied": APPLIED, "polled": POLLED, "load_cpu_s": LOAD_CPU[1] - LOAD_CPU[0],
                                  "chunks": chunks[0], "fsyncs": svc.recorder.syncs,
                                  "gc": pauses, **usage()}))


async def idle_cpu(bootstrap: str, seconds: float, tmp: Path) -> None:
    """CPU of one replica with no traffic (its consumers' fetches and heartbeats), after a 5 s settle."""
    await ensure_topics(bootstrap, ["idle"], partitions=3)
    svc = Service(settings(bootstrap, "idle", "idle-g", tmp), aws=NoAws(), runbooks=[RUNBOOK])
    task = asyncio.create_task(svc.run())
    await svc.ready.wait()
    await asyncio.sleep(5.0)
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    share = (time.process_time() - cpu) / (time.perf_counter() - start)
    wait = svc.ingest.fetch_wait.current if svc.ingest.fetch_wait else svc.settings.kafka_fetch_max_wait_ms
    print(f"idle     1 replica, no traffic for {seconds:.0f} s: CPU {share:.1%} of a core (fetch wait now {wait} ms)")
    svc.request_stop()
    await task


def cpu_of(pid: int) -> float:
    """Seconds of CPU a process (the broker) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def latency(bootstrap: str, rate: float, seconds: float, replicas: int, tmp: Path, broker: int,
                  tick_ms: float = 0.0) -> None:
    topic, n = "lat", int(rate * seconds)
    await ensure_topics(bootstrap, [topic], partitions=max(3, replicas))
    py, me = sys.executable, str(Path(__file__).resolve())
    outs = [tmp / f"replica{i}.json" for i in range(replicas)]
    procs = [subprocess.Popen([py, me, "--replica", str(o), "--bootstrap", bootstrap]) for o in outs]
    try:
        while not all((o.parent / f"{o.name}.ready").exists() for o in outs):
            await asyncio.sleep(0.1)
        await asyncio.sleep(7.0)  # the group settles (each join rebalances): warm-up excluded from the numbers
        gen_out, envelope = tmp / "loadgen.json", tmp / "envelope.json"
        envelope.write_bytes(template())  # built here: the generator then need not import tests.findings
        broker_cpu = cpu_of(broker)
        gen = subprocess.Popen([py, str(ROOT / "bench" / "_loadgen.py"), bootstrap, topic, "--rate", str(rate),
                                "--count", str(n), "--template", str(envelope), "--tick-ms", str(tick_ms),
                                "--out", str(gen_out)])
        while gen.poll() is None:
            await asyncio.sleep(0.2)
        broker_cpu = cpu_of(broker) - broker_cpu
        deadline = time.time() + 60
        while time.time() < deadline:
            counts = [(o.parent / f"{o.name}.count") for o in outs]
            if sum(int(c.read_text() or 0) for c in counts if c.exists()) >= n:
                break
            await asyncio.sleep(0.25)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    sent = orjson.loads(gen_out.read_bytes())
    results = [orjson.loads(o.read_bytes()) for o in outs]
    applied = {k: t for r in results for k, t in r["applied"].items()}
    lat = [applied[k] - t for k, t in sent["scheduled"].items() if k in applied]
    missing = n - len(lat)
    print(f"latency  {replicas} replicas, open loop at {rate:,.0f} ev/s for {seconds:.0f} s ({n:,} events, "
          f"{missing} not dispatched): scheduled send → actuator dispatch p50 {pct(lat, .5):.1f} ms, "
          f"p99 {pct(lat, .99):.1f} ms, p99.9 {pct(lat, .999):.1f} ms | target p99 ≤ 50 ms: "
          f"{'met' if missing == 0 and pct(lat, .99) <= 50 else 'NOT met'}")
    polled = {k: t for r in results for k, t in r["polled"].items()}
    stages: dict[str, list[float]] = {"scheduled → created (loadgen late)": [], "created → polled (broker + fetch)": [],
              "polled → dispatched (replica)": []}
    for k, t in sent["scheduled"].items():
        if k in applied and k in polled:
            created, seen = polled[k]
            for (_, values), d in zip(stages.items(), (created - t, seen - created, applied[k] - seen), strict=True):
                values.append(d)
    for name, values in stages.items():
        if values:
            print(f"         {name:36} p50 {pct(values, .5):6.1f} ms, p99 {pct(values, .99):6.1f} ms")
    print(f"         broker     CPU {broker_cpu:6.2f} s ({broker_cpu / seconds:4.0%} of a core) while the load ran")
    for name, r in [("loadgen", sent), *((f"replica {i}", r) for i, r in enumerate(results))]:
        extra = (f", sends late p99 {r['late_p99_ms']:.1f} ms; CPU {r['startup_cpu_s']:.2f} s starting, "
                 f"{r['load_cpu_s']:.2f} s during the load ({r['load_cpu_s'] / r['load_s']:.0%} of a core over "
                 f"{r['load_s']:.1f} s, {r['load_cpu_s'] / n * 1e6:.0f} µs per record, {r['batches']:,} batches)"
                 ) if "late_p99_ms" in r else (
            f", {len(r['applied']):,} dispatched, {r['load_cpu_s'] / max(1, len(r['applied'])) * 1e6:5.0f} µs CPU "
            f"per dispatched event (first poll → last dispatch), {r['chunks']:,} chunks, {r['fsyncs']:,} fsyncs, "
            f"GC runs (generation: ms) {' '.join(f'{g}: {d * 1000:.1f}' for g, d in r['gc']) or 'none'}")
        print(f"         {name:10} CPU {r['cpu_s']:6.2f} s ({r['cpu_s'] / seconds:4.0%} of a core), "
              f"peak RSS {r['rss_mib']:6.1f} MiB{extra}")


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


async def main() -> None:
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
    ap.add_argument("--replica", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = ap.parse_args()
    log.configure("console", "warning")
    registry.add(NoopActuator())
    if args.replica:
        await replica(args.bootstrap, "lat", args.replica)
        return
    if args.latency_only and not args.rate:
        ap.error("--latency-only needs --rate")
    with open_broker(args.broker) as broker, tempfile.TemporaryDirectory() as tmpdir:
        bs, tmp, n = broker.bootstrap, Path(tmpdir), args.events
        if args.idle:
            await idle_cpu(bs, args.idle, tmp)
            return
        if args.latency_only:
            await latency(bs, args.rate, args.seconds, args.replicas, tmp, broker.pid or 0, args.loadgen_tick_ms)
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
            await latency(bs, rate, args.seconds, args.replicas, tmp, broker.pid or 0)


if __name__ == "__main__":
    asyncio.run(main())
