"""The cyclic garbage collector, tuned for a long-running consumer.

`tune()` runs once the service has started: objects alive then (modules, runbooks, recovered state) are frozen
out of the collector, and generation 0 collects after 50,000 allocations instead of 700, since the hot path
makes many short-lived dicts and few cycles (about 2x the throughput, bench/pipeline.py). A collection at that
threshold takes 15–40 ms, and every record arriving meanwhile waits for it.

`when_idle()` is called by the partition lanes (`Flow(on_idle=…)`) when a chunk ends and no partition has
records queued or a chunk in hand: it collects the young generations then, between chunks rather than inside
one, once at least `IDLE_YOUNG` objects are pending. It takes generation 0,
or generation 1 when that one is due, and leaves generation 2 to CPython's own collection and its heuristics
(it stops short of making one due). A replica that is never idle (a backlog) collects exactly as before.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 50)
IDLE_YOUNG = 5_000
"""Young objects worth a collection in an idle moment (about 1 ms of collecting)."""


def tune() -> None:
    """Freeze what is alive now out of the collector, and collect generation 0 every 50,000 allocations."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


def when_idle(young: int = IDLE_YOUNG) -> int | None:
    """Collect generation 0 (or 1, when due) if at least `young` objects wait; the generation taken, or None."""
    pending, first, second = gc.get_count()
    if pending < young or not gc.isenabled():
        return None
    _, first_due, second_due = gc.get_threshold()
    if first + 1 < first_due:
        generation = 0
    elif second + 1 < second_due:
        generation = 1
    else:  # the next collection would make generation 2 due: CPython's own collection decides that one
        return None
    gc.collect(generation)
    return generation
