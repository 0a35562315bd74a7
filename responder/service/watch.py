"""A consumer out of its group longer than a start may take is given up, if its Kafka cluster answers (docs/faults.md).

aiokafka's coordination task looks for a lost group coordinator for ever, and nothing surfaces to the application
(responder/ingest/lost.py). `ConsumerWatch._watched`, called before each poll of the alert, approval and operator
loops (`ConsumerRebuilds._polled`, consumers.py) and, while the approvals and operator loops await a commit (run
in a task of its own), every `commit_watch_s` (`_watching`), gives up a consumer that was out of its group (its
coordinator unknown, or its group not joined) at every poll for longer than a start may take (`start_timeout`), its
coordination task looking on: it raises CoordinatorDied, and the consumer is rebuilt as after a dead coordinator, so
one that never finds its coordinator is not unready for ever. Only if Kafka answers a metadata request
(`cluster_answers`): with Kafka unreachable it waits for it (`_silent`), `/readyz` 503 meanwhile (`_waiting_why`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

from responder.errors_kafka import CoordinatorDied, CoordinatorLost
from responder.ingest.approvals import ApprovalIngest
from responder.ingest.coordinator import RebuildBudget
from responder.ingest.kafka import KafkaIngest
from responder.ingest.lost import abandon, cluster_answers, in_group
from responder.service.parts import Parts

log = structlog.get_logger(__name__)


class ConsumerWatch(Parts):
    """The watch over consumers out of their group (mixed into `ConsumerRebuilds`)."""

    async def _watched(self, ingest: KafkaIngest | ApprovalIngest, consumer: str, budget: RebuildBudget) -> None:
        """CoordinatorDied (a CoordinatorLost its cause) when the consumer was out of its group (`in_group`) at every
        poll for longer than a start may take (`start_timeout`), its coordination task looking on rather than dying,
        and its cluster answers (`cluster_answers`, asked only then): it is given up (`abandon`) and rebuilt as after a
        dead coordinator, counted in the same budget. Kafka unreachable (every broker down), it waits for it
        (`_silent`): a rebuild would reach no broker."""
        bound = self.start_timeout()
        joined = in_group(ingest.consumer)
        told = budget.silent is not None or budget.restarted  # Kafka's silence logged, or its answer after it
        out = budget.out_of_group(joined, bound)  # in its group: its stretch out of it ends
        if joined and told:
            log.info("kafka_consumer_back_in_group", consumer=consumer,
                     detail="it found its group again after Kafka did not answer: not rebuilt")
        if out is None or (budget.silent is not None and budget.clock() - budget.silent < self.cluster_probe_every_s):
            return
        if not await self._answers(ingest, consumer):
            self._silent(consumer, budget, out)
            return
        if budget.silent is not None:
            if budget.heard():  # back: a start's bound again to find its group, as a restarted broker loads it
                log.info("kafka_consumer_cluster_back", consumer=consumer, out_s=round(out),
                         detail=f"Kafka answers: rebuilt if still out of its group in {bound:g} s")
                return
            log.info("kafka_consumer_cluster_back", consumer=consumer, out_s=round(out),
                     detail="Kafka answers again; its bound started again once already since it left its group (a "
                            "probe went unanswered since: a broker dropping packets?): rebuilt if still out of it")
        if in_group(ingest.consumer):  # found it while Kafka was asked
            return
        unknown = getattr(getattr(ingest.consumer, "_coordinator", None), "coordinator_id", 0) is None
        state = f"{'its group coordinator unknown' if unknown else 'its group not joined'} for {out:.0f} s"
        lost = CoordinatorLost(f"not settled within {bound:g} s of its rebuild: {state}" if budget.count
                               else f"{state}, past the {bound:g} s a start may take")
        abandon(ingest.consumer, lost)
        raise CoordinatorDied(consumer, lost)

    async def _answers(self, ingest: KafkaIngest | ApprovalIngest, consumer: str) -> bool:
        """Whether Kafka answers (`cluster_answers`). An error no outage raises (an aiokafka bug) is logged and counts
        as no answer: it must not end the watch (a commit's watch task would die unseen, a poll would stop the loop)."""
        try:
            return await cluster_answers(ingest.consumer, self.cluster_probe_s)
        except Exception as exc:  # noqa: BLE001 - whatever the probe raised, the watch goes on; no answer
            log.error("kafka_cluster_probe_failed", consumer=consumer, error=f"{type(exc).__name__}: {exc}",
                      detail="the metadata request for the out-of-group watch failed unexpectedly: counted as no "
                             "answer from Kafka")
            return False

    cluster_probe_s = 5.0  # how long a metadata request may take before Kafka counts as unreachable (tests shrink it)
    cluster_probe_every_s = 15.0  # how often Kafka is asked again while it does not answer

    def _silent(self, consumer: str, budget: RebuildBudget, out: float) -> None:
        """Kafka did not answer: not rebuilt; logged once an outage, `/readyz` 503 meanwhile (`_rebuilding_why`)."""
        if budget.silent is None:
            log.warning("kafka_consumer_waiting_for_cluster", consumer=consumer, out_s=round(out),
                        detail=f"out of its group and Kafka unreachable (no broker answered a metadata request "
                               f"within {self.cluster_probe_s:g} s): not rebuilt, waiting for Kafka; asked again "
                               f"every {self.cluster_probe_every_s:g} s")
        budget.silent = budget.clock()

    commit_watch_s = 1.0  # how often a commit under way in its own task is watched (`_watching`; tests shrink it)

    async def _watching(self, ingest: KafkaIngest | ApprovalIngest, consumer: str, commit: Awaitable[None]) -> None:
        """Await `commit` (the approvals and operator loops'), run in a task of its own, meanwhile watching the consumer
        as its polls do (`_watched`): a commit waiting for a lost coordinator holds the loop, and no poll would ever
        give the consumer up. Given up, `abandon` cancels the commit's task (`unless_abandoned`), never the loop's: the
        commit ends and the next poll has it rebuilt. Any other error of the watch (a bug: the probe's own are
        handled, `_answers`) is logged (`kafka_commit_watch_failed`), the commit cancelled, and the error raised into
        the loop, as one out of a poll's watch stops it. The loop cancelled, both are cancelled and awaited; a commit's
        error is raised as it is; a watch cancelled by another leaves the commit to go on, unwatched."""
        budget = self._rebuild_budgets.get(consumer)
        if budget is None:  # never polled
            await commit
            return

        async def watch() -> None:
            try:
                while True:
                    await asyncio.sleep(self.commit_watch_s)
                    await self._watched(ingest, consumer, budget)
            except CoordinatorDied:
                return
            except Exception as exc:
                log.error("kafka_commit_watch_failed", consumer=consumer, error=f"{type(exc).__name__}: {exc}",
                          detail="the watch of a commit under way failed unexpectedly: its loop stops with it")
                raise

        committing = asyncio.ensure_future(commit)
        watcher = asyncio.create_task(watch(), name=f"{consumer} commit watch")
        try:
            await asyncio.wait({committing, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher.done() and not watcher.cancelled() and (failed := watcher.exception()) is not None:
                raise failed  # a watch cancelled by another is no error of its: the commit goes on, unwatched
            await committing
        finally:  # ours cancelled, the watch failed or the commit ended: neither is left running, nor its error unread
            watcher.cancel()
            committing.cancel()
            await asyncio.gather(watcher, committing, return_exceptions=True)

    def start_timeout(self) -> float:
        """Seconds a consumer's start may take (tests shrink it): the connect timeout, then a dead member's session
        and a rebalance of its group (members finishing the chunks in hand)."""
        settings = self.settings
        return settings.kafka_connect_timeout + (settings.session_timeout_ms + settings.rebalance_timeout_ms) / 1000

    def _waiting_why(self) -> str | None:
        """What `/readyz` says while a consumer out of its group waits for Kafka to answer (`_silent`), or None."""
        waiting = sorted(consumer for consumer, budget in self._rebuild_budgets.items() if budget.silent is not None)
        if not waiting:
            return None
        consumer, budget = waiting[0], self._rebuild_budgets[waiting[0]]
        return (f"the {consumer} consumer is out of its group for {budget.out_s():.0f} s, Kafka unreachable (no "
                f"broker answered a metadata request within {self.cluster_probe_s:g} s); waiting for it, not "
                f"rebuilt (rebuilt if still out of its group {self.start_timeout():g} s after Kafka answers)")
