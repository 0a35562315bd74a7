"""The loops of signed records: decisions (and `on_timeout` of parked steps), operator requests.

`SignedLoops` is mixed into `Service` (responder/service/core.py) under `Running` (running.py), which starts them.
Each loop makes the entries its poll caused durable before it commits the poll's offsets; a refusal (recorded or
only counted, responder/engine/refusals.py) is never flushed alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER
from responder.engine.operator import OPERATOR_REJECTED
from responder.errors import Refusal
from responder.ingest.approvals import ApprovalIngest
from responder.models.event import RawRecord
from responder.models.timeline import EntryKind
from responder.service.chores import Chores
from responder.service.consumers import ConsumerRebuilds
from responder.service.parts import acting
from responder.tracing import traced

log = structlog.get_logger(__name__)


class SignedLoops(ConsumerRebuilds):
    """The approvals and operator loops (mixed into `Service`)."""

    async def _approvals_loop(self) -> None:
        """Signed decisions in, `on_timeout` applied to parked steps whose deadline passed. The requests to publish
        again (`Decisions.ask_again`: Kafka did not take them, or the steps were recovered parked) go beside the
        loop, one round at a time: on a down broker a round waits for the publisher's 20 s deadline, which held the
        decisions up (20 s of every 30 s) when the loop awaited it. A round still running at the end is cancelled:
        the next start publishes its requests again (they are recovered parked)."""
        held: dict[Any, int] = {}  # offsets polled, not committed yet (`_commit`)
        asks = Chores()
        try:
            while not self._stop.is_set():
                batch = await self._polled(self.approvals, "approvals", held)
                for records in batch.values():
                    for record in await self._readable(records, EntryKind.APPROVAL_REJECTED, self.approvals.replayed):
                        try:
                            await self._decide(record)
                        except Exception:  # one bad decision (even a bug) must not stop the approvals consumer
                            log.exception("approval_failed", offset=record.offset)
                asks.start("ask_again", self._ask_again)  # a failed round (a bug) stops the loop, as when awaited
                await self._expire()
                await self._recheck()  # a quota that can be counted again: its parked steps go on by themselves
                self.engine.decisions.refusals.tick()  # a window of refusals that has passed: its summary entries
                await self._commit(self.approvals, "approvals", held, batch)
        finally:
            await asks.close(cancel=True)
        await self._commit(self.approvals, "approvals", held, {}, last=True)

    async def _ask_again(self) -> None:
        """Publish the requests Kafka did not take, or may not have (`Decisions.ask_again`), without the gate: that
        only publishes."""
        await self.engine.decisions.ask_again()

    async def _decide(self, record: RawRecord) -> None:
        """One signed decision, in its trace. In a fleet the owner of the incident acts (others hold it until the
        partition comes), under the gate (`acting`: let down to its shared side while the released step settles)."""
        ids = signature(record)
        with traced("responder.decision", record.headers):  # its entries carry the decision's trace
            if self.fleet is None:
                await self.engine.decide(record.value, *ids)
            else:
                async with acting(self._lock):
                    await self.fleet.decide(record.value, *ids, replayed=self.approvals.replayed(record))

    async def _commit(self, ingest: ApprovalIngest, consumer: str, held: dict[Any, int],
                      batch: Mapping[Any, list[RawRecord]], *, last: bool = False) -> None:
        """Make the poll's entries durable, then commit its offsets (and those `held` back before) unless a refusal
        is only counted so far: its record is committed once the window's summary is durable (a crash redelivers it,
        to be refused and counted again, not lost from the timeline). `last`: the loop ends, the window with it."""
        held.update({tp: records[-1].offset + 1 for tp, records in batch.items()})
        if last:
            self.engine.decisions.refusals.close()
        await self.recorder.flush()
        if held and not self.engine.decisions.refusals.counting:
            await self._watching(ingest, consumer, ingest.commit(dict(held)))  # not held for ever by a lost coordinator
            held.clear()

    async def _expire(self) -> None:
        """`on_timeout` for the parked steps past their deadline, and the released steps a crash cut short. They may
        act, so in a fleet they run under the exclusive gate, as decisions do (never while a revocation hands their
        partition over), which is taken only when one is due."""
        if self.fleet is None:
            await self.engine.expire()
        elif self.engine.decisions.due():
            async with acting(self._lock):
                if not self._is_stopping():
                    await self.engine.expire()

    async def _readable(self, records: list[RawRecord], rejected: str,
                        again: Callable[[RawRecord], bool] | None = None) -> list[RawRecord]:
        """The records the Kafka client could parse. Each other one is refused like a forged decision or request
        (`rejected`, with its place and the client's error, within the bounds of `refusals`: one recorded in full is
        made durable here, the rest are counted into the window's summary) and committed with the rest: a decision
        or request is acted on only as its signer sent it. One read `again` at a start (a fleet member's, refused
        when it came) is only logged."""
        recorded = False
        refusals = self.engine.decisions.refusals
        for record in records:
            if record.unreadable is None:
                continue
            reason = f"the Kafka client cannot parse the record: {record.unreadable}"
            replayed = again is not None and again(record)
            with refusals.again(replayed):
                recorded |= refusals.record(rejected, {
                    "reason": reason, "key_id": None, "topic": record.topic, "partition": record.partition,
                    "offset": record.offset}, None, refusal=Refusal.UNREADABLE, key_id=None)
            (log.debug if replayed else log.error)("signed_record_unreadable", topic=record.topic,
                                                   partition=record.partition, offset=record.offset,
                                                   error=record.unreadable)
        if recorded:
            await self.recorder.flush()
        return [record for record in records if record.unreadable is None]

    async def _operator_loop(self, ingest: ApprovalIngest) -> None:
        """Signed operator requests in: run under the batch lock (one writer), recorded, answered on the replies."""
        held: dict[Any, int] = {}  # offsets polled, not committed yet (`_commit`)
        while not self._stop.is_set():
            batch = await self._polled(ingest, "operator", held)
            for records in batch.values():
                for record in await self._readable(records, OPERATOR_REJECTED, ingest.replayed):
                    try:
                        async with self._lock:
                            reply = await self.operator.handle(record.value, *signature(record))
                        if reply is not None:
                            await self.publisher.publish(self.settings.operator_replies_topic, reply.id.encode(),
                                                         *self.operator.publication(reply, record.value))
                    except Exception:  # one bad request (even a bug) must not stop the operator consumer
                        log.exception("operator_request_failed", offset=record.offset)
            await self._commit(ingest, "operator", held, batch)  # a refused request's entry (never flushed alone) first
        await self._commit(ingest, "operator", held, {}, last=True)


def signature(record: RawRecord) -> tuple[str | None, str | None]:
    """The record's signing key id and signature headers, as text."""
    key_id, sig = record.header(KEY_ID_HEADER), record.header(SIGNATURE_HEADER)
    return (key_id.decode(errors="replace") if key_id else None, sig.decode(errors="replace") if sig else None)
