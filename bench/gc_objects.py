"""GC-tracked objects of the acting path (bench/acting.py's records and batch handler), per acting event.

    .venv/bin/python bench/gc_objects.py [--events 10000] [--chunk 2000]      # what survives a chunk
    .venv/bin/python bench/gc_objects.py --peak [--trace]                       # alive inside a chunk
    .venv/bin/python bench/gc_objects.py --tuned [--thresholds 50000,20,50]     # collections per generation

The collector's generation-0 count grows by each container allocated and shrinks by each freed, so what
triggers collections is what is alive at once: inside a chunk (every task of the chunk waits on the group
commit together, `--peak`: counted at the chunk's first actuator call, by type, and with `--trace` by the
responder line that allocated it) and what the engine state keeps after the chunk (default: survivors of a
full collection, by type). `--tuned` runs with the service's tuning and prints each generation's collections
and their CPU time. Not a target: a diagnostic for the collector's share that bench/acting.py prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from acting import _Partition, acting_service, raw_records  # noqa: E402
from pipeline import NoopActuator  # noqa: E402

from responder import collector, log  # noqa: E402
from responder.actuators.registry import registry  # noqa: E402
from responder.service import Service  # noqa: E402


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=2_000)
    ap.add_argument("--thresholds", default="")
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--peak", action="store_true", help="objects alive at a chunk's first actuator call")
    ap.add_argument("--tuned", action="store_true", help="gc on, tuned; print per-generation collections")
    args = ap.parse_args()
    log.configure("console", "warning")
    registry.add(NoopActuator())
    with tempfile.TemporaryDirectory() as tmp:
        svc = acting_service(args.chunk, Path(tmp) / "timeline.jsonl")
        try:
            await probe(svc, args)
        finally:
            await svc.close_unstarted()
            svc.recorder.close()


async def probe(svc: Service, args: argparse.Namespace) -> None:
    """Warm the service up with one chunk, then take the reading `args` asks for."""
    stamp = int(time.time() * 1000)
    part: Any = _Partition()
    await svc._handle_batch({part: raw_records(args.chunk, "W", stamp)})  # the first chunk fills the caches
    raws = raw_records(args.events, "R", stamp)
    n = len(raws)
    if args.peak:
        gc.collect()
        gc.disable()
        seen: dict[str, Any] = {}
        orig = NoopActuator.apply

        async def apply(self: Any, p: Any, ctx: Any) -> Any:
            if "peak" not in seen and "start" in seen:
                seen["peak"] = gc.get_count()[0]
                ids = seen["ids"]
                alive = [o for o in gc.get_objects() if id(o) not in ids]
                seen["kinds"] = collections.Counter(type(o).__name__ for o in alive)
                if args.trace:
                    where: collections.Counter[str] = collections.Counter()
                    for o in alive:
                        tb = tracemalloc.get_object_traceback(o)
                        if tb is None:
                            where["?" + type(o).__name__] += 1
                            continue
                        frames = [f for f in tb if "/responder/" in f.filename] or list(tb)
                        f = frames[-1]
                        where[f"{f.filename.split('/')[-1]}:{f.lineno} {type(o).__name__}"] += 1
                    seen["where"] = where
            return await orig(self, p, ctx)
        NoopActuator.apply = apply  # type: ignore[method-assign]
        chunk = raws[:args.chunk]
        gc.collect()
        seen["ids"] = {id(o) for o in gc.get_objects()}
        if args.trace:
            tracemalloc.start(10)
        seen["start"] = gc.get_count()[0]
        await svc._handle_batch({part: chunk})
        print(f"alive at the first actuator call, per event: {(seen['peak'] - seen['start']) / args.chunk:.1f}")
        for name, c in seen["kinds"].most_common(25):
            print(f"   {name:30s} {c / args.chunk:.2f}")
        if args.trace:
            for w, c in seen["where"].most_common(60):
                print(f"   {c / args.chunk:5.2f} {w}")
        return
    if args.tuned:
        gc.collect()
        collector.tune(args.chunk)
        if args.thresholds:
            gc.set_threshold(*map(int, args.thresholds.split(",")))
        stats: dict[int, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0])
        started = [0.0]

        def cb(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.process_time()
            else:
                s = stats[info["generation"]]
                s[0] += 1
                s[1] += time.process_time() - started[0]
                s[2] += info["collected"]
        gc.callbacks.append(cb)
        cpu = time.process_time()
        for i in range(0, n, args.chunk):
            await svc._handle_batch({part: raws[i:i + args.chunk]})
        await svc.recorder.flush()
        used = time.process_time() - cpu
        gc.callbacks.pop()
        print(f"cpu {used / n * 1e6:.1f} us/event")
        for g, (c, t, col) in sorted(stats.items()):
            print(f"gen{g}: {c} collections, {t * 1e3:.1f} ms total, {t / max(c, 1) * 1e3:.2f} ms each, "
                  f"{t / n * 1e6:.1f} us/event, collected {col}")
        return
    gc.collect()
    gc.disable()
    before_ids = {id(o) for o in gc.get_objects()}
    count0 = gc.get_count()[0]
    peaks = []
    if args.trace:
        tracemalloc.start(12)
    for i in range(0, n, args.chunk):
        c0 = gc.get_count()[0]
        await svc._handle_batch({part: raws[i:i + args.chunk]})
        peaks.append(gc.get_count()[0] - c0)
    await svc.recorder.flush()
    net = gc.get_count()[0] - count0
    snap = tracemalloc.take_snapshot() if args.trace else None
    unreachable = gc.collect()
    after = gc.get_objects()
    survivors = [o for o in after if id(o) not in before_ids]
    print(f"net tracked objects per event (gen0 count growth): {net / n:.1f}; per chunk: "
          f"{[round(p / args.chunk, 1) for p in peaks]}")
    print(f"cyclic garbage per event: {unreachable / n:.2f}")
    print(f"survivors after collect per event: {len(survivors) / n:.2f}")
    kinds = collections.Counter(type(o).__name__ for o in survivors)
    for name, c in kinds.most_common(15):
        print(f"   {name:30s} {c / n:.2f}")
    if snap is not None:
        stats_ = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).statistics("traceback")
        total = sum(s.size for s in stats_)
        print(f"traced memory alive: {total / n:.0f} B/event")
        for s in stats_[:12]:
            print(f"{s.size / n:.0f} B/event, {s.count / n:.2f} blocks/event")
            for line in s.traceback.format()[-8:]:
                print("    " + line)
    gc.enable()


if __name__ == "__main__":
    asyncio.run(main())
