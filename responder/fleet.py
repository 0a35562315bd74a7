"""A fleet member's partition state: restored from the changelog on assignment, written before it is durable,
released on revocation; approval decisions held until the incident they name is here (`HeldDecisions`,
responder/fleet_decisions.py).

Wired by `Service` when `changelog_topic` is set (see docs/fleet.md); what the replicas must agree on is
`responder.fleet_digest`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from responder.engine.executor import Engine
from responder.engine.partitions import ClosedKeys, Partitions, closed_key, cut, expired, merge, release
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import CLOSED_HORIZON
from responder.errors import BrokerUnreachable
from responder.errors_kafka import ChangelogError, ChangelogTooShort, RevocationCut
from responder.fleet_decisions import HeldDecisions
from responder.fleet_lease import LeaseBarrier
from responder.ingest.changelog import Changelog
from responder.ingest.lease import MembershipLease
from responder.models.timeline import EntryKind, TimelineEntry

log = structlog.get_logger(__name__)

RETRY_MAX_S = 60.0  # the longest wait between two restore attempts of a partition
RESTORES_AT_ONCE = 8  # partitions fenced and read at the same time (each opens a producer and a consumer)
_BEFORE_ACTING = frozenset({EntryKind.STEP_INTENT, EntryKind.APPROVAL_DECIDED})


class FleetState(HeldDecisions, LeaseBarrier):
    """The partitions this replica owns and their state, kept in step with the changelog."""

    def __init__(self, engine: Engine, changelog: Changelog, clock: Callable[[], float] = time.monotonic, *,
                 lease: MembershipLease | None = None) -> None:
        self.engine, self.changelog, self.clock = engine, changelog, clock  # `clock` paces the restore retries
        self.lease = lease  # the alert consumer's membership (responder/ingest/lease.py): none, no lease kept
        self.lapsed = False  # the lease ended while partitions were owned (`LeaseBarrier._in_lease`), said once
        self.partitions = Partitions()
        self._quotas_at: dict[int, int] = {}  # owned partition → `QuotaWindows.recorded` when its `~quotas` was written
        self.closed = ClosedKeys()  # where each `~closed#` record is, to tombstone it once the engine forgets the key
        self.owned: set[int] = set()
        self.failed: dict[int, str] = {}
        self.restoring: set[int] = set()  # being fenced and read now (held until adopted)
        self.short: set[int] = set()  # failed because the changelog has no partition for them (growing it failed)
        self.cut_off: set[int] = set()  # revoked past their revocation deadline: entries fail closed (`cut_revoked`)
        self._slots = asyncio.Semaphore(RESTORES_AT_ONCE)
        self._retry: dict[int, tuple[float, float]] = {}  # a failed partition -> (next retry, backoff), monotonic
        self._held = {}  # decisions held for incidents owned elsewhere (`HeldDecisions`)

    async def on_durable(self, entries: Sequence[TimelineEntry]) -> None:
        """Write the slices of the incidents these entries touched (before the entries count as durable)."""
        urgent = any(e.kind in _BEFORE_ACTING for e in entries)  # committed before the actuator is called
        routed = self.partitions.route(entries)
        until = self.changelog.deadline()  # one deadline for all the partitions this flush writes, one after another
        for partition in sorted(routed):  # cut off (`cut_revoked`) or out of lease: never durable, nothing acts
            await self._writable(partition, until)
        moved = self.partitions.take_moved(self.owned)  # incidents named from another partition: old record goes
        windows = self.engine.state.windows
        if (since := windows.take_removed()) is not None:  # a run refunded or moved: the `~quotas` records written
            routed = {p: set() for p in self.owned  # since it was recorded still hold it, and a restore's union
                      if self._quotas_at.get(p, 0) >= since} | routed  # would count it again (only those)
        for partition, incidents in routed.items():
            if partition in self.owned:  # a `~quotas` record alone too: nothing is written out of lease
                await self._in_lease(until)
            if incidents:  # cut while an earlier write, or the lease, waited: not durable, nothing acts (a partition
                self._not_cut(partition)  # with only its `~quotas` record to rewrite holds no entry of this flush)
            if partition not in self.owned:
                continue  # revoked meanwhile: its new owner writes it now; a late write would overwrite theirs
            slices = cut(self.engine.state, incidents)
            self._quotas_at[partition] = windows.recorded  # what the record holds: every run recorded so far
            await self.changelog.write(partition, {i: slices.get(i) for i in incidents},
                                       quotas=windows.runs(), urgent=urgent, until=until)
        for partition, left in moved.items():  # after the new record: a crash between leaves two, never none
            if partition in self.owned:
                await self._in_lease(until)
                await self.changelog.write(partition, dict.fromkeys(left), urgent=urgent, until=until)
        for partition, incidents in routed.items():  # cut, or out of lease, while its own write waited
            if incidents:
                await self._writable(partition, until)

    async def _writable(self, partition: int, until: float) -> None:
        """Raise unless an entry of `partition` may count as durable: not cut off (RevocationCut), and, when owned,
        within this member's lease (`_in_lease`)."""
        if partition in self.owned:
            await self._in_lease(until)
        self._not_cut(partition)  # after any wait for the lease: a cut may have come meanwhile

    def _not_cut(self, partition: int) -> None:
        if partition in self.cut_off:
            raise RevocationCut(f"partition {partition} was cut from this replica at its revocation's deadline: its "
                                "entries are not durable, and their steps do not act")

    async def evict(self) -> list[str]:
        """Evict closed incidents: tombstone them, and remember up to which event time their group keys stay quiet;
        tombstone the `~closed#` records of the group keys the engine forgot (past the horizon, or over the cap)."""
        state = self.engine.state
        keys = {i.id: (i.runbook, i.group_key) for i in state.incidents.all()}
        incidents = self.engine.evict()
        self.closed.forget(state)
        by_partition: dict[int, dict[str, EngineSnapshot | None]] = {
            p: dict.fromkeys(due) for p, due in self.closed.take().items() if p in self.owned}
        for incident in incidents:
            partition = self.partitions.of.get(incident)
            if partition is None or partition not in self.owned:
                continue
            rb, group_key = keys[incident]
            ended = state.closed_until(rb, group_key)
            slices = by_partition.setdefault(partition, {})
            slices[incident] = None
            if ended is not None:
                closed = [(rb, group_key, ended, self.engine.clock())]
                slices[closed_key(rb, group_key)] = EngineSnapshot(closed=closed)
                self.closed.note(partition, closed)
        self.partitions.forget(incidents)
        until = self.changelog.deadline()  # one deadline for all its partitions' writes (`Changelog.write`)
        for partition, tombstones in by_partition.items():
            if partition in self.owned:  # revoked or cut while an earlier write waited: the new owner's now
                await self._in_lease(until)  # out of it, no tombstone either: the partition may be another's
                await self.changelog.write(partition, tombstones, until=until)
        return incidents

    async def fetch(self, partition: int) -> list[EngineSnapshot] | None:
        """Fence the partition's previous owner and read its changelog (the service's restore runs this outside its
        batch gate, then `adopt` under it, each partition on its own). No engine state is touched, so the lanes of
        the partitions already in go on meanwhile. If the fence or the read fails (whatever it raises, a bug
        included: the partition is never consumed unrestored), the partition is recorded in `failed` and None is
        returned."""
        self.restoring.add(partition)  # until adopted or failed (`interrupted` if the caller is cancelled)
        try:
            async with self._slots:  # a large assignment opens a few clients at a time
                if self.changelog.txn is not None:  # fence the previous owner before reading what it wrote
                    await self.changelog.txn.assign([partition])
                slices, stale = expired(await self.changelog.read(partition), self.engine.clock() - CLOSED_HORIZON)
                # Group keys past the horizon are tombstoned, so that the next restore skips them; out of lease they
                # are left to it: the partition may be another member's now, and a late tombstone would delete its
                # newer record of a key (asked once, before the write: one already under way may still land late)
                if stale and not self._holds():
                    log.info("changelog_closed_expired_left", partition=partition, keys=len(stale))
                elif stale:
                    await self.changelog.write(partition, dict.fromkeys(stale))
                    log.info("changelog_closed_expired", partition=partition, keys=len(stale))
                return slices
        except Exception as exc:  # noqa: BLE001 - a bug too: the partition is never consumed unrestored
            self._failed(partition, exc)
            return None

    def adopt(self, partition: int, slices: list[EngineSnapshot]) -> None:
        """Merge what `fetch` read: the partition is owned from now on (its changelog written by this replica)."""
        self.restoring.discard(partition)
        self.failed.pop(partition, None)
        self.short.discard(partition)
        self._retry.pop(partition, None)
        merge(self.engine.state, slices)
        self.engine.decisions.asking.recovered(p for part in slices for p in part.parked)  # published again: unknown
        for part in slices:
            self.closed.note(partition, part.closed)
            for incident in part.incidents:
                self.partitions.of[incident.id] = partition
        self.owned.add(partition)
        self.closed.forget(self.engine.state)  # the keys the merge put over the cap: tombstoned at the next eviction
        log.info("partition_restored", partition=partition, incidents=sum(len(s.incidents) for s in slices),
                 parked=sum(len(s.parked) for s in slices), inflight=sum(len(s.inflight) for s in slices))

    def _failed(self, partition: int, exc: Exception) -> None:
        """Record why `partition` was not restored and when to try again (1 s, doubling to RETRY_MAX_S); an
        unexpected error's traceback is logged whenever the reason changes."""
        expected = isinstance(exc, (ChangelogError, BrokerUnreachable))
        why = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        changed = self.failed.get(partition) != why
        self.restoring.discard(partition)
        self.failed[partition] = why
        if isinstance(exc, ChangelogTooShort):  # `responder_changelog_partitions_missing`
            self.short.add(partition)
        else:
            self.short.discard(partition)
        backoff = min(RETRY_MAX_S, self._retry[partition][1] * 2) if partition in self._retry else 1.0
        self._retry[partition] = (self.clock() + backoff, backoff)
        log.error("partition_restore_failed", partition=partition, error=why, retry_in_s=backoff,
                  exc_info=exc if changed and not expected else None)

    def interrupted(self, partition: int) -> None:
        """The restore of a partition still ours was cut short (cancelled) before it was adopted: it is failed, to be
        retried in 1 s (not an error: a restore is cut short whenever the replica stops)."""
        if partition in self.restoring:
            self.restoring.discard(partition)
            self.failed[partition] = f"the restore of partition {partition} was interrupted"
            self._retry[partition] = (self.clock() + 1.0, 1.0)
            log.info("partition_restore_interrupted", partition=partition, retry_in_s=1.0)

    def abandon(self, partitions: Iterable[int]) -> None:
        """Partitions being revoked: no longer failed, due or being restored (their state is forgotten by `revoke`,
        once the chunks in hand finished)."""
        for partition in partitions:
            self.restoring.discard(partition)
            self.failed.pop(partition, None)
            self.short.discard(partition)
            self._retry.pop(partition, None)

    def due(self) -> set[int]:
        """The failed partitions whose next restore attempt is due."""
        now = self.clock()
        return {p for p in self.failed if self._retry.get(p, (0.0, 0.0))[0] <= now}

    async def close(self, partitions: Iterable[int]) -> None:
        """Close the transactional producers of partitions that left (after `revoke`)."""
        if self.changelog.txn is not None:
            await self.changelog.txn.revoke(partitions)

    def cut_revoked(self, partitions: Iterable[int]) -> None:
        """A revocation cut at its deadline (responder/service/revocation.py): the partitions are no longer owned, and
        an entry of an incident still routed to them fails its changelog barrier (`on_durable` raises RevocationCut),
        so what still runs for them (a chunk not cancelled yet, a decision under the gate) never counts as durable and
        does not act. Their state is kept, routing included: the service is failing, and is dropped whole."""
        self.cut_off |= set(partitions)
        self.owned -= self.cut_off

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget the state of partitions that left (their changelog is already written)."""
        gone = set(partitions)
        self.abandon(gone)
        incidents = {i for i, p in self.partitions.of.items() if p in gone}
        release(self.engine.state, incidents)
        self.closed.revoke(gone)
        self.partitions.forget(incidents)
        self.owned -= gone
        for partition in gone:
            self._quotas_at.pop(partition, None)
        log.info("partitions_released", partitions=sorted(gone), incidents=len(incidents))


def partition_numbers(tps: Iterable[Any]) -> set[int]:
    """The partition numbers of topic-partitions (the alert topics are co-partitioned)."""
    return {int(tp.partition) for tp in tps}
