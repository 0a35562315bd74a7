"""Backpressure: every partition is handled in its own lane, in order, and a partition whose in-flight records
fill its budget is paused (`consumer.pause`) until it drains, while the other partitions keep flowing.

In-flight records of a partition are those polled and not yet handled (queued in its lane or being handled); a
handled chunk's offsets are committed within `kafka_commit_interval_ms` (responder/ingest/commits.py).
A partition is paused when one more poll could take it over `max_in_flight`, and resumed when it is down to
`resume_at`. So a partition never holds more than `max(max_in_flight, max_batch)` records, and memory is bounded
by the partitions owned, however slow the actuators. A paused partition's prefetched records are dropped by
aiokafka and fetched again from its position on resume: nothing is lost, nothing is committed early.

Lanes share one batch's worth of handling: chunks start while the records being handled number at most
`max_batch`, as one poll batch did before lanes. A chunk still running after `slow_after` seconds (its actuators
are slow) stops counting against that share, so the other partitions keep flowing while it waits
(`HandlingBudget`, responder/ingest/budget.py).

The service (see docs/configuration.md, `RESPONDER_MAX_IN_FLIGHT`) polls, calls `Flow.submit(batch)` and polls
again; each lane calls the handler with one partition's chunk, which acts and marks that partition's offsets for
the next coalesced commit (or, with an interval of 0 or in transactions mode, makes the timeline durable and
commits them itself). The handlers run under `Gate.shared()` (responder/ingest/gate.py); rebalances, evictions
and approvals take the gate exclusively, so they still see no chunk half-handled.

No chunk starts once a lane failed or a handler announced its coming failure (`failing`: a dead letter not sent,
whatever the send's error, Kafka unreachable past the send deadline included). A service failing with announced
errors alone (`abort`) lets the chunks in hand finish within `drain_deadline`: in a fleet a step begun meanwhile
still passes its changelog barrier, which fails while Kafka is unreachable, so only steps already past it finish their
AWS call (a single replica has no barrier). Any other failure (a timeline's, a changelog's or a fence, Kafka found
unreachable by a client, the poll loop's own, a cancel) cancels them all at once. A lane failing so ends such a drain,
and both are raised (a `Drained` group, responder/ingest/lanefailures.py); another loop's failure (a fence) cancels
the alert loop, which cancels the lanes (`close(cancel=True)`): the service fails with that error alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from responder.bounds import DRAIN_DEADLINE
from responder.ingest.budget import Handler, HandlingBudget
from responder.ingest.lanefailures import Failures
from responder.models.event import RawRecord

log = structlog.get_logger(__name__)

SLOW_AFTER = 1.0  # seconds a chunk may run before its partition counts as slow
Observer = Callable[[Any, int, bool, bool], None]
"""Told (partition, in-flight records, paused, paused just now) whenever a partition's flow changes."""


class Pausable(Protocol):
    """What flow control needs of a consumer."""

    def pause(self, partitions: Sequence[Any]) -> None: ...

    def resume(self, partitions: Sequence[Any]) -> None: ...


@dataclass
class _Lane:
    queue: list[RawRecord] = field(default_factory=list)  # polled, not started
    running: int = 0  # records being handled now (until their commit returns)
    task: asyncio.Task[None] | None = None
    paused: bool = False
    revoked: bool = False  # dropped with a chunk in hand: reports nothing more until its records are submitted again

    @property
    def in_flight(self) -> int:
        return len(self.queue) + self.running


class Flow:
    """Per-partition lanes with an in-flight budget; pauses and resumes partitions on `consumer`."""

    def __init__(self, consumer: Pausable, handle: Handler, *, max_in_flight: int, max_batch: int,
                 observe: Observer | None = None, slow_after: float = SLOW_AFTER,
                 drain_deadline: float = DRAIN_DEADLINE, on_idle: Callable[[], object] | None = None) -> None:
        self.consumer, self.handle, self.observe = consumer, handle, observe
        self.on_idle = on_idle  # called when a lane's last chunk leaves no partition with work in hand
        self.max_in_flight, self.max_batch = max_in_flight, max_batch
        self.drain_deadline = drain_deadline
        self._budget = HandlingBudget(lambda: self.max_batch, slow_after, lambda: self.failed is not None)
        self.resume_at = max(0, max_in_flight - max_batch) // 2
        self.pauses = 0
        self.peak = 0  # the most records one partition ever had in flight
        self._lanes: dict[Any, _Lane] = {}
        self._failures = Failures()  # the lanes' failure and the errors handlers announced (lanefailures.py)

    @property
    def failed(self) -> BaseException | None:
        """The lanes' failure, else the first error a handler announced (`failing`): the next `submit` raises it."""
        return self._failures.error

    def failing(self, exc: Exception) -> None:
        """A handler met `exc`, which does not forbid acting further (a dead letter not sent), and fails with it once
        its chunk's other keys are done (service/batches.py): no lane starts a chunk from now on; `submit` raises it."""
        self._failures.announce(exc)

    def in_flight(self, partition: Any | None = None) -> int:
        """Records polled and not yet committed: of one partition, or of all."""
        lanes = [self._lanes[partition]] if partition in self._lanes else [] if partition is not None else list(
            self._lanes.values())
        return sum(lane.in_flight for lane in lanes)

    def idle(self) -> bool:
        """Whether no partition has records queued or a chunk in hand."""
        return all(lane.task is None and not lane.queue for lane in self._lanes.values())

    def paused(self) -> set[Any]:
        """The partitions paused for backpressure now."""
        return {tp for tp, lane in self._lanes.items() if lane.paused}

    def submit(self, batch: Mapping[Any, list[RawRecord]]) -> None:
        """Queue a poll's records in their partitions' lanes (never waits); raises a lane's failure (`failed`)."""
        if self.failed is not None:
            raise self.failed
        for tp, records in batch.items():
            if not records:
                continue
            lane = self._lanes.setdefault(tp, _Lane())
            lane.revoked = False
            lane.queue.extend(records)
            self.peak = max(self.peak, lane.in_flight)
            if lane.task is None:
                lane.task = asyncio.create_task(self._run(tp, lane), name=f"lane {tp}")
            self._adjust(tp, lane)

    def drop(self, partitions: Sequence[Any]) -> None:
        """Partitions revoked: forget their queued records (uncommitted, so redelivered to the new owner). The observer
        hears nothing more of them (their series are removed if they leave), not when a chunk in hand ends either,
        until they are assigned back (`regained`) or records of theirs are submitted again."""
        for tp in partitions:
            lane = self._lanes.get(tp)
            if lane is None:
                continue
            lane.queue.clear()
            lane.paused = False  # the consumer forgets pauses with the assignment
            lane.revoked = True
            if lane.task is None:
                del self._lanes[tp]

    def regained(self, partitions: Iterable[Any]) -> None:
        """Partitions dropped and assigned straight back: reported again, a chunk in hand's end included."""
        for tp in partitions:
            lane = self._lanes.get(tp)
            if lane is not None:
                lane.revoked = False
                self._notify(tp, lane, changed=False)
            elif self.observe is not None:  # nothing of theirs in hand since the drop
                self.observe(tp, 0, False, False)

    async def close(self, *, cancel: bool = False) -> None:
        """Stop: queued records are dropped (uncommitted), chunks being handled finish (or are cancelled, at once
        or once `drain_deadline` has passed); then a failure (`failed`) is raised, unless cancelled."""
        await self._end(drain=not cancel)
        if self.failed is not None and not cancel:
            raise self.failed

    async def abort(self, exc: BaseException) -> BaseException:
        """The service fails with `exc` (its poll loop's): queued records are dropped, the chunks in hand cancelled at
        once or, if `exc` is this flow's failure made of announced errors only (`failing`), left to finish within
        `drain_deadline`. Returns the error to raise: then the lanes' failure once they ended, else `exc`."""
        own = self._failures.owns(exc)
        await self._end(drain=own and self._failures.drains(self.failed))
        failed = self.failed
        return failed if own and failed is not None else exc

    async def _end(self, *, drain: bool) -> None:
        for lane in self._lanes.values():
            lane.queue.clear()
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        try:
            if tasks and drain:
                _, late = await asyncio.wait(tasks, timeout=self.drain_deadline)
                if late:
                    log.warning("drain_deadline_passed", chunks=len(late), deadline_s=self.drain_deadline)
        finally:  # past the deadline, at once, or when this stop is cancelled itself: no chunk is left running
            self._failures.cut_short()  # what a lane raises because of this cancel does not decide the failure
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._lanes.clear()

    async def _run(self, tp: Any, lane: _Lane) -> None:
        try:
            while lane.queue and self.failed is None:
                chunk, lane.queue = lane.queue[: self.max_batch], lane.queue[self.max_batch:]
                lane.running = len(chunk)
                if not await self._budget.handle(self.handle, tp, chunk):
                    lane.queue[:0] = chunk  # not started: a failure came first
                lane.running = 0
                self._adjust(tp, lane)
        except Exception as exc:  # noqa: BLE001 - raised to the poll loop by the next submit (or close)
            log.error("partition_lane_failed", partition=str(tp), error=repr(exc))
            if self._failures.lane_failed(exc):  # it may forbid acting further: no other chunk goes on meanwhile
                for task in [o.task for o in self._lanes.values() if o is not lane and o.task is not None]:
                    task.cancel()
        finally:
            lane.task, lane.running = None, 0
            if self._lanes.get(tp) is lane and not lane.queue:
                self._adjust(tp, lane)
            if self.on_idle is not None and self.failed is None and self.idle():
                self.on_idle()

    def _adjust(self, tp: Any, lane: _Lane) -> None:
        n = lane.in_flight
        if not lane.paused and n > 0 and n + self.max_batch > self.max_in_flight:
            lane.paused = True
            self.pauses += 1
            self.consumer.pause([tp])
            log.info("partition_paused", partition=str(tp), in_flight=n)
            self._notify(tp, lane, changed=True)
        elif lane.paused and n <= self.resume_at:
            lane.paused = False
            self.consumer.resume([tp])
            log.info("partition_resumed", partition=str(tp), in_flight=n)
            self._notify(tp, lane, changed=True)
        else:
            self._notify(tp, lane, changed=False)

    def _notify(self, tp: Any, lane: _Lane, *, changed: bool) -> None:
        if self.observe is not None and not lane.revoked:
            self.observe(tp, lane.in_flight, lane.paused, changed)
