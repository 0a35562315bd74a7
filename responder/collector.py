"""The cyclic garbage collector, tuned for a long-running consumer.

`tune(max_batch)` runs once the service has started: objects alive then (modules, runbooks, recovered state) are
frozen out of the collector, and generation 0 collects after `PEAK_PER_RECORD` × `max_batch` net allocations
(at least 50,000, at most `MOST_YOUNG`) instead of 700. The hot path makes many short-lived containers and no
cycles; what makes generation 0 due is what is alive at once, and that peaks inside a chunk, when every task of
the chunk waits on the timeline's group commit (about 100 tracked objects per acting record,
bench/gc_objects.py --peak). Below that peak, a large chunk set off several collections, each walking every
object of the chunk in flight; above it, a collection mostly comes once the chunk's objects are gone, and walks
the engine state's survivors, each once. The price is the pause of the collection that does run: it walks at
most about the threshold's objects (≈ 1 µs each: about 0.1 s at the default `max_batch` of 500, 0.4 s at 2,000,
about 1 s at most), and every record arriving meanwhile waits.
A replica with idle moments never gets there (below).

`when_idle()` is called by the partition lanes (`Flow(on_idle=…)`) when a chunk ends and no partition has
records queued or a chunk in hand: it collects the young generations then, between chunks rather than inside
one, once at least `IDLE_YOUNG` objects are pending. It takes generation 0, or generation 1 when that one is due,
and leaves generation 2 to CPython's own collection and its heuristics (it stops short of making one due). A
replica that is never idle (a backlog) collects when generation 0's threshold says.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 50)
PEAK_PER_RECORD = 200
"""Generation 0's threshold per record of a chunk: twice the tracked objects alive per acting record at a chunk's
peak (bench/gc_objects.py --peak), room for runbooks with more steps."""
MOST_YOUNG = 1_000_000
"""Generation 0's threshold at most (a collection of about 1 s, well inside a consumer's session timeout), whatever
`max_batch` says."""
IDLE_YOUNG = 5_000
"""Young objects worth a collection in an idle moment (about 1 ms of collecting)."""


def thresholds(max_batch: int) -> tuple[int, int, int]:
    """The collector's thresholds for chunks of up to `max_batch` records: generation 0's above a chunk's peak."""
    return min(MOST_YOUNG, max(THRESHOLDS[0], PEAK_PER_RECORD * max_batch)), THRESHOLDS[1], THRESHOLDS[2]


def tune(max_batch: int) -> None:
    """Freeze what is alive now out of the collector, and collect generation 0 above a chunk's peak."""
    gc.freeze()
    gc.set_threshold(*thresholds(max_batch))


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
