"""Fleet-wide guards: global quotas and the kill switch, shared by every replica through DynamoDB.

Why DynamoDB conditional writes and not a single-partition guard topic with one owner: a quota slot must be
taken *before* the cloud call, atomically against every other replica, and the answer is needed in the
step's own latency budget. A conditional `PutItem` is one round trip, linearizable per item, has no owner to
fail over, and moto serves it for the tests. A guard topic would need a leader replica answering requests
(another consumer group, request/response over Kafka and a failover of its own).

A global quota of `max` actions per `window` seconds is `max` slot items per quota. Taking a slot is a
conditional put that succeeds only if the slot is free (never taken, or taken more than `window` ago) or was
taken by the same step key (a retry). So at most `max` actions start in any window, fleet-wide, whatever the
number of replicas. The kill switch is one item read once per poll by every replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

import structlog

from responder.actuators.base import AwsCaller
from responder.engine.guards import Trip
from responder.errors import ActuationError, ConfigError
from responder.models.runbook import Quota

log = structlog.get_logger(__name__)

KILL_SWITCH = "kill-switch"
DIGEST = "fleet-digest"
OPERATOR = "operator#"  # + request id: the reply of a completed operator request, seen by every replica


def slot_key(q: Quota, slot: int) -> str:
    """The item key of slot `slot` of global quota `q`."""
    return f"quota#{q.actuator}#{q.window:g}#{slot}"


def switch_item(on: bool, by: str, reason: str, at: str) -> dict[str, Any]:
    """The kill-switch item every replica reads: on or off, who, why and when."""
    return {"pk": {"S": KILL_SWITCH}, "on": {"BOOL": on}, "by": {"S": by}, "reason": {"S": reason}, "at": {"S": at}}


class FleetGuard:
    """Global quotas and the kill switch in one DynamoDB table (partition key `pk`, a string)."""

    def __init__(self, aws: AwsCaller, table: str, quotas: Sequence[Quota]) -> None:
        self.aws, self.table, self.quotas = aws, table, list(quotas)
        self.killed = True  # fails closed: until the switch has been read once, every step waits for a human
        self.read_once = False

    async def ensure_table(self) -> None:
        """Create the table (on-demand) unless it exists."""
        try:
            await self.aws.call("dynamodb", "describe_table", TableName=self.table)
        except ActuationError:
            pass
        else:
            return
        try:
            await self.aws.call("dynamodb", "create_table", TableName=self.table, BillingMode="PAY_PER_REQUEST",
                                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        except ActuationError as exc:  # another replica created it meanwhile
            if getattr(exc, "code", "") != "ResourceInUseException":
                raise

    async def refresh(self) -> bool:
        """Read the kill switch (once per poll); a read failure keeps the last known value, and before the first
        successful read that value is "on" (fail closed: a replica that cannot see the switch acts on nothing
        unattended, as a quota it cannot take trips)."""
        try:
            got = await self.aws.call("dynamodb", "get_item", TableName=self.table, ConsistentRead=True,
                                      Key={"pk": {"S": KILL_SWITCH}})
        except ActuationError as exc:
            log.warning("fleet_guard_unreadable", error=str(exc), kill_switch_assumed=self.killed,
                        detail="the last value read stands; before the first read, the switch counts as on")
            return self.killed
        item = got.get("Item", {})
        killed = item.get("on", {}).get("BOOL") is True
        if not self.read_once:
            self.read_once = True
            (log.warning if killed else log.info)("fleet_kill_switch_read", on=killed, by=item.get("by", {}).get("S"),
                                                  reason=item.get("reason", {}).get("S"))
        elif killed != self.killed:
            log.warning("fleet_kill_switch", on=killed, by=item.get("by", {}).get("S"),
                        reason=item.get("reason", {}).get("S"), at=item.get("at", {}).get("S"))
        self.killed = killed
        return killed

    async def check_digest(self, digest: str, writer: str, adopt: bool = False) -> None:
        """Refuse to run with runbooks/settings that differ from the fleet's (the first replica sets them).

        `adopt` makes this replica's digest the fleet's (the first replica of a rollout); ConfigError otherwise.
        """
        item = {"pk": {"S": DIGEST}, "digest": {"S": digest}, "writer": {"S": writer}}
        try:
            if adopt:
                await self.aws.call("dynamodb", "put_item", TableName=self.table, Item=item)
            else:
                await self.aws.call("dynamodb", "put_item", TableName=self.table, Item=item,
                                    ConditionExpression="attribute_not_exists(pk) OR digest = :d",
                                    ExpressionAttributeValues={":d": {"S": digest}})
        except ActuationError as exc:
            if getattr(exc, "code", "") != "ConditionalCheckFailedException":
                raise
            got = await self.aws.call("dynamodb", "get_item", TableName=self.table, ConsistentRead=True,
                                      Key={"pk": {"S": DIGEST}})
            theirs = got.get("Item", {})
            fleet, by = theirs.get("digest", {}).get("S", "?"), theirs.get("writer", {}).get("S", "?")
            log.error("fleet_digest_mismatch", mine=digest, fleet=fleet, set_by=by)
            raise ConfigError(f"RESPONDER_RUNBOOKS_DIR/settings: runbook digest {digest[:16]} differs from the "
                              f"fleet's {fleet[:16]} (set by {by}); deploy the same runbooks, or set "
                              "RESPONDER_FLEET_ADOPT_DIGEST=true on the first replica of a rollout") from exc
        log.info("fleet_digest_checked", digest=digest, adopted=adopt)

    async def set_kill_switch(self, on: bool, by: str, reason: str = "", at: str = "") -> None:
        """Turn the fleet's kill switch on or off, saying who, why and when (ISO 8601), whatever it was: for tests
        and scripts; `responder fleet kill-switch` writes the same item only if it is still as read."""
        await self.aws.call("dynamodb", "put_item", TableName=self.table, Item=switch_item(on, by, reason, at))

    async def acquire(self, actuator: str, key: str, now: float) -> Trip | None:
        """Take one slot of every global quota matching `actuator` for step `key`; a Trip when one is full."""
        for q in self.quotas:
            try:
                taken = not fnmatchcase(actuator, q.actuator) or await self._take(q, key, now)
            except ActuationError as exc:  # unreachable: fail safe, a human decides
                return Trip("quota", f"fleet-wide quota store unavailable: {exc}")
            if not taken:
                return Trip("quota", f"fleet-wide: {q.actuator} ran {q.max} time(s) in {q.window:g}s (max {q.max})")
        return None

    async def _take(self, q: Quota, key: str, now: float) -> bool:
        for slot in range(q.max):
            try:
                await self.aws.call(
                    "dynamodb", "put_item", TableName=self.table,
                    Item={"pk": {"S": slot_key(q, slot)}, "at": {"N": repr(now)},
                          "key": {"S": key}},
                    ConditionExpression="attribute_not_exists(pk) OR #at <= :expired OR #key = :key",
                    ExpressionAttributeNames={"#at": "at", "#key": "key"},
                    ExpressionAttributeValues={":expired": {"N": repr(now - q.window)}, ":key": {"S": key}})
            except ActuationError as exc:
                if getattr(exc, "code", "") == "ConditionalCheckFailedException":
                    continue
                raise
            log.info("fleet_quota_slot_taken", quota=q.actuator, slot=slot, key=key)
            return True
        return False

    async def operator_reply(self, request_id: str) -> str | None:
        """The reply (JSON) of an operator request some replica completed, or None."""
        got = await self.aws.call("dynamodb", "get_item", TableName=self.table, ConsistentRead=True,
                                  Key={"pk": {"S": OPERATOR + request_id}})
        value = got.get("Item", {}).get("reply", {}).get("S")
        return value if isinstance(value, str) else None

    async def save_operator_reply(self, request_id: str, reply: str) -> None:
        """Record a completed operator request's reply for the whole fleet (the first completion wins)."""
        try:
            await self.aws.call("dynamodb", "put_item", TableName=self.table,
                                Item={"pk": {"S": OPERATOR + request_id}, "reply": {"S": reply}},
                                ConditionExpression="attribute_not_exists(pk)")
        except ActuationError as exc:
            if getattr(exc, "code", "") != "ConditionalCheckFailedException":
                raise
