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
        self.moved: list[tuple[str, int]] = []  # (incident, the partition it left) since `take_moved`

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
                    left = self.of.get(incident)
                    if left is not None and left != partition:  # its group key is not the record key
                        self.moved.append((incident, left))
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

    def take_moved(self, owned: set[int]) -> dict[int, set[str]]:
        """The incidents that moved to another partition of `owned` since the last call (their new record written),
        by the partition they left (where their record is to be tombstoned). One that moved to a partition not owned
        here keeps its old record: two records rather than none."""
        left: dict[int, set[str]] = {}
        for incident, partition in self.moved:
            if (now := self.of.get(incident)) != partition and now in owned:
                left.setdefault(partition, set()).add(incident)
        self.moved = []
        return left

    def owned(self, partition: int) -> set[str]:
        """The incidents of one partition."""
        return {i for i, p in self.of.items() if p == partition}

    def forget(self, incidents: Iterable[str]) -> None:
        """These incidents left the replica (revoked or evicted)."""
        for incident in incidents:
            self.of.pop(incident, None)


def cut(state: EngineState, incidents: set[str]) -> dict[str, EngineSnapshot]:
    """One slice per incident (incidents evicted since are absent: their changelog record is a tombstone)."""
    return state.slices(incidents)


def merge(state: EngineState, slices: Iterable[EngineSnapshot]) -> None:
    """Add restored slices (and quota windows, as a union: each time as often as the window holding it most often
    has it, so runs recorded at one clock reading stay apart and a run read back from several keys counts once;
    and the charges of in-flight steps, so a permanent failure refunds a run counted by the previous owner)."""
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
        snap.charges.extend(part.charges)
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
    gone = {k for k, f in snap.inflight.items() if f.incident in incidents}
    snap.inflight = {k: f for k, f in snap.inflight.items() if k not in gone}
    snap.charges = [c for c in snap.charges if c.key not in gone]
    snap.parked = [p for p in snap.parked if p.incident not in incidents]
    snap.granted = [p for p in snap.granted if p.incident not in incidents]
    snap.continuing = [c for c in snap.continuing if c[0].incident not in incidents]
    state.restore(snap)


def closed_key(runbook: str, group_key: str) -> str:
    """The changelog key of an evicted group key: the event time up to which it stays quiet."""
    return f"~closed#{runbook}#{group_key}"


def expired(slices: Iterable[EngineSnapshot], before: float) -> tuple[list[EngineSnapshot], list[str]]:
    """Split restored slices: what to merge, and the `~closed#` keys of group keys evicted before `before` (past the
    horizon), which are left out (their records to be tombstoned). A slice left with nothing is dropped."""
    kept: list[EngineSnapshot] = []
    stale: list[str] = []
    for part in slices:
        old = [c for c in part.closed if c[3] < before]
        if not old:
            kept.append(part)
            continue
        stale.extend(closed_key(rb, key) for rb, key, _, _ in old)
        rest = part.model_copy(update={"closed": [c for c in part.closed if c[3] >= before]})
        if rest.model_dump() != EngineSnapshot().model_dump():
            kept.append(rest)
    return kept, stale


class ClosedKeys:
    """The changelog partitions holding each remembered evicted group key (`~closed#`), among those owned here, so
    that the record is tombstoned when the engine forgets the key (past the horizon, or over the cap)."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], set[int]] = {}
        self.due: dict[int, set[str]] = {}  # partition → keys to tombstone at the next write (forgotten at a restore)

    def note(self, partition: int, closed: Iterable[tuple[str, str, float, float]]) -> None:
        """These group keys' records are in `partition` (written there, or restored from it)."""
        for rb, key, _, _ in closed:
            self.held.setdefault((rb, key), set()).add(partition)

    def forget(self, state: EngineState) -> None:
        """The keys the state's last `evict` or `restore` forgot (and did not remember again) are due for a
        tombstone in every partition holding them."""
        for pair in state.forgotten:
            if state.closed_until(*pair) is None:
                for partition in self.held.pop(pair, ()):
                    self.due.setdefault(partition, set()).add(closed_key(*pair))

    def take(self) -> dict[int, set[str]]:
        """The keys due for a tombstone, per partition (and none due any more)."""
        due, self.due = self.due, {}
        return due

    def revoke(self, partitions: set[int]) -> None:
        """Partitions that left: their new owner tombstones their records."""
        for partition in partitions:
            self.due.pop(partition, None)
        for pair in [p for p, held in self.held.items() if held & partitions]:
            self.held[pair] -= partitions
            if not self.held[pair]:
                del self.held[pair]
