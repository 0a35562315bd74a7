"""Which partitions a service holds, and the state that follows them: recovery, assignment, revocation, eviction.

`PartitionKeeping` is mixed into `Service` (responder/service/core.py). Every change of what the service holds
runs under the exclusive side of the batch gate, after the timeline is durable, so no chunk is in hand meanwhile.
"""

from __future__ import annotations

from typing import Any

import structlog

from responder.fleet import partition_numbers
from responder.service.parts import Parts

log = structlog.get_logger(__name__)


class PartitionKeeping(Parts):
    """Rebalance callbacks, timeline recovery, incident eviction and the fleet's restore retries."""

    def _recover(self) -> None:
        recovered = self.engine.recover()
        self.operator.recover(self.recorder.entries())
        self._recovered_at = self.recorder.next_seq
        state = self.engine.state
        log.info("timeline_recovered", entries=recovered, inflight=len(state.inflight()),
                 parked=len(state.parked_steps()))

    async def _on_assigned(self, partitions: list[Any]) -> None:
        """Partitions moved to us: make the timeline durable and rebuild in-flight state before consuming."""
        self.commits.forget(partitions)  # offsets marked under an earlier assignment are not ours to commit
        if self._stopping(partitions):
            return
        try:
            async with self._lock:
                if self._stopping(partitions):  # a lane failed (fenced) while this waited for the gate
                    return
                await self.recorder.flush()
                if self.fleet is not None:  # restore each partition's state from the changelog; pause what fails
                    failed = await self.fleet.assign(partition_numbers(partitions))
                    self.ingest.pause([tp for tp in partitions if tp.partition in failed])
                elif self.recorder.next_seq != self._recovered_at:
                    self._recover()
        except Exception as exc:  # raised by the next poll: aiokafka would log it and consume on
            self.ingest.pause(partitions)  # never consumed without their state
            self._assign_failed = self._assign_failed or exc
            log.error("partitions_assign_failed", partitions=sorted(map(str, partitions)),
                      error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    def _stopping(self, partitions: list[Any]) -> bool:
        """Whether this service is stopping (asked to, or a lane failed: fenced). Partitions assigned to it then
        are neither restored nor consumed here, and their producers are not initialised, which would fence the
        replica that owns them now."""
        if not (self._stop.is_set() or self.flow.failed is not None):
            return False
        log.info("partitions_assigned_while_stopping", partitions=len(partitions))
        return True

    async def _on_revoked(self, partitions: list[Any]) -> None:
        """Partitions leave: finish the batch in hand, make its state durable (changelog included), forget it."""
        self.flow.drop(partitions)  # their queued records are the new owner's
        if self.fleet is None:
            await self.commits.commit(partitions)  # what this member handled of them, durable first
            return
        async with self._lock:  # the chunks in hand finish first
            try:
                await self.recorder.flush()
                await self.commits.commit(partitions)  # what this member handled of them
            finally:  # their state leaves with them even when that failed: a stale copy is never kept to act on
                self.fleet.revoke(partition_numbers(partitions))
                await self.fleet.close(partition_numbers(partitions))

    async def _evict(self) -> None:
        """Every `evict_every` seconds, forget closed incidents (in a fleet, tombstoning their changelog records)."""
        if self.clock() - self._evicted_at < self.settings.evict_every:
            return
        self._evicted_at = self.clock()
        async with self._lock:
            gone = await self.fleet.evict() if self.fleet is not None else self.engine.evict()
        if gone:
            log.info("incidents_evicted", count=len(gone), open=len(self.engine.state.incidents.all()))

    async def _fleet_upkeep(self) -> None:
        """Retry partitions whose restore failed."""
        if self.fleet is not None and self.fleet.failed:
            async with self._lock:
                failed = set(self.fleet.failed)
                still = await self.fleet.assign(failed)
                self.ingest.resume([tp for tp in self.ingest.assigned() if tp.partition in failed - still])
