"""Fleet-wide guards: global quotas and the kill switch, shared by every replica through DynamoDB.

Why DynamoDB conditional writes and not a single-partition guard topic with one owner: a quota slot must be
taken *before* the cloud call, atomically against every other replica, and the answer is needed in the
step's own latency budget. A conditional `PutItem` is one round trip, linearizable per item, has no owner to
fail over, and moto serves it for the tests. A guard topic would need a leader replica answering requests
(another consumer group, request/response over Kafka and a failover of its own).

A global quota of `max` actions per `window` seconds is `max` slot items per quota. Taking a slot is a
conditional put that succeeds only if the slot is free (never taken, or taken more than `window` ago) or was
taken by the same step key (a retry). So at most `max` actions start in any window, fleet-wide, whatever the
number of replicas. A step key that ran before (the engine knows its result or open intent) first looks up the slot it
holds (one consistent `BatchGetItem`) and retakes that one, so a free slot earlier in the scan is not taken as a
second one. A slot this step key took afresh is given back (a conditional delete: only while it still
holds this key and this take's time) when another matching quota is full, and when the step's result is a
permanent failure that changed nothing (`StepResult.refundable`, as a local window's refund); a slot it already
held stays. The kill switch is one item read once per poll by every replica, each read bounded (`SWITCH_READ_S`,
then `SWITCH_RETRY_S` without reads after a failed one): a table that does not answer must not hold the poll loop up.

Expiry compares each slot's `at` with the caller's clock (DynamoDB has no server time for a condition): a replica
whose clock runs ahead sees other replicas' slots expire early. `ensure_table` (the base's, `FleetTable` in
responder/engine/fleettable.py) logs `fleet_clock_skew` when the local clock and AWS's (a response's `Date` header)
differ by more than `MAX_SKEW_S` (fleettable.py's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import Any

import structlog

from responder.actuators.base import AwsCaller
from responder.bounds import SWITCH_READ_S  # one kill-switch read, which the poll loop waits for
from responder.engine.fleetitems import KILL_SWITCH, Slot, slot_key, switch_item, switch_on
from responder.engine.fleettable import FleetTable
from responder.engine.guards import Trip
from responder.errors import ActuationError
from responder.models.runbook import Quota
from responder.models.step import StepResult

log = structlog.get_logger(__name__)

MAX_HELD = 10_000  # step keys whose fresh slots are remembered until their result (oldest forgotten: slots expire)
SWITCH_RETRY_S = 5.0  # seconds after a failed read during which the polls keep the last value without reading


class FleetGuard(FleetTable):
    """Global quotas and the kill switch in one DynamoDB table (partition key `pk`, a string), which also keeps the
    operator replies (`FleetReplies`) and the fleet's digest (`FleetTable`)."""

    def __init__(self, aws: AwsCaller, table: str, quotas: Sequence[Quota],
                 clock: Callable[[], float] = time.time) -> None:
        self.aws, self.table, self.quotas, self.clock = aws, table, list(quotas), clock  # `clock`: the skew check's
        self.killed = True  # fails closed: until the switch has been read once, every step waits for a human
        self.read_once = False
        self.monotonic: Callable[[], float] = time.monotonic  # paces the reads after a failed one
        self._read_after = 0.0  # no read before this (`monotonic`): one failed less than SWITCH_RETRY_S ago
        self._reading: asyncio.Future[dict[str, Any]] | None = None  # a read not ended (one timed out goes on)
        self._held: dict[str, list[Slot]] = {}  # step key → the slots it took afresh, until its result

    async def refresh(self) -> bool:
        """Read the kill switch (once per poll); a read failure keeps the last known value, and before the first
        successful read that value is "on" (fail closed: a replica that cannot see the switch acts on nothing
        unattended, as a quota it cannot take trips). A read that has not answered within SWITCH_READ_S has failed,
        and the polls of the next SWITCH_RETRY_S seconds keep the last value without reading: a table that hangs
        slows the poll loop by one bounded read per late one, where each poll waited for the session's 20 s deadline and
        then for the timed-out call's thread (`AwsSession._landed`; botocore's retries are off), up to about 46 s. The
        read that timed out goes on until that call gives up; no other starts beside it, so a hung table never holds
        more than one of the actuators' threads."""
        if self._reading is not None and (self._reading.done()
                                          or self._reading.get_loop() is not asyncio.get_running_loop()):
            self._reading = None  # left by an event loop that ended without running its callbacks (CLI: asyncio.run)
        if self._reading is not None or self.monotonic() < self._read_after:
            return self.killed
        reading = self._reading = asyncio.ensure_future(self.aws.call(
            "dynamodb", "get_item", TableName=self.table, ConsistentRead=True, Key={"pk": {"S": KILL_SWITCH}}))
        reading.add_done_callback(self._read_ended)
        try:
            async with asyncio.timeout(SWITCH_READ_S):
                got = await asyncio.shield(reading)
        except (ActuationError, TimeoutError) as exc:
            self._read_after = self.monotonic() + SWITCH_RETRY_S
            log.warning("fleet_guard_unreadable", error=str(exc) or f"no answer within {SWITCH_READ_S:g} s",
                        kill_switch_assumed=self.killed, retry_in_s=SWITCH_RETRY_S,
                        detail="the last value read stands; before the first read, the switch counts as on")
            return self.killed
        item = got.get("Item", {})
        killed = switch_on(item)
        if not self.read_once:
            self.read_once = True
            (log.warning if killed else log.info)("fleet_kill_switch_read", on=killed, by=item.get("by", {}).get("S"),
                                                  reason=item.get("reason", {}).get("S"))
        elif killed != self.killed:
            log.warning("fleet_kill_switch", on=killed, by=item.get("by", {}).get("S"),
                        reason=item.get("reason", {}).get("S"), at=item.get("at", {}).get("S"))
        self.killed = killed
        return killed

    def _read_ended(self, reading: asyncio.Future[dict[str, Any]]) -> None:
        """A kill-switch read ended (a timed-out one too: its late outcome is dropped, the next read is due)."""
        if self._reading is reading:
            self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved: a timed-out read's late failure is not "never retrieved"

    async def set_kill_switch(self, on: bool, by: str, reason: str = "", at: str = "") -> None:
        """Turn the fleet's kill switch on or off, saying who, why and when (ISO 8601), whatever it was: for tests
        and scripts; `responder fleet kill-switch` writes the same item only if it is still as read."""
        await self.aws.call("dynamodb", "put_item", TableName=self.table, Item=switch_item(on, by, reason, at))

    async def acquire(self, actuator: str, key: str, now: float, *, again: bool = False) -> Trip | None:
        """Take one slot of every global quota matching `actuator` for step `key`; a Trip when one is full (or the
        table cannot be reached), after giving back the slots this call took afresh for the others. `again`: the step
        key ran before (a result or an open intent is known), so the slot it may hold is looked up and taken first."""
        taken: list[Slot] = []
        for q in self.quotas:
            if not fnmatchcase(actuator, q.actuator):
                continue
            try:
                slot = await self._take(q, key, now, await self._holding(q, key, now) if again else None)
            except ActuationError as exc:  # unreachable: fail safe, a human decides
                await self._release(key, taken, "quota_store_unavailable")
                return Trip("quota", f"fleet-wide quota store unavailable: {exc}")
            except Exception:  # a bug or an unclassified error: the slots taken afresh are given back, then it goes up
                await self._release(key, taken, "acquire_failed")
                raise
            if slot is None:
                await self._release(key, taken, "another_quota_full")
                return Trip("quota", f"fleet-wide: {q.actuator} ran {q.max} time(s) in {q.window:g}s (max {q.max})")
            taken.append(slot)
        fresh = [s for s in taken if s.fresh]
        if fresh:
            self._held[key] = fresh
            if len(self._held) > MAX_HELD:  # results that never came (a step cut short): their slots just expire
                del self._held[next(iter(self._held))]
        return None

    async def settle(self, key: str, result: StepResult) -> None:
        """A step's result: a permanent failure that changed nothing (`StepResult.refundable`) gives back the slots its
        run took afresh."""
        held = self._held.pop(key, None) if self._held else None
        if held is not None and result.refundable:
            await self._release(key, held, "permanent_failure")

    async def _holding(self, q: Quota, key: str, now: float) -> int | None:
        """The slot of `q` that step `key` holds within its window, if any (one consistent batch read); None if the
        read is refused (no `dynamodb:BatchGetItem` right): the scan then takes the first free slot or its own."""
        names, since = [slot_key(q, slot) for slot in range(q.max)], now - q.window
        try:
            for start in range(0, len(names), 100):  # BatchGetItem reads at most 100 keys
                got = await self.aws.call("dynamodb", "batch_get_item", RequestItems={self.table: {
                    "Keys": [{"pk": {"S": pk}} for pk in names[start:start + 100]], "ConsistentRead": True}})
                for item in got.get("Responses", {}).get(self.table, []):
                    if item.get("key", {}).get("S") == key and float(item.get("at", {}).get("N", "-inf")) > since:
                        return names.index(item["pk"]["S"])
        except ActuationError as exc:  # at worst a second slot (stricter); an unreachable table fails the put next
            log.warning("fleet_quota_slot_lookup_failed", quota=q.actuator, key=key, error=str(exc))
        return None

    async def _take(self, q: Quota, key: str, now: float, first: int | None = None) -> Slot | None:
        """Take a free slot of `q` for `key`, the one it holds (`first`) first: a retry never takes a second."""
        at = repr(now)
        for slot in ([first] if first is not None else []) + [i for i in range(q.max) if i != first]:
            try:
                got = await self.aws.call(
                    "dynamodb", "put_item", TableName=self.table,
                    Item={"pk": {"S": slot_key(q, slot)}, "at": {"N": at},
                          "key": {"S": key}},
                    ConditionExpression="attribute_not_exists(pk) OR #at <= :expired OR #key = :key",
                    ExpressionAttributeNames={"#at": "at", "#key": "key"},
                    ExpressionAttributeValues={":expired": {"N": repr(now - q.window)}, ":key": {"S": key}},
                    ReturnValues="ALL_OLD")
            except ActuationError as exc:
                if getattr(exc, "code", "") == "ConditionalCheckFailedException":
                    continue
                raise
            old = got.get("Attributes", {})
            held = old.get("key", {}).get("S") == key and float(old.get("at", {}).get("N", "-inf")) > now - q.window
            log.info("fleet_quota_slot_taken", quota=q.actuator, slot=slot, key=key, held_already=held)
            return Slot(slot_key(q, slot), at, fresh=not held)
        return None

    async def _release(self, key: str, slots: Sequence[Slot], reason: str) -> None:
        """Give back slots taken afresh for `key`: each only while it still holds this key and this take's time."""
        for slot in slots:
            if not slot.fresh:
                continue
            try:
                await self.aws.call("dynamodb", "delete_item", TableName=self.table, Key={"pk": {"S": slot.pk}},
                                    ConditionExpression="#key = :key AND #at = :at",
                                    ExpressionAttributeNames={"#at": "at", "#key": "key"},
                                    ExpressionAttributeValues={":key": {"S": key}, ":at": {"N": slot.at}})
            except ActuationError as exc:  # taken since (kept), or unreachable: it frees itself at its window's end
                log.warning("fleet_quota_slot_kept", slot=slot.pk, key=key, reason=reason, error=str(exc))
                continue
            log.info("fleet_quota_slot_released", slot=slot.pk, key=key, reason=reason)
