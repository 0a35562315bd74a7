"""Which partitions a service holds, and the state that follows them: recovery, assignment, eviction (revocation:
revocation.py).

`PartitionKeeping` is mixed into `Service` (responder/service/core.py). Every change of what the service holds
runs under the exclusive side of the batch gate, after the timeline is durable, so no chunk is in hand meanwhile.
A fleet's restore reads the changelog before it takes the gate, in the background (`_restore`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from responder.fleet import partition_numbers
from responder.ingest.sharing import others_own
from responder.service.parts import acting
from responder.service.revocation import Revocation

log = structlog.get_logger(__name__)


class PartitionKeeping(Revocation):
    """Rebalance callbacks, timeline recovery, incident eviction and the fleet's restore retries."""

    def _recover(self) -> None:
        recovered = self.engine.recover()
        self.operator.recover(self.recorder.entries())
        self._recovered_at = self.recorder.next_seq
        state = self.engine.state
        log.info("timeline_recovered", entries=recovered, inflight=len(state.inflight()),
                 parked=len(state.parked_steps()))

    async def _on_assigned(self, partitions: list[Any]) -> None:
        """Partitions moved to us: held at once, their state rebuilt, then released.

        aiokafka starts fetching a new assignment while this callback runs, so the partitions are held (paused)
        before its first await and released only once their state is in: nothing of theirs is fetched before. In a
        fleet the restore runs in the background (`_restore`): aiokafka sends no heartbeat while this callback runs,
        and a restore longer than the session timeout would cost the membership. A partition whose restore failed
        stays held (`_fleet_upkeep` retries it)."""
        self._rebalances += 1  # a poll's records from before this are not handled (`AlertsLoop._consume`)
        gone, back = self.ingest.reassigned(partitions)  # of those revoked just before (an eager rebalance)
        self.metrics.partitions.forget(gone)  # their series are their next owner's (partition_series.py)
        self.flow.regained(back)  # theirs kept, reported again
        self._note_sharing(partitions)
        self.commits.forget(partitions)  # offsets marked under an earlier assignment are not ours to commit
        self.ingest.hold(partitions)
        self._given |= partition_numbers(partitions)
        if self._stopping(partitions):
            return
        if self.fleet is not None:  # a restore running is left to go on: a group's revocation before this ended
            # those of the partitions that left; a manual assignment widened to added partitions revoked none
            self._restore_in_background(partition_numbers(partitions))
            return
        try:
            async with self._lock:
                if self._stopping(partitions):  # a lane failed (fenced) while this waited for the gate
                    return
                await self.recorder.flush()
                if self.recorder.next_seq != self._recovered_at:
                    self._recover()
                self.ingest.release(partitions)
        except Exception as exc:  # noqa: BLE001 - kept and raised by the next chunk and poll; the partitions stay held
            self._rebalance_failed("assigned", partitions, exc)

    def _note_sharing(self, partitions: list[Any]) -> None:
        """Outside fleet mode, in a group: whether another member holds some of the topics' partitions (`others_own`).
        If so, approvals reach the wrong replica, quotas hold per replica and a moved partition's state stays behind:
        an error line (`group_shared_without_fleet`), the gauge `responder_group_shared_without_fleet` at 1 (an alert
        of deploy/prometheus/alerts.yml) and a `/readyz` warning, until an assignment holds every partition again."""
        if self.fleet is not None or self.ingest.manual_assignment:
            return
        others = others_own(self.ingest.consumer, self.ingest.topics, partitions)
        self.metrics.group_shared.set(1 if others else 0)
        if not others:
            self.group_shared = None
            return
        self.group_shared = (f"consumer group {self.settings.group_id!r} has other members ({len(others)} partition(s) "
                             "are theirs) but RESPONDER_CHANGELOG_TOPIC is unset: not a fleet, so approvals reach the "
                             "wrong replica, quotas hold per replica and a moved partition's state stays behind; set "
                             "it on every replica (docs/fleet.md)")
        log.error("group_shared_without_fleet", group=self.settings.group_id, detail=self.group_shared,
                  owned=[f"{tp.topic}:{tp.partition}" for tp in partitions][:50],
                  others=[f"{tp.topic}:{tp.partition}" for tp in others][:50])

    def _restore_in_background(self, partitions: set[int]) -> None:
        """Start restoring each of `partitions` that is still ours on its own (one being restored is left to it);
        none once the service is stopping."""
        if self.fleet is None or self._is_stopping():
            return
        for partition in sorted(partitions & self._given):
            running = self._restorers.get(partition)
            if running is None or running.done():
                self.fleet.restoring.add(partition)  # `/readyz` says so from now on
                self._restorers[partition] = asyncio.create_task(self._restore(partition),
                                                                 name=f"responder-restore-{partition}")

    async def _restore(self, partition: int) -> None:
        """Fence and read the partition's changelog outside the gate (the lanes of the partitions already in go on,
        and so do the other restores), then, under it, merge what was read and release the partition. One that
        failed stays held, retried by `_fleet_upkeep`; one interrupted (a revocation, the service stopping) is
        failed, to be retried if it is still ours."""
        fleet = self.fleet
        if fleet is None:  # only started in fleet mode
            return
        try:
            if self._stopping_restore(partition):
                return
            slices = await fleet.fetch(partition)
            if slices is None:
                return
            async with acting(self._lock):  # the held decisions it releases (below) may settle: lanes go on then
                self._adopting.add(partition)  # from here a revocation waits for the end instead of cancelling
                await self.recorder.flush()
                if partition not in self._given or self._stopping_restore(partition):  # revoked during the flush
                    return
                fleet.adopt(partition, slices)  # no await since the check
                self.ingest.release([tp for tp in self.ingest.assigned() if tp.partition == partition])
                await fleet.release_held()
        except asyncio.CancelledError:
            if partition in self._given:  # still ours: retried (a revoked one is forgotten)
                fleet.interrupted(partition)
            raise
        except Exception as exc:  # noqa: BLE001 - kept and raised by the next chunk and poll; the partition stays held
            self._rebalance_failed("restore", [partition], exc)
        finally:
            self._adopting.discard(partition)
            fleet.restoring.discard(partition)

    def _stopping_restore(self, partition: int) -> bool:
        return self._stopping([tp for tp in self.ingest.assigned() if tp.partition == partition])

    def _stopping(self, partitions: list[Any]) -> bool:
        """Whether this service is stopping (asked to, a lane failed: fenced, or a rebalance failed). Partitions
        assigned to it then are neither restored nor consumed here, and their producers are not initialised,
        which would fence the replica that owns them now."""
        if not self._is_stopping():
            return False
        log.info("partitions_assigned_while_stopping", partitions=len(partitions))
        return True

    def _is_stopping(self) -> bool:
        return self._stop.is_set() or self.flow.failed is not None or self._rebalance_error is not None

    async def _evict(self) -> None:
        """Every `evict_every` seconds, forget closed incidents (in a fleet, tombstoning their changelog records)."""
        if self.clock() - self._evicted_at < self.settings.evict_every:
            return
        self._evicted_at = self.clock()
        async with self._lock:
            gone = await self.fleet.evict() if self.fleet is not None else self.engine.evict()
        if gone:
            log.info("incidents_evicted", count=len(gone), open=len(self.engine.state.incidents.all()))

    def _uncounted(self) -> str | None:
        """Why some quota windows are not counted now (`Guards.uncounted`): a partition given to this replica whose
        state is not in (being restored, failed, or cut short by a stop) carries the windows its previous owner wrote,
        and so does one revoked before its state was in, until the hand-over has forgotten the state its windows would
        have counted for. None otherwise, and outside a fleet. A partition held because the changelog has no partition
        for it (`FleetState.short`, growing it refused) carries none: no replica can have written windows there."""
        fleet = self.fleet
        if fleet is None or (self._given <= fleet.owned and not self._leaving_unrestored):
            return None
        missing = sorted((self._given - fleet.owned - fleet.short) | self._leaving_unrestored)
        if not missing:
            return None
        return f"partition(s) {', '.join(map(str, missing))} are not restored yet (their quota windows are not in)"

    async def _recheck(self) -> None:
        """Once every given partition is in, take up again, one at a time under the exclusive gate (as a decision is
        applied in a fleet), the steps parked because a quota could not be counted; the lanes run between two. A bug in
        one is logged and leaves that step alone in this process (`Decisions.recheck`): the loop goes on."""
        if self.fleet is None or self._uncounted() is not None:
            return
        for parked in self.engine.decisions.uncounted():
            async with acting(self._lock):
                if self._uncounted() is not None or self._is_stopping():  # a rebalance came while this waited
                    return
                await self.engine.decisions.recheck(parked)
            await asyncio.sleep(0)  # the lanes woken as the gate was left take it before the next step

    def _fleet_upkeep(self) -> None:
        """Retry, in the background, the partitions whose restore failed, each once its backoff has passed."""
        if self.fleet is not None and (due := self.fleet.due()):
            self._restore_in_background(due)
