"""Which input partition each incident belongs to, and the engine state cut into per-incident slices.

The fleet keeps each input partition's engine state in a changelog topic co-partitioned with the alert
topics (Kafka Streams' state stores): one record per incident, keyed by incident id, whose value is that
incident's `EngineSnapshot` slice (the incident, its step results, in-flight intents and parked approvals).
`Partitions` learns the partition of an incident from the timeline entries the engine writes while it
handles a record of that partition (`event.received` carries the record's origin), cuts slices out of
the state, merges restored slices in and releases the incidents of a revoked partition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from responder.engine.quotas import QuotaRun
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.models.timeline import EntryKind, TimelineEntry

_NAMING = (EntryKind.INCIDENT_OPENED, EntryKind.INCIDENT_JOINED, EntryKind.INCIDENT_SUPPRESSED)


class Partitions:
    """Incident → input partition, for the partitions this replica owns."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}
        self._origin: dict[str, int] = {}  # event id → partition (every runbook it matches names an incident)
        self._handling: dict[tuple[str, int], list[str]] = {}  # (topic, partition) → its chunk in hand's event ids

    def route(self, entries: Sequence[TimelineEntry]) -> dict[int, set[str]]:
        """The incidents each partition's entries touched (learning new incidents' partitions on the way)."""
        touched: dict[int, set[str]] = {}
        for entry in entries:
            body = entry.body
            if entry.kind == EntryKind.EVENT_RECEIVED:
                origin = body.get("origin")
                if isinstance(origin, dict) and isinstance(partition := origin.get("partition"), int):
                    event = str(body.get("event_id"))
                    self._origin[event] = partition
                    self._handling.setdefault((str(origin.get("topic")), partition), []).append(event)
                continue
            incident = entry.incident
            if not incident:
                continue
            if entry.kind in _NAMING:
                partition = self._origin.get(str(body.get("event_id")))  # not popped: another runbook's may follow
                if partition is not None:
                    self.of[incident] = partition
            partition = self.of.get(incident)
            if partition is not None:
                touched.setdefault(partition, set()).add(incident)
        return touched

    def settle(self, chunk: Iterable[tuple[str, int]]) -> None:
        """A chunk of these (topic, partition)s is handled and its entries are routed (durable): every incident its
        events named knows its partition, so their origins are forgotten. Only then: a runbook's steps may run for
        minutes (a slow actuator) before the event's next runbook names its incident, while the other lanes go on,
        so a cap on the events remembered would forget one still needed. A lane handles one chunk at a time: the
        origins kept are those of the chunks in hand."""
        for key in chunk:
            for event in self._handling.pop(key, ()):
                if self._origin.get(event) == key[1]:
                    del self._origin[event]

    def owned(self, partition: int) -> set[str]:
        """The incidents of one partition."""
        return {i for i, p in self.of.items() if p == partition}

    def forget(self, incidents: Iterable[str]) -> None:
        """These incidents left the replica (revoked or evicted)."""
        for incident in incidents:
            self.of.pop(incident, None)


def cut(state: EngineState, incidents: set[str]) -> dict[str, EngineSnapshot]:
    """One slice per incident (incidents evicted since are absent: their changelog record is a tombstone)."""
    snap = state.snapshot()
    out = {i.id: EngineSnapshot(incidents=[i]) for i in snap.incidents if i.id in incidents}
    for key, done in snap.done.items():
        if done.incident in out:
            out[done.incident].done[key] = done
    for key, flying in snap.inflight.items():
        if flying.incident in out:
            out[flying.incident].inflight[key] = flying
    for parked in snap.parked:
        if parked.incident in out:
            out[parked.incident].parked.append(parked)
    for granted in snap.granted:
        if granted.incident in out:
            out[granted.incident].granted.append(granted)
    for carried in snap.continuing:
        if carried[0].incident in out:
            out[carried[0].incident].continuing.append(carried)
    return out


def merge(state: EngineState, slices: Iterable[EngineSnapshot]) -> None:
    """Add restored slices (and quota windows, as a union: each time as often as the window holding it most often
    has it, so runs recorded at one clock reading stay apart and a run read back from several keys counts once)."""
    snap = state.snapshot()
    runs = {(r.runbook, r.actuator): Counter(r.times) for r in snap.quotas}
    for part in slices:
        snap.incidents.extend(part.incidents)
        snap.done.update(part.done)
        snap.inflight.update(part.inflight)
        snap.parked.extend(part.parked)
        snap.granted.extend(part.granted)
        snap.continuing.extend(part.continuing)
        snap.closed.extend(part.closed)
        for run in part.quotas:
            pair = (run.runbook, run.actuator)
            runs[pair] = runs.get(pair, Counter()) | Counter(run.times)
    snap.quotas = [QuotaRun(rb, act, tuple(sorted(times.elements()))) for (rb, act), times in runs.items()]
    state.restore(snap)


def release(state: EngineState, incidents: set[str]) -> None:
    """Drop the slices of incidents that moved to another replica."""
    snap = state.snapshot()
    snap.incidents = [i for i in snap.incidents if i.id not in incidents]
    snap.done = {k: d for k, d in snap.done.items() if d.incident not in incidents}
    snap.inflight = {k: f for k, f in snap.inflight.items() if f.incident not in incidents}
    snap.parked = [p for p in snap.parked if p.incident not in incidents]
    snap.granted = [p for p in snap.granted if p.incident not in incidents]
    snap.continuing = [c for c in snap.continuing if c[0].incident not in incidents]
    state.restore(snap)
