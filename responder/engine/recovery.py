"""Rebuild engine state from the timeline: a step with a result is never repeated, parked steps stay parked."""

from __future__ import annotations

from collections.abc import Iterable

from responder.engine.state import EngineState
from responder.models.timeline import TimelineEntry


def replay(state: EngineState, entries: Iterable[TimelineEntry]) -> int:
    """Empty `state`, then fold every entry into it; returns how many entries were read.

    A replay rebuilds everything: it may run again on partition assignment.
    """
    state.clear()
    count = 0
    for entry in entries:
        count += 1
        state.apply(entry)
    return count
