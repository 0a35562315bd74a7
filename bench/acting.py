"""The acting path without Kafka: CPU per acting event of the service's batch handler, against `orjson.loads`.

    .venv/bin/python bench/acting.py [--events 20000] [--chunk 2000] [--repeat 3] [--gc-off]

The records of `bench/pipeline.py`'s acting phase (GuardDuty findings, each for its own access key, every one
matching the benchmark runbook and running one step on the no-op actuator) are handed to
`Service._handle_batch` in chunks of `--chunk`, exactly as the partition lanes hand a polled chunk: decode,
normalise, match, a task per key, incident, step, intent made durable (fsync'd, group commit) before the
call, result; the chunk's entries flushed before its offsets would be committed. No broker, so the figure is
the service's own work, steadier than `bench/pipeline.py --only acting` on a shared machine. Each repeat uses a
new service and timeline. Baseline, in the same run: `orjson.loads` of the same records (the decode a plain
consumer does). Prints CPU µs per acting event (best and median of the repeats), its ratio to the baseline,
the cyclic collector's share, and fsyncs. A step towards `bench/pipeline.py`'s acting target, not a target.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pipeline import RUNBOOK, NoAws, NoopActuator, records  # noqa: E402

from responder import collector, log  # noqa: E402
from responder.actuators.registry import registry  # noqa: E402
from responder.models.event import RawRecord  # noqa: E402
from responder.service import Service  # noqa: E402
from responder.settings import Settings  # noqa: E402


class _Partition:
    """What the batch handler reads of a TopicPartition."""

    topic, partition = "acting", 0


def collector_time() -> list[float]:
    """[seconds the cyclic collector ran in this process]; grows while the list is alive."""
    spent, started = [0.0], [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.process_time()
        else:
            spent[0] += time.process_time() - started[0]

    gc.callbacks.append(timed)
    return spent


def raw_records(n: int, prefix: str, stamp: int) -> list[RawRecord]:
    """`n` of `bench/pipeline.py`'s acting records (one access key each) as polled from partition 0."""
    return [RawRecord(topic="acting", partition=0, offset=i, key=k, value=v, timestamp_ms=stamp)
            for i, (k, v) in enumerate(records(n, prefix))]


def acting_service(chunk: int, timeline: Path) -> Service:
    """A service with the benchmark runbook, never started: its batch handler is driven directly."""
    settings = Settings(kafka_bootstrap="127.0.0.1:9", topics=["acting"], group_id="bench-acting", max_batch=chunk,
                        timeline_path=timeline, deadletter_topic="bench-dlq")
    svc = Service(settings, aws=NoAws(), runbooks=[RUNBOOK])
    svc.commits.handled = lambda offsets: None  # type: ignore[method-assign]  # nothing to commit to
    return svc


async def once(raws: list[RawRecord], chunk: int, tmp: Path, n: int) -> tuple[float, float, int]:
    """(CPU µs per event, collector µs per event, fsyncs) of one service handling every record."""
    svc = acting_service(chunk, tmp / f"timeline{n}.jsonl")
    part: Any = _Partition()
    gc.collect()
    collector.tune(chunk)
    spent = collector_time()
    cpu = time.process_time()
    for i in range(0, len(raws), chunk):
        await svc._handle_batch({part: raws[i:i + chunk]})
    await svc.recorder.flush()
    used = time.process_time() - cpu
    gc.callbacks.pop()
    gc.unfreeze()
    assert svc.engine.actions == len(raws), f"{svc.engine.actions} of {len(raws)} acted"
    await svc.close_unstarted()
    svc.recorder.close()
    return used / len(raws) * 1e6, spent[0] / len(raws) * 1e6, svc.recorder.syncs


def baseline(raws: list[RawRecord]) -> float:
    """CPU µs per record of `orjson.loads` over the same values (best of 5)."""
    best = float("inf")
    for _ in range(5):
        cpu = time.process_time()
        for r in raws:
            orjson.loads(r.value)
        best = min(best, time.process_time() - cpu)
    return best / len(raws) * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=2_000, help="records per polled chunk")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gc-off", action="store_true", help="disable the cyclic collector (to see its share)")
    args = ap.parse_args()
    log.configure("console", "warning")
    registry.add(NoopActuator())
    stamp = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as tmpdir:
        results = []
        for n in range(args.repeat):
            raws = raw_records(args.events, f"R{n}", stamp)
            if args.gc_off:
                gc.disable()
            results.append(await once(raws, args.chunk, Path(tmpdir), n))
            gc.enable()
        base = baseline(raws)
    cpus = sorted(r[0] for r in results)
    best, median = cpus[0], statistics.median(cpus)
    gc_share = statistics.median(r[1] / r[0] for r in results)
    print(f"baseline orjson.loads: {base:.2f} µs CPU/record")
    print(f"acting   {args.events:,} events in chunks of {args.chunk:,}: {best:.1f} µs CPU/event best, {median:.1f} "
          f"median of {args.repeat} | ratio to the baseline {base / best:.4f} (median {base / median:.4f}) | "
          f"collector {gc_share:.0%} | fsyncs {results[0][2]}")


if __name__ == "__main__":
    asyncio.run(main())
