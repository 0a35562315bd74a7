"""A revocation: the chunks in hand finish, the leaving partitions' state is made durable and forgotten, all within
one deadline in a fleet.

`Revocation` is mixed into `Service` through `PartitionKeeping` (partitions.py). aiokafka calls `_on_revoked` before
the member rejoins its group, and the group waits for it at most its rebalance timeout: past that it moves the
partitions without this member, which then may still act for them. Each wait on the way has its own bound
(`responder/bounds.py`, the changelog write deadline), but they add up: a dead letter's resends, a last changelog write
and the hand-over's commit reach about 309 s without transactions at the defaults (docs/fleet.md, "Deadlines"). So in
a fleet the whole revocation runs within `revocation_deadline` (the rebalance timeout less a margin). Past it the
revocation is cut (`_cut`): the service fails with `RevocationCut`, which rejoins as a fence does; the leaving
partitions are cut off (an entry of theirs fails its changelog barrier, so nothing still running for them acts); the
chunks in hand are cancelled uncommitted. Their next owner redoes the uncommitted records from the committed intents
and offsets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from responder.bounds import CUT_GRACE_S, largest
from responder.errors_kafka import RevocationCut
from responder.fleet import FleetState, partition_numbers
from responder.service.parts import Parts
from responder.settings import Settings

log = structlog.get_logger(__name__)


def warn_if_short(settings: Settings, deadline: float) -> None:
    """Say at start when a fleet revocation's deadline is not above one wait a chunk may make on its own (the
    changelog write deadline, an AWS call's timeout, the largest fixed bound): a revocation that meets such a wait is
    cut (a rejoin and the chunk redone, not a duplicate), however healthy the wait."""
    longest = max(largest(transactions=settings.kafka_transactions != "off").seconds,
                  settings.changelog_write_deadline, settings.aws_call_timeout)
    if deadline <= longest:
        log.warning("revocation_deadline_short", deadline_s=deadline, longest_wait_s=longest,
                    detail="a revocation meeting one such wait is cut and the replica rejoins: raise "
                           "RESPONDER_REBALANCE_TIMEOUT_MS (docs/fleet.md, \"Deadlines\")")


class Revocation(Parts):
    """The revocation callback, its hand-over and its cut; the end of the restores it waits for."""

    revocation_deadline: float  # a fleet revocation's seconds in all (`bounds.revocation_deadline`)

    async def _end_restore(self) -> None:
        """Before a revocation or the end of the service: a restore still fencing or reading is cancelled (it must not
        fence the next owner of a partition that left), one merging is waited for."""
        while running := {p: task for p, task in self._restorers.items() if not task.done()}:
            for partition, task in running.items():  # a task started meanwhile is seen by the next round
                if partition not in self._adopting:
                    task.cancel()
            await asyncio.wait(running.values())
        if self.fleet is not None:  # a task cancelled before its first step never left `restoring` itself
            for partition in sorted(self.fleet.restoring & set(self._restorers)):
                if partition in self._given:
                    self.fleet.interrupted(partition)
                else:
                    self.fleet.restoring.discard(partition)
        self._restorers.clear()

    async def _on_revoked(self, partitions: list[Any]) -> None:
        """Partitions leave: finish the batch in hand, make its state durable (changelog included), forget it; in a
        fleet within `revocation_deadline`, past which what is left is cut (`_cut`)."""
        self._rebalances += 1
        self.flow.drop(partitions)  # their queued records are the new owner's
        self.ingest.revoked(partitions)  # their series and lag stay until the assignment says whether they left
        numbers = partition_numbers(partitions)
        if self.fleet is not None:  # the chunks in hand still count quotas short of these (`_uncounted`)
            self._leaving_unrestored |= (numbers & self._given) - self.fleet.owned - self.fleet.short
        self._given -= numbers  # from now on no restore of theirs starts, and none of theirs is retried
        if self.fleet is not None:
            self.fleet.abandon(numbers)
        try:
            if self.fleet is None:
                await self.commits.commit(partitions)  # what this member handled of them, durable first
                return
            deadline = asyncio.timeout(self.revocation_deadline)
            try:
                async with deadline:
                    await self._end_restore()  # a fence or a read of theirs must not outlive their revocation
                    async with self._lock:  # the chunks in hand finish first
                        await self._hand_over(self.fleet, partitions)
            except TimeoutError:
                if not deadline.expired():  # a wait inside that timed out on its own: a failed hand-over
                    raise
                await self._cut(self.fleet, partitions)
            self._leaving_unrestored -= numbers  # forgotten, or cut off: nothing counts short of them now
        except Exception as exc:  # noqa: BLE001 - kept and raised by the next chunk and poll
            self._rebalance_failed("revoked", partitions, exc)

    async def _hand_over(self, fleet: FleetState, partitions: list[Any]) -> None:
        """Commit what this member handled of leaving partitions, durable first, then forget their state and close
        their producers, whatever the commit did (a stale copy is never kept to act on if they come back); the
        first failure is raised after."""
        failure: Exception | None = None
        try:
            await self.recorder.flush()
            await self.commits.commit(partitions)  # what this member handled of them
        except Exception as exc:  # noqa: BLE001 - raised below, once the state is forgotten
            failure = exc
        numbers = partition_numbers(partitions)
        fleet.revoke(numbers)
        try:
            await fleet.close(numbers)
        except Exception as exc:
            if failure is None:
                raise
            log.error("partition_producers_close_failed", error=f"{type(exc).__name__}: {exc}")
        if failure is not None:
            raise failure

    async def _cut(self, fleet: FleetState, partitions: list[Any]) -> None:
        """The revocation outlasted its deadline: the service fails (`RevocationCut`, kept first, so that no chunk
        starts and nothing more is committed); the leaving partitions are cut off (`FleetState.cut_revoked`: from now on
        an entry of theirs fails its changelog barrier, so nothing still running for them, a chunk or a decision under
        the gate, counts as durable or acts); then the chunks in hand and the task holding the gate (a decision, an
        `on_timeout`, a restore's merge: its retries and read-back go no further) are cancelled uncommitted, each at
        its next await, and waited for `CUT_GRACE_S` at most. A loop whose task that cancels ends; the poll loop
        raises the cut at its next poll, which ends the others."""
        numbers = sorted(partition_numbers(partitions))
        error = RevocationCut(
            f"revoking partition(s) {', '.join(map(str, numbers))} took longer than {self.revocation_deadline:g} s "
            "(RESPONDER_REBALANCE_TIMEOUT_MS less its margin): the chunks in hand were cancelled uncommitted, and "
            "their partitions' next owner redoes them (docs/fleet.md, \"Deadlines\")")
        self._rebalance_failed("revoked", partitions, error)
        fleet.cut_revoked(numbers)
        log.critical("revocation_deadline_passed", partitions=numbers, deadline_s=self.revocation_deadline,
                     detail="the chunks in hand are cancelled uncommitted; this replica rejoins its group")
        holder = self._lock.holder
        if holder is asyncio.current_task() or (holder is not None and holder.done()):
            holder = None
        if holder is not None:
            holder.cancel()
        try:
            async with asyncio.timeout(CUT_GRACE_S):
                await self.flow.close(cancel=True)
                if holder is not None:
                    await asyncio.wait({holder})
        except TimeoutError:
            log.error("revocation_cut_chunks_still_running", grace_s=CUT_GRACE_S)

    def _rebalance_failed(self, when: str, partitions: list[Any], exc: Exception) -> None:
        """aiokafka logs and swallows what a rebalance callback raises, then consumes on: the error is kept, the
        next chunk and the next poll raise it (the service stops loudly; a fence rejoins), and `/readyz` says it."""
        self._rebalance_error = self._rebalance_error or exc
        log.error("rebalance_failed", when=when, partitions=sorted(map(str, partitions)),
                  error=f"{type(exc).__name__}: {exc}", exc_info=exc)
