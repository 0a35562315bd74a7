"""A chunk of records through the pipeline: decode and match inline, act per key concurrently, commit after durable.

`BatchHandling` is mixed into `Service` (responder/service/core.py): `Flow` calls `_handle_batch` once per chunk of
a partition's lane, which takes the gate's shared side and runs `_handle_chunk`: `_prepare_batch`, then a
`_handle_partition` task per key. A chunk that fails marks the service stopping before it leaves the gate.
Poison and bugs are dead-lettered (`_failed`, `_reject`); a timeline failure stops the service, cancelling the
chunk's other keys at once; a dead letter that cannot be sent fails the chunk once they have run to their end
(`_handle_partition`). Such a dead letter does not forbid acting further (`drainable`): the lanes are told at once
(`Flow.failing`), so that no chunk starts, the chunks other lanes have in hand finish, and none commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog

from responder.errors import BrokerUnreachable, EventRejected, TimelineError
from responder.errors_kafka import ChangelogError
from responder.exception_groups import Drained, cause_chain, leaves, related
from responder.ingest.clients import fenced_error
from responder.models.event import RawRecord
from responder.models.timeline import EntryKind
from responder.pipeline import Prepared
from responder.service.parts import Parts
from responder.tracing import active

log = structlog.get_logger(__name__)

FORBID = (TimelineError, ChangelogError, BrokerUnreachable)
"""Errors after which nothing more may act, whatever else failed with them (`drainable`)."""


class BatchHandling(Parts):
    """Handles a chunk of one partition's records and marks or commits its offsets (mixed into `Service`)."""

    async def _handle_batch(self, batch: dict[Any, list[RawRecord]]) -> None:
        async with self._lock.shared():
            try:
                if self._rebalance_error is not None:  # nothing is handled (or committed) after a failed rebalance
                    raise self._rebalance_error
                if self.flow.failed is not None:  # failing since the chunk waited for the gate: it starts nothing
                    return
                offsets = await self._handle_chunk(batch)
            except Exception:
                # the lane fails and the service with it: stopping from now on, before the gate lets a waiting
                # assignment in, so that it neither restores nor fences the new owner (partitions.py)
                self._stop.set()
                raise
        if offsets is not None and self.flow.failed is None:  # a failure may have come after the chunk's last check
            await self.ingest.commit(offsets)

    async def _handle_chunk(self, batch: dict[Any, list[RawRecord]]) -> dict[Any, int] | None:
        """Under the gate's shared side: the chunk through the pipeline, its entries durable; the offsets left to
        commit after the gate (None when they were committed here, or left to the coalesced commits)."""
        if self.fleet is not None:  # a partition revoked since the poll is its new owner's now
            batch = {tp: rs for tp, rs in batch.items() if tp.partition in self.fleet.owned}
        if active():  # one span per record around all of its stages, as before
            groups: Sequence[Sequence[RawRecord | Prepared]] = [g for rs in batch.values() for g in by_key(rs)]
        else:
            groups = await self._prepare_batch(batch)
        if groups:
            unsent: list[Exception] = []
            try:
                async with asyncio.TaskGroup() as tg:
                    for same_key in groups:
                        tg.create_task(self._handle_partition(same_key, unsent))
            except BaseExceptionGroup as group:  # a TimelineError: with the dead letters unsent before it, if any
                if unsent:  # they ended as a drain would (exception_groups.Drained): the later errors decide, as
                    raise drained(unsent, group) from None  # when they came from another lane (lanefailures.py)
                raise
            except asyncio.CancelledError:  # a stop past its drain deadline, a failure elsewhere: the dead letters
                if unsent:  # unsent are raised, not the cancel, as the task group raised its tasks' errors before
                    raise ExceptionGroup("dead letters not sent", unsent) from None
                raise
            finally:  # the chunk's matched events, in one `inc`: a scrape after the chunk shows all of them
                self.pipeline.publish_matched()
            if unsent:  # as the task group raised them before it waited for the other keys
                raise ExceptionGroup("dead letters not sent", unsent)
        fleet = self.fleet
        txn = fleet.changelog.txn if fleet is not None else None
        if fleet is not None and txn is not None:  # the batch's last changelog records and its offsets: one txn
            with txn.hold(tp.partition for tp in batch):
                await self.recorder.flush()
                fleet.partitions.settle((tp.topic, tp.partition) for tp in batch)
                if self.flow.failed is not None:  # the service fails: a chunk that ended meanwhile commits nothing
                    return None
                committed = await txn.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
            if batch and committed:  # the alerts consumer's offsets went through: progress for its rebuilds (not a
                self.ingest.commits += 1  # chunk whose partitions all left while it waited for the gate)
            return None
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        if self.fleet is not None or not self.commits.interval:  # in a fleet the chunk's state reaches the
            await self.recorder.flush()  # changelog before the gate lets a rebalance or an eviction in
        if fleet is not None:  # its entries are routed: its events' origins are not needed any more
            fleet.partitions.settle((tp.topic, tp.partition) for tp in batch)
        if self.flow.failed is not None:  # the service fails (a dead letter unsent): nothing more is committed
            return None
        if self.commits.interval:  # committed with the others, after a flush (responder/ingest/commits.py)
            self.commits.handled(offsets)
            return None
        return offsets

    async def _prepare_batch(self, batch: dict[Any, list[RawRecord]]) -> list[list[Prepared]]:
        """Decode and match every record inline (no task, no await per record); only the records that matched
        are returned, grouped by key in order, to act concurrently. Poison is dead-lettered here."""
        found, failed = self.pipeline.prepare_batch(r for records in batch.values() for r in records)
        for record, exc in failed:
            try:
                await self._failed(record, exc)
            except Exception as lost:  # the chunk fails with it (nothing of it under way yet)
                self._unsent(lost, exc)
                raise
        groups: dict[bytes | None, list[Prepared]] = {}
        for prepared in found:
            groups.setdefault(prepared.record.key, []).append(prepared)
        self.pipeline.publish_counts()
        return list(groups.values())

    async def _handle_partition(self, records: Sequence[RawRecord | Prepared],
                                unsent: list[Exception] | None = None) -> None:
        """One key's records, in order. A dead letter that could not be sent ends them (none after it is handled):
        with `unsent` (the chunk's task group) it is kept there, for the chunk to raise once its other keys have run
        to their end (it must not cancel them mid-step), else raised. A TimelineError leaves at once."""
        for item in records:
            record = item.record if isinstance(item, Prepared) else item
            try:
                if isinstance(item, Prepared):
                    await self.pipeline.act(item)
                    if item.rejected is not None:  # its bad parts, once the others acted (as `handle` raises them)
                        raise item.rejected
                else:
                    await self.pipeline.handle(item)
            except Exception as exc:  # noqa: BLE001 - see _failed
                try:
                    await self._failed(record, exc)
                except Exception as lost:  # a timeline failure, or `_failed`'s dead letter was not sent
                    if unsent is None or not self._unsent(lost, exc):
                        raise
                    unsent.append(lost)
                    return

    def _unsent(self, lost: Exception, stage: Exception) -> bool:
        """Whether `lost`, raised by `_failed` for the stage's error `stage`, lets the work in hand finish (both
        `drainable`); if so the service stops from now on, and the lanes are told (`Flow.failing`): no chunk starts,
        and none ending meanwhile commits."""
        if not (drainable(lost) and drainable(stage)):
            return False
        self._stop.set()
        self.flow.failing(lost)
        return True

    async def _failed(self, record: RawRecord, exc: Exception) -> None:
        """A stage raised: poison and bugs are dead-lettered, not retried; a timeline failure stops the service."""
        if unwritten(exc):
            raise exc  # nothing may be committed once the record cannot be written: stop, redeliver on restart
        if isinstance(exc, EventRejected):
            await self._reject(record, exc.reason_code, exc.detail)
            return
        log.error("record_failed", topic=record.topic, offset=record.offset, exc_info=exc)
        await self._reject(record, "internal", f"{exc.__class__.__name__}: {exc}")

    async def _reject(self, record: RawRecord, reason: str, detail: str) -> None:
        self.deadlettered[reason] = self.deadlettered.get(reason, 0) + 1
        self.metrics.deadlettered.labels(reason).inc()
        self.pipeline.counters.rejected[reason] = self.pipeline.counters.rejected.get(reason, 0) + 1
        if self.settings.dry_run:  # a dry run never produces: the would-be dead letter is recorded instead
            self.recorder.append(EntryKind.RECORD_REJECTED, {
                "topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": reason,
                "detail": detail[:2000], "dry_run": True, "deadletter_topic": self.settings.deadletter_topic})
            log.warning("record_rejected_dry_run", reason=reason, topic=record.topic, offset=record.offset)
            return
        await self.ingest.deadletter(record, reason, detail)


def unwritten(exc: BaseException) -> bool:
    """Whether `exc` is a timeline failure: a TimelineError, or one among the errors of a task group a stage ran."""
    return any(isinstance(leaf, TimelineError) for leaf in leaves(exc))


def drainable(exc: BaseException) -> bool:
    """Whether the service, failing with `exc` (a dead letter that could not be sent), may still let the chunks in hand
    finish. Not when any error in it, or one it was raised from, forbids acting further: a timeline failure (nothing
    more can be recorded), a fence or any changelog error (ReplicaFenced, TransactionFailed: another replica may own
    the partitions now, a zombie must stop acting at once), Kafka unreachable (a cut-off, which rejoins), or a
    cancellation. Every error it holds is asked (`related`: through groups, causes and contexts, where the error a
    stage raised before its dead letter failed usually is); a cancellation only as a leaf or a cause up to a timeout
    (`asyncio.timeout` and `wait_for` raise their TimeoutError from the cancel they took back, as its `__cause__` and
    `__context__`: that cancel is the timeout's own). Conservative: only what `_unsent` is given is ever asked, and
    whatever else a lane raises (a failed rebalance, a commit's error) cancels every chunk at once
    (responder/ingest/flow.py)."""
    for leaf in leaves(exc):
        for err in cause_chain(leaf):
            if isinstance(err, TimeoutError):
                break  # what it was raised from is the cancel a timeout took back
            if not isinstance(err, Exception):
                return False
    return not any(isinstance(err, FORBID) or fenced_error(err) for err in related(exc))


def drained(unsent: list[Exception], group: BaseExceptionGroup[BaseException]) -> BaseExceptionGroup[BaseException]:
    """The dead letters a chunk could not send and `group`, its task group's errors after them (a TimelineError):
    a `Drained` group, whose later errors decide the exit or rejoin (as when another lane's ended the drain)."""
    later = [e for e in group.exceptions if isinstance(e, Exception)]
    if len(later) < len(group.exceptions):  # a KeyboardInterrupt, say: not an error that decides, raised as it came
        return group.derive([*unsent, *group.exceptions])
    return Drained("lanes failed", [ExceptionGroup("dead letters not sent", unsent), *later])


def by_key(records: list[RawRecord]) -> list[list[RawRecord]]:
    """Split a partition's batch by record key, keeping order within each key.

    Records with the same key (the incident key) are handled in order; different keys run
    concurrently so their intents share one group-commit fsync. The engine also serialises
    work per incident, so a producer that keys records differently cannot make it act twice.
    """
    groups: dict[bytes | None, list[RawRecord]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    return list(groups.values())
