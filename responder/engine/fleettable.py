"""The guard table itself (`FleetTable`, the base of `FleetGuard`, responder/engine/fleetguard.py): created unless it
exists, the local clock checked against AWS's (slot expiry compares each replica's own clock), and the fleet's digest
of runbooks and settings, which a replica that differs is refused by."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import structlog

from responder.engine.fleetitems import DIGEST
from responder.engine.fleetreplies import FleetReplies
from responder.errors import ActuationError, ConfigError

log = structlog.get_logger(__name__)

MAX_SKEW_S = 5.0  # seconds between the local clock and AWS's before `fleet_clock_skew` (the Date header: whole seconds)


class FleetTable(FleetReplies):
    """The guard table `table` (partition key `pk`, a string): its creation, the clock check and the fleet's digest."""

    clock: Callable[[], float]  # the local wall clock, compared with AWS's

    async def ensure_table(self) -> None:
        """Create the table (on-demand) unless it exists, and have DynamoDB delete items by their `REPLY_TTL`."""
        try:
            got = await self.aws.call("dynamodb", "describe_table", TableName=self.table)
        except ActuationError:
            try:
                got = await self.aws.call("dynamodb", "create_table", TableName=self.table,
                                          BillingMode="PAY_PER_REQUEST",
                                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
            except ActuationError as exc:  # another replica created it meanwhile
                if getattr(exc, "code", "") != "ResourceInUseException":
                    raise
                got = {}
        self.check_clock(got)
        await self.ensure_ttl()

    def check_clock(self, response: Mapping[str, Any]) -> float | None:
        """The local clock minus AWS's (a response's `Date` header; None without one), logged as `fleet_clock_skew`
        when it exceeds MAX_SKEW_S: slot expiry compares slot times with each replica's own clock."""
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        try:
            theirs = parsedate_to_datetime(date).timestamp() if isinstance(date, str) else None
        except (TypeError, ValueError):
            theirs = None
        if theirs is None:
            return None
        skew = self.clock() - theirs
        if abs(skew) > MAX_SKEW_S:
            log.warning("fleet_clock_skew", skew_s=round(skew, 1), limit_s=MAX_SKEW_S,
                        detail="fleet-wide quota slots expire by each replica's clock: sync every replica with NTP")
        return skew

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
