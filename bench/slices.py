"""A fleet flush's slicing cost stays flat in history: the state's size does not set what one flush pays.

    PYTHONPATH=. .venv/bin/python bench/slices.py [--touched 10] [--open 10000] [--closed 100000] [--repeat 200]

Each flush of a fleet member writes the changelog slices of the incidents its entries touched
(`responder.engine.partitions.cut`, called by `FleetState.on_durable` once per partition written). This builds two
engine states with the engine's own API (`EngineState.restore`, `intend`, `finish`): a young one (100 open incidents,
no evicted group key) and one after weeks of running (`--open` incidents, each with a done step, and `--closed`
evicted group keys remembered: `MAX_CLOSED` is 100,000), both with 50 steps in flight (the steps in hand are live
work, which a flush still looks through: docs/fleet.md), and times the slicing of `--touched`
incidents in each (CPU clock, best of 5 rounds of `--repeat` calls). It prints µs per flush in both and their ratio
(target ≤ 1.5: the cost follows what the flush touched), and, for reference, what the whole `snapshot()` costs in
the old state (the slices were cut out of it before 2026-12-07, so a month-old fleet member paid that per flush).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from responder.engine.partitions import cut
from responder.engine.state import EngineState
from tests.state_kit import busy_state


def state_of(open_incidents: int, closed: int) -> EngineState:
    """`open_incidents` incidents with a done step each (50 with a step in flight, as under load), `closed` evicted
    group keys (tests/state_kit.py: the engine's own API)."""
    return busy_state(open_incidents, closed, flying=50, decided=False)


def per_call(fn: object, repeat: int) -> float:
    """Best of 5 rounds, CPU µs per call."""
    assert callable(fn)
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - start) / repeat)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--touched", type=int, default=10)
    ap.add_argument("--open", type=int, default=10_000)
    ap.add_argument("--closed", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    touched = {f"i{n}" for n in range(0, 2 * args.touched, 2)}
    young, old = state_of(100, 0), state_of(args.open, args.closed)
    assert len(cut(young, touched)) == len(cut(old, touched)) == args.touched
    base = per_call(lambda: cut(young, touched), args.repeat)
    aged = per_call(lambda: cut(old, touched), args.repeat)
    whole = per_call(old.snapshot, max(1, args.repeat // 100))
    print(f"slices of {args.touched} touched incidents per flush: {base:,.1f} µs with 100 open incidents, "
          f"{aged:,.1f} µs with {args.open:,} open and {args.closed:,} evicted group keys: "
          f"ratio {aged / base:.2f} (target ≤ 1.5: {'met' if aged / base <= 1.5 else 'NOT met'})")
    print(f"for reference, the whole snapshot of the old state (what a flush cut its slices from before "
          f"2026-12-07): {whole:,.0f} µs, {whole / base:,.0f}× the young state's slicing")


if __name__ == "__main__":
    main()
