"""What grows while bench/longrun.py's engine loop runs: a tracemalloc diff between two points (not in `make bench`).

    PYTHONPATH=. .venv/bin/python bench/_memdiff.py [--events 40000] [--incidents 4000] [--days 4]
                                                    [--points 10000,40000]

The same workload as bench/longrun.py (one no-op step per incident, group commit, eviction every virtual hour),
traced from the first event; at each point (after `gc.collect()`) it prints traced memory, RSS, live incidents
and the object types that grew by more than 50, then the 15 source lines whose traced memory grew most between
the first and the last point. About 4x slower than longrun under tracemalloc.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from bench.longrun import BOOK, START, engine_on, rss_mb
from responder import log
from responder.models.event import Event
from responder.rules.matcher import Match


async def run(args: argparse.Namespace, directory: Path) -> None:
    per, spacing = max(1, args.events // args.incidents), args.days * 86400 / args.incidents
    points = sorted(int(p) for p in args.points.split(","))
    now = [START.timestamp()]
    recorder, engine, template = engine_on(directory, now)
    done, evicted_at, began = 0, now[0], time.perf_counter()
    batch: list[Event] = []
    snaps: dict[int, tracemalloc.Snapshot] = {}
    counts: collections.Counter[str] = collections.Counter()
    for i in range(args.incidents):
        key = f"AKIA{i:016d}"
        res = tuple(r.model_copy(update={"id": key}) if r.id.startswith("AKIA") else r for r in template.resources)
        for j in range(per):
            at = START + timedelta(seconds=i * spacing + j * 30)
            batch.append(template.model_copy(update={"id": f"{i}-{j}", "time": at, "resources": res,
                                                     "incident_key": key}))
        if len(batch) < 256 and i < args.incidents - 1:
            continue
        now[0] = max(now[0], batch[-1].time.timestamp())
        await asyncio.gather(*(engine.handle(Match(BOOK, e)) for e in batch))
        await recorder.flush()
        done, batch = done + len(batch), []
        if now[0] - evicted_at >= 3600:
            engine.evict()
            evicted_at = now[0]
        for point in points:
            if point in snaps or done < point:
                continue
            gc.collect()
            snaps[point] = tracemalloc.take_snapshot()
            before, counts = counts, collections.Counter(type(o).__name__ for o in gc.get_objects())
            grew = sorted(((k, n - before[k]) for k, n in counts.items() if before and n - before[k] > 50),
                          key=lambda kv: -kv[1])
            print(f"{done:,} events ({time.perf_counter() - began:.0f} s): traced "
                  f"{tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB, RSS {rss_mb('VmRSS'):.1f} MB, live "
                  f"incidents {len(engine.state.incidents.all())}, object types grown by > 50: {grew[:10]}",
                  flush=True)
    recorder.close()
    print(f"top growth between {points[0]:,} and {points[-1]:,} events, by source line:")
    for stat in snaps[points[-1]].compare_to(snaps[points[0]], "lineno")[:15]:
        print(f"  {stat}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--incidents", type=int, default=4_000)
    parser.add_argument("--days", type=float, default=4)
    parser.add_argument("--points", default="10000,40000")
    args = parser.parse_args()
    log.configure("json", "warning")
    tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
