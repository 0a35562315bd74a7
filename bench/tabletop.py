"""Tabletop benchmark: time compression (virtual seconds per wall second) of the two-hour drift scenario.

Run: `.venv/bin/python bench/tabletop.py [--runs N]` (also part of `make bench`).
The scenario (playbooks/sustained-drift.yaml: a Model Monitor report, then five responder.drift windows
30 minutes apart, a rollback when drift is sustained) runs through the real service on the embedded
sandbox. Wall time is the whole scenario: moto reset, world seeding (model signing included), service
start, every inject and settle, grading. The baseline is real time (1 virtual s per wall s); the
target of issue 10 is at least 500x.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

from responder import log
from responder.actuators.registry import registry
from responder.tabletop.loader import check_playbooks
from responder.tabletop.suite import run_suite

ROOT = Path(__file__).resolve().parents[1]
TARGET = 500.0


def main() -> None:
    """Run the drift scenario N times on one sandbox and print the compression of each and the median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    log.configure("json", "critical")
    found, errors = check_playbooks([ROOT / "playbooks" / "sustained-drift.yaml"], registry)
    if errors:
        raise SystemExit(str(errors[0]))
    result = asyncio.run(run_suite(found * args.runs, ROOT / "runbooks"))
    ratios = []
    for n, card in enumerate(result.cards, 1):
        f = card.figures
        ratio = f.virtual_seconds / f.wall_seconds
        ratios.append(ratio)
        print(f"run {n}: {card.status} {f.virtual_seconds:.0f} virtual s in {f.wall_seconds:.2f} wall s = {ratio:.0f}x")
    median = statistics.median(ratios)
    print(f"time compression (median of {len(ratios)}): {median:.0f}x real time "
          f"({median / TARGET:.2f} of the {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()
