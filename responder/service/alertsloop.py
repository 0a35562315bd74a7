"""The alert loop: poll, hand each partition's records to `Flow`, and stop its lanes and commits with it.

`AlertsLoop` is mixed into `Service` (responder/service/core.py) under `Running` (running.py), which starts it beside
the approval and operator loops (signed.py). Between polls it starts the eviction of closed incidents and the idle
flush beside it (`Chores`: it never awaits the batch gate or the changelog between two polls) and retries the fleet's
failed restores (`PartitionKeeping`). However it ends (stopped, failed, or cancelled while it stops: the loops' task
group cancels it when another loop fails) no lane nor coalesced commit is left running after it.
"""

from __future__ import annotations

import structlog

from responder.service.consumers import ConsumerRebuilds

log = structlog.get_logger(__name__)


class AlertsLoop(ConsumerRebuilds):
    """The alert loop and the end of its lanes (mixed into `Service`)."""

    async def _alerts_loop(self) -> None:
        failure: BaseException | None = None
        try:
            await self._consume()
            await self._chores.close()  # an eviction or idle flush in hand ends first (its failure is raised)
        except BaseException as exc:
            self._stop.set()  # stopping: a partition assigned from now on is not restored (partitions.py)
            try:
                await self._chores.close(cancel=True)
                await self._end_restore()
            except BaseException:  # cancelled again meanwhile: the lanes are cancelled, not left acting
                await self._cancel_lanes()
                raise
            try:  # the chunks in hand cancelled at once, or left to finish after a dead letter not sent (flow.py)
                failure = await self.flow.abort(exc)
            finally:
                await self.commits.cancel()  # nothing more is committed once the service failed
            if failure is exc:
                raise
        if failure is not None:  # the lanes' failure, of which `submit` raised a first error (a dead letter unsent)
            raise failure
        try:
            await self._end_restore()
            await self.flow.close()  # chunks in hand finish; queued records are redelivered
        except BaseException:  # a lane failed, or the stop was cancelled (another loop failed): no lane nor
            await self._cancel_lanes()  # coalesced commit left running, none more
            raise
        await self.commits.close()  # every record handled is committed, its entries durable first

    async def _cancel_lanes(self) -> None:
        """The chunks in hand and a coalesced commit under way cancelled, whatever comes meanwhile (raises only a
        cancel of its own; cancelling the lanes is a no-op once they ended)."""
        try:
            await self.flow.close(cancel=True)
        finally:
            await self.commits.cancel()

    async def _consume(self) -> None:
        while not self._stop.is_set():
            if self._rebalance_error is not None:  # a rebalance callback failed (aiokafka only logged it)
                raise self._rebalance_error
            self._chores.check()  # an eviction or idle flush that failed stops the service, as when awaited here
            if self.clock() - self._evicted_at >= self.settings.evict_every:  # beside the loop: it awaits the gate
                self._chores.start("evict", self._evict)
            self._fleet_upkeep()
            batch = await self._polled(self.ingest, "alerts")
            if self._rebalance_error is not None:  # a rebalance callback failed (aiokafka only logged it)
                raise self._rebalance_error
            if self.fleet_guard is not None:  # the fleet's kill switch, read once per poll and after it, so a
                rebalances = self._rebalances  # record is never acted on with a switch read before it arrived
                await self.fleet_guard.refresh()
                if self._rebalances != rebalances and batch:  # the assignment reset the positions (the revocation
                    # dropped what the lanes had queued): these come again, after what was dropped, from the
                    # committed offsets; handled now they would pass those records (and go to the lanes of
                    # partitions no longer ours)
                    log.info("poll_dropped_after_rebalance", records=sum(map(len, batch.values())))
                    batch = {}
            lag = self.metrics.partitions.lag  # a partition's label set is removed once assigned elsewhere
            for (topic, partition), behind in self.ingest.lag().items():
                lag.labels(topic, str(partition)).set(behind)
            self.flow.submit(batch)  # each partition in its lane; paused while its in-flight budget is full
            self.commits.tick()  # the offsets the lanes handled, when kafka_commit_interval_ms has passed
            if not batch:  # idle: a due checkpoint still seals the tail (and ships its segment), beside the loop
                self._chores.start("flush", self.recorder.flush)

