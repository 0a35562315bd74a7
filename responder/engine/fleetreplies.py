"""Operator replies kept fleet-wide in the guard table (`FleetReplies`, the base of `FleetGuard`,
responder/engine/fleetguard.py), each until a day past the time its request is refused anyway: the item's
`REPLY_TTL` attribute, by which DynamoDB deletes it once the table's TTL is enabled on it (`ensure_ttl`, at each
replica's start)."""

from __future__ import annotations

import asyncio

import structlog

from responder.actuators.base import AwsCaller
from responder.engine.fleetitems import OPERATOR, REPLY_TTL
from responder.errors import ActuationError

log = structlog.get_logger(__name__)

TTL_TRIES = 10
"""Attempts to enable the TTL on a table still being created (a second apart): an on-demand table is active in
seconds."""


class FleetReplies:
    """The operator replies of the guard table `table` (partition key `pk`), and its TTL."""

    aws: AwsCaller
    table: str

    async def ensure_ttl(self, *, tries: int = TTL_TRIES, pause: float = 1.0) -> bool:
        """Enable the table's TTL on `REPLY_TTL` (operator replies expire) unless it is; whether it is now. A table
        still being created (`ResourceInUseException`) is asked again, `tries` times `pause` seconds apart. A refusal
        (no `dynamodb:UpdateTimeToLive`) is logged, not fatal: the items then stay, as before 2026-12-05, until the
        TTL is enabled by hand; so is a TTL already on another attribute (one per table: left as it is)."""
        for attempt in range(1, tries + 1):
            try:
                got = (await self.aws.call("dynamodb", "describe_time_to_live", TableName=self.table)).get(
                    "TimeToLiveDescription", {})
                if got.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                    if got.get("AttributeName", REPLY_TTL) == REPLY_TTL:
                        return True
                    return self._not_enabled(f"the table's TTL is on the attribute {got.get('AttributeName')!r}")
                await self.aws.call("dynamodb", "update_time_to_live", TableName=self.table,
                                    TimeToLiveSpecification={"Enabled": True, "AttributeName": REPLY_TTL})
            except ActuationError as exc:
                if getattr(exc, "code", "") == "ResourceInUseException" and attempt < tries:
                    await asyncio.sleep(pause)  # the table is still being created
                    continue
                return self._not_enabled(str(exc))
            log.info("fleet_ttl_enabled", table=self.table, attribute=REPLY_TTL)
            return True
        return False

    def _not_enabled(self, error: str) -> bool:
        """Log why the replies' TTL is not on (`fleet_ttl_not_enabled`); False."""
        log.warning("fleet_ttl_not_enabled", table=self.table, attribute=REPLY_TTL, error=error,
                    detail="operator reply items are kept until the table's TTL is enabled on this attribute")
        return False

    async def operator_reply(self, request_id: str) -> tuple[str, str | None] | None:
        """The reply (JSON) of an operator request some replica completed and its request's digest, or None."""
        got = await self.aws.call("dynamodb", "get_item", TableName=self.table, ConsistentRead=True,
                                  Key={"pk": {"S": OPERATOR + request_id}})
        item = got.get("Item", {})
        value, request = item.get("reply", {}).get("S"), item.get("request", {}).get("S")
        return (value, request if isinstance(request, str) else None) if isinstance(value, str) else None

    async def save_operator_reply(self, request_id: str, reply: str, request: str, expires: float) -> None:
        """Record a completed operator request's reply and its request's digest for the whole fleet (first wins),
        deleted by DynamoDB after `expires` (epoch seconds, the table's TTL attribute `REPLY_TTL`)."""
        try:
            await self.aws.call("dynamodb", "put_item", TableName=self.table,
                                Item={"pk": {"S": OPERATOR + request_id}, "reply": {"S": reply},
                                      "request": {"S": request}, REPLY_TTL: {"N": repr(float(expires))}},
                                ConditionExpression="attribute_not_exists(pk)")
        except ActuationError as exc:
            if getattr(exc, "code", "") != "ConditionalCheckFailedException":
                raise
