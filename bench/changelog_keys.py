"""A fleet partition's changelog over weeks: the keys a restore reads stay flat in history.

    PYTHONPATH=. .venv/bin/python bench/changelog_keys.py [--days 30] [--per-hour 40]

Drives a `FleetState` (the fleet's real eviction and restore code) on an injected clock, owning partition 0:
`--per-hour` incidents of distinct group keys open every virtual hour and are evicted as the service does (every
virtual 10 minutes), so each leaves a `~closed#` record. The changelog is modelled as compaction leaves it (the
latest value per key; a tombstone removes the key once `delete.retention.ms` has passed). At the end of each day
it prints the live keys a restore reads, how many are `~closed#`, and the `~closed#` keys ever written (what the
topic kept before 2026-12-05, when none was tombstoned), then times a restore (fetch + adopt) of that state
into a fresh replica (after a restart, within the horizon).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from responder import log as logging
from responder.engine.snapshot import EngineSnapshot
from responder.fleet import FleetState
from tests.fleet_kit import COOLDOWN_RB as RB
from tests.kit import Kit, make_kit


class Compacted:
    """Partition 0 of the changelog as compaction leaves it: the latest value of each key."""

    txn = None

    def __init__(self) -> None:
        self.keys: dict[str, EngineSnapshot | None] = {}
        self.closed_ever: set[str] = set()

    async def read(self, partition: int) -> list[EngineSnapshot]:
        return [s for s in self.keys.values() if s is not None]

    async def write(self, partition: int, slices: dict[str, EngineSnapshot | None], quotas: object = None,
                    urgent: bool = False) -> None:
        for key, value in slices.items():
            if value is None:
                self.keys.pop(key, None)  # past delete.retention.ms, the cleaner drops the tombstone too
            else:
                self.keys[key] = value
                if key.startswith("~closed#"):
                    self.closed_ever.add(key)


async def restore_seconds(directory: Path, log: Compacted, now: float) -> tuple[float, int]:
    """A fresh replica restores partition 0 at `now`: CPU seconds and the group keys it then remembers."""
    kit = make_kit(directory, {"rb": RB})
    kit.clock.now = now
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    cpu = time.process_time()
    slices = await fleet.fetch(0)
    assert slices is not None, fleet.failed
    fleet.adopt(0, slices)
    return time.process_time() - cpu, len(kit.engine.state.snapshot().closed)


async def run(days: int, per_hour: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kit: Kit = make_kit(Path(tmp), {"rb": RB})
        log = Compacted()
        fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
        fleet.owned = {0}
        state, n = kit.engine.state, 0
        print(f"{'day':>4} {'live keys':>10} {'~closed#':>9} {'~closed# ever':>14} {'restore ms':>11}")
        for hour in range(days * 24):
            for _ in range(per_hour):
                at = datetime.fromtimestamp(kit.clock.now, UTC)
                incident = state.incidents.open("rb", f"user-{n}", f"e{n}", at)
                incident.touched = kit.clock.now
                fleet.partitions.of[incident.id] = 0
                await log.write(0, {incident.id: EngineSnapshot(incidents=[incident])})
                n += 1
            for _ in range(6):
                kit.clock.now += 600
                await fleet.evict()
            if (hour + 1) % 24 == 0:
                day = (hour + 1) // 24
                restore_dir = Path(tmp) / f"restore-{day}"
                restore_dir.mkdir()
                took, remembered = await restore_seconds(restore_dir, log, kit.clock.now)
                closed = sum(1 for k in log.keys if k.startswith("~closed#"))
                print(f"{day:>4} {len(log.keys):>10,} {closed:>9,} {len(log.closed_ever):>14,} {took * 1000:>11.1f}"
                      f"  (remembered after restore: {remembered:,})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-hour", type=int, default=40)
    args = parser.parse_args()
    logging.configure("console", "warning")
    asyncio.run(run(args.days, args.per_hour))


if __name__ == "__main__":
    main()
