"""The latency phase of bench/pipeline.py and its idle measurement: `Service` replicas in their own processes, a
fleet by default (one consumer group sharing a changelog topic co-partitioned with the input), fed by the open-loop
load generator (bench/_loadgen.py); see bench/pipeline.py's docstring for what is printed."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench._dispatch import APPLIED, RUNBOOK, NoAws, settings
from bench._loadgen import peak_rss_mib, template
from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.sandbox import lifeline
from responder.service import Service, serve

HERE = Path(__file__).resolve().parent
TOPIC, GROUP, CHANGELOG = "lat", "lat-g", "lat.changelog"
LOAD_CPU = [0.0, 0.0]  # the replica's process CPU time at its first polled record and once its last dispatch is seen
POLLED: dict[str, tuple[float, float]] = {}  # key -> (record's CreateTime, when the replica's poll returned it)


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


async def replica(bootstrap: str, out: Path, changelog: str | None) -> None:
    """One `Service` of the latency test's group (a fleet member given `changelog`); writes progress while running
    and its results on SIGTERM."""
    pauses = gc_pauses()
    svc = Service(settings(bootstrap, TOPIC, GROUP, out.parent, changelog), aws=NoAws(), runbooks=[RUNBOOK])

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


async def make_topics(bootstrap: str, replicas: int, *, fleet: bool) -> str | None:
    """The input topic and, for a fleet, its changelog (compacted, as many partitions: co-partitioned, as
    docs/fleet.md says to create it); the changelog's name, or None when the replicas are not a fleet."""
    partitions = max(3, replicas)
    await ensure_topics(bootstrap, [TOPIC], partitions=partitions)
    if not fleet:
        return None
    await ensure_changelog(bootstrap, CHANGELOG, partitions)
    return CHANGELOG


def replica_argv(out: Path, bootstrap: str, changelog: str | None) -> list[str]:
    """The command line of one replica process (bench/pipeline.py's hidden --replica runs `replica`)."""
    return [sys.executable, str(HERE / "pipeline.py"), "--replica", str(out), "--bootstrap", bootstrap,
            *(["--changelog", changelog] if changelog else [])]


def shape(replicas: int, changelog: str | None) -> str:
    """What the latency line says the replicas ran as."""
    return f"{replicas} replicas, " + (f"fleet (changelog {changelog})" if changelog else "not a fleet")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def latency(bootstrap: str, rate: float, seconds: float, replicas: int, tmp: Path, broker: int,
                  tick_ms: float = 0.0, *, fleet: bool = True) -> None:
    """The latency phase: `replicas` replica processes (a fleet unless `fleet` is false) fed at `rate` for `seconds`."""
    n, py = int(rate * seconds), sys.executable
    changelog = await make_topics(bootstrap, replicas, fleet=fleet)
    outs = [tmp / f"replica{i}.json" for i in range(replicas)]
    procs = [lifeline.popen(replica_argv(o, bootstrap, changelog)) for o in outs]
    try:
        while not all((o.parent / f"{o.name}.ready").exists() for o in outs):
            await asyncio.sleep(0.1)
        await asyncio.sleep(7.0)  # the group settles (each join rebalances): warm-up excluded from the numbers
        gen_out, envelope = tmp / "loadgen.json", tmp / "envelope.json"
        envelope.write_bytes(template())  # built here: the generator then need not import tests.findings
        broker_cpu = cpu_of(broker)
        gen = lifeline.popen([py, str(HERE / "_loadgen.py"), bootstrap, TOPIC, "--rate", str(rate),
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
    print(f"latency  {shape(replicas, changelog)}, open loop at {rate:,.0f} ev/s for {seconds:.0f} s ({n:,} events, "
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
