"""A consumer whose group coordinator died is rebuilt in place: the service goes on (docs/faults.md).

aiokafka never restarts a consumer's dead coordination task (responder/ingest/coordinator.py): every later poll and
commit fails. `ConsumerRebuilds._polled` is what the alert, approval and operator loops poll through: on
CoordinatorDied it logs `kafka_consumer_rebuilding`, counts `responder_consumer_rebuilds_total{consumer}`, lets
the alerts consumer's partitions go as in a revocation (their queued records dropped, a fleet's state handed over;
their offsets cannot be committed through the dead consumer, so the records handled since the last commit come
again and their step keys keep each effect once), closes the consumer, creates and starts it again (it rejoins,
or is assigned, and reads on from the committed offsets), and logs `kafka_consumer_rebuilt`. `/readyz` is 503
meanwhile, saying which consumer is being rebuilt and why, and after, until the new consumer settled (below;
`kafka_consumer_settled`). One out of its group (its coordinator unknown, or its group not joined) at every poll for
longer than a start may take, its coordination task looking on, is rebuilt again (`_watched`, watch.py) if Kafka
answers, so one that never finds its coordinator is not unready for ever; with Kafka unreachable it waits. A rebuild
that cannot reach Kafka within `kafka_connect_timeout` stops the service (BrokerUnreachable: its settings reached Kafka
before, so `serve_rejoining` builds a new one, not exit 3 as for a first start that never reached it: rejoin.py). Each
start, the first one too (`_started`), is bounded (`start_timeout`) and ended by a stop request
(responder/service/starts.py): one that times out is closed and rebuilt again, a rebuild without progress.

Rebuilds are bounded (`RebuildBudget`, responder/ingest/coordinator.py, one per consumer): the first is at once,
each next one after a backoff (1 s, doubled, at most 30 s; a stop requested meanwhile is not held up). They are
counted since the consumer last made progress, over the window (10 minutes; longer when 5 bounded starts need it):
it committed an offset, or a rebuilt consumer settled, polled live and caught up (its coordinator found, its
assignment in force, nothing left to read: `caught_up`) before it read any record. A quiet consumer, such as the
operator requests one, has nothing to commit: a rolling restart of the brokers, one coordinator death per broker
however fast they go, must not stop a healthy idle service; one that never finds its coordinator, or loses it before
it joined, is broken, and so is one rebuilt `CEILING` (20) times in the window whatever progress came between. The
death after `REBUILDS` such rebuilds (or `CEILING`) logs `kafka_consumer_rebuilds_exhausted` (critical) and stops
the service with ConsumerRebuildsExhausted, which `responder run` turns into one line and exit 75, for its
supervisor to start a fresh process: a consumer whose coordinator keeps dying would re-read the same records for
ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import TopicPartition

from responder.errors_kafka import ConsumerRebuildsExhausted, CoordinatorDied, CoordinatorLost
from responder.exception_groups import only
from responder.ingest.approvals import ApprovalIngest
from responder.ingest.clients import CONNECT_TIMEOUT
from responder.ingest.coordinator import REBUILDS, WINDOW_S, RebuildBudget, caught_up
from responder.ingest.kafka import KafkaIngest
from responder.models.event import RawRecord
from responder.service.partitions import PartitionKeeping
from responder.service.starts import bounded, timed_out
from responder.service.watch import ConsumerWatch

log = structlog.get_logger(__name__)


def rebuilds_exhausted(exc: BaseException) -> ConsumerRebuildsExhausted | None:
    """The ConsumerRebuildsExhausted `exc` is (itself, or every leaf of the loops' task groups: another error beside
    it is not hidden, as in `rejoin_reason`), or None."""
    found = only(exc, ConsumerRebuildsExhausted)
    return found[0] if found else None


class ConsumerRebuilds(PartitionKeeping, ConsumerWatch):
    """Polls that survive a dead group coordinator (mixed into `Service`)."""

    async def _polled(self, ingest: KafkaIngest | ApprovalIngest, consumer: str,
                      held: dict[Any, int] | None = None) -> dict[TopicPartition, list[RawRecord]]:
        """`ingest.poll()`; after a dead coordinator, nothing, once the consumer is rebuilt (`held`: the offsets the
        loop kept to commit, dropped: the new consumer reads those records again)."""
        budget = self._rebuild_budgets.get(consumer)
        if budget is None:  # its first poll: its budget from now, its time out of its group watched (`_watched`)
            budget = self._rebuild_budgets[consumer] = self.rebuild_budget()
        try:
            await self._watched(ingest, consumer, budget)
            batch = await ingest.poll()
        except CoordinatorDied as exc:
            await self._rebuild(ingest, consumer, exc)  # False: stopped meanwhile (the loop ends next)
            if held is not None:
                held.clear()
            return {}
        if budget.count:  # rebuilt: has the new consumer settled? `/readyz` 503 until then
            ends = ingest.read_to() if isinstance(ingest, ApprovalIngest) else None  # reads all, commits none: its
            budget.polled(bool(batch) and ends is None,  # records are no sign: settled once read to its start's ends
                          lambda: caught_up(ingest.consumer, ends), ingest.commits)
            if not budget.count:
                log.info("kafka_consumer_settled", consumer=consumer)
        return batch

    def rebuild_budget(self) -> RebuildBudget:
        """A new consumer's budget of rebuilds (tests shrink it): its window holds `REBUILDS` starts that time out."""
        return RebuildBudget(window=max(WINDOW_S, REBUILDS * (self.start_timeout() + 30.0)))

    async def _started(self, ingest: KafkaIngest | ApprovalIngest, consumer: str,
                       start: Callable[[], Awaitable[None]]) -> bool:
        """A consumer's first start (`start()`), bounded (`starts.bounded`): one that times out is rebuilt as after a
        dead coordinator; False when a stop came first."""
        try:
            return await bounded(lambda: ingest.consumer, consumer, start, self._stop, self.start_timeout())
        except CoordinatorDied as exc:
            if not timed_out(exc):
                raise
            return await self._rebuild(ingest, consumer, exc)

    async def _rebuild(self, ingest: KafkaIngest | ApprovalIngest, consumer: str, exc: CoordinatorDied) -> bool:
        """Rebuild the consumer until one started (True), a stop came (False), or the budget ran out (raised)."""
        while True:
            try:
                if not await self._rebuild_once(ingest, consumer, exc):
                    return False
            except CoordinatorDied as again:  # its start timed out, the consumer closed: counted, rebuilt again
                exc = again
                continue
            finally:
                self._rebuilding.pop(consumer, None)
            log.warning("kafka_consumer_rebuilt", consumer=consumer)
            return True

    async def _rebuild_once(self, ingest: KafkaIngest | ApprovalIngest, consumer: str, exc: CoordinatorDied) -> bool:
        budget = self._rebuild_budgets.setdefault(consumer, self.rebuild_budget())
        delay = budget.next(ingest.commits)
        if delay is None:
            settling = "each settling" if budget.crowded else "none settling"
            again = "its start timed out again" if timed_out(exc) else (
                "its group coordinator was lost again" if isinstance(exc.cause, CoordinatorLost)
                else "its group coordinator died again")
            log.critical("kafka_consumer_rebuilds_exhausted", consumer=consumer,
                         rebuilds=budget.crowded or budget.count, window_s=budget.window, error=str(exc),
                         detail=f"its group coordinator keeps dying, or is never found, after each rebuild "
                                f"({settling}: joined and caught up, or committed): stopping for the supervisor "
                                "to start a fresh process")
            self._stop.set()
            raise ConsumerRebuildsExhausted(
                f"the {consumer} consumer was rebuilt {budget.crowded or budget.count} times within "
                f"{budget.window:.0f} s, {settling} (joined and caught up, or an offset committed), and {again} "
                f"({type(exc.cause).__name__}: {exc.cause}): stopping; start it again, and "
                "check the Kafka cluster's health") from exc
        self.metrics.consumer_rebuilds.labels(consumer).inc()
        why = "its start timed out" if timed_out(exc) else (
            "its group coordinator was lost" if isinstance(exc.cause, CoordinatorLost)
            else "its group coordinator died")
        self._rebuilding[consumer] = f"{why} ({type(exc.cause).__name__}: {exc.cause})"
        log.error("kafka_consumer_rebuilding", consumer=consumer, error=str(exc), rebuild=budget.count,
                  of=budget.limit, in_s=delay,
                  detail="aiokafka does not restart a dead coordinator: the consumer is closed and created again, "
                         "reading on from the committed offsets")
        try:
            return await self._replaced(ingest, consumer, delay)
        finally:  # the chunks in hand committed in the hand-over: the old consumer's commits, not the new one's
            budget.seen(ingest.commits)

    async def _replaced(self, ingest: KafkaIngest | ApprovalIngest, consumer: str, delay: float) -> bool:
        """Hand the partitions over, back off `delay` s, close the consumer and start a new one (False: a stop came)."""
        if isinstance(ingest, KafkaIngest) and ingest.assigned():  # its partitions go as in a revocation, before
            await self._on_revoked(sorted(ingest.assigned()))  # the backoff: the group gives them to another member
            if self._rebalance_error is not None:
                raise self._rebalance_error
        with contextlib.suppress(TimeoutError):  # backed off; a stop requested meanwhile ends the wait
            await asyncio.wait_for(self._stop.wait(), delay)
        if self._stop.is_set():
            return False
        await ingest.renew()  # the old one closed before the new one starts: never two side by side
        return await bounded(lambda: ingest.consumer, consumer,
                             lambda: ingest.start_consumer(self.settings.kafka_connect_timeout,
                                                           wait_set_by=CONNECT_TIMEOUT), self._stop,
                             self.start_timeout())

    def _rebuilding_why(self) -> str | None:
        """What `/readyz` says while a consumer is rebuilt, or rebuilt and not settled yet, or None."""
        if self._rebuilding:
            consumer, why = sorted(self._rebuilding.items())[0]
            return f"rebuilding the {consumer} consumer: {why}; the new one reads on from the committed offsets"
        if (waiting := self._waiting_why()) is not None:
            return waiting
        unsettled = sorted(consumer for consumer, budget in self._rebuild_budgets.items() if budget.count)
        if not unsettled:
            return None
        return (f"the {unsettled[0]} consumer, rebuilt after its group coordinator died, has not settled yet (its "
                "coordinator found, joined and caught up, or an offset committed); rebuilt again when out of its "
                f"group for {self.start_timeout():g} s while Kafka answers")
