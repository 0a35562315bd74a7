"""What the fleet's guard table says now: the kill switch (who set it, why, when), the fleet's runbook digest,
and the slots of every global quota taken within its window. `responder fleet status` prints it, and
`responder fleet kill-switch` changes the switch with it; the items are the ones `FleetGuard`
(responder/engine/fleetguard.py) reads and writes.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from responder.engine.fleetguard import FleetGuard
from responder.engine.fleetitems import DIGEST, KILL_SWITCH, slot_key, switch_item, switch_on
from responder.errors import ActuationError, ConfigError, TransientActuationError

log = structlog.get_logger(__name__)

BATCH_KEYS = 100  # BatchGetItem's limit on keys per request
BATCH_RETRIES = 5  # further requests for the keys DynamoDB left unprocessed (throttling, 16 MB), then an error
BATCH_BACKOFF_S = 0.05  # before the first retry; doubled before each next one (0.05 + 0.1 + … ≈ 1.5 s in all)
SWITCH_FIELDS = ("on", "by", "reason", "at")  # the kill-switch item's attributes (fleetitems.switch_item)


class KillSwitch(BaseModel):
    """The kill switch item: on or off, and who turned it so, why and when (empty when never set)."""

    model_config = ConfigDict(frozen=True)
    on: bool = False
    by: str = ""
    reason: str = ""
    at: str = ""


class SwitchChange(BaseModel):
    """What `kill-switch on|off` did. `written`: the switch is now `now`; `unchanged`: it was already off, nothing
    was written; `conflict`: another operator changed it between the read and the write, nothing was written, and
    `now` is what it is after their change. `before` is the switch as read."""

    model_config = ConfigDict(frozen=True)
    outcome: Literal["written", "unchanged", "conflict"]
    before: KillSwitch
    now: KillSwitch


class SlotUse(BaseModel):
    """A quota slot taken within its window: the step key that took it, and how long ago."""

    model_config = ConfigDict(frozen=True)
    slot: int
    key: str
    age_s: float


class QuotaUse(BaseModel):
    """A global quota and its slots taken within the window."""

    model_config = ConfigDict(frozen=True)
    actuator: str
    window_s: float
    max: int
    taken: list[SlotUse]


class FleetStatus(BaseModel):
    """The guard table's state."""

    model_config = ConfigDict(frozen=True)
    table: str
    kill_switch: KillSwitch
    digest: str | None
    digest_set_by: str | None
    quotas: list[QuotaUse]


async def table_exists(guard: FleetGuard) -> bool:
    """Whether the guard table exists (a fleet created it); other failures (credentials, network) raise."""
    try:
        await guard.aws.call("dynamodb", "describe_table", TableName=guard.table)
    except ActuationError as exc:
        if getattr(exc, "code", "") == "ResourceNotFoundException":
            return False
        raise
    return True


async def require_table(guard: FleetGuard) -> None:
    """ConfigError unless the table exists: a mistyped name must not look like a fleet that was stopped."""
    if not await table_exists(guard):
        raise ConfigError(f"RESPONDER_FLEET_GUARD_TABLE: table {guard.table!r} does not exist, so no fleet uses it "
                          "(its replicas create it at start); check the name and the AWS region")


async def _item(guard: FleetGuard, pk: str) -> dict[str, Any]:
    got = await guard.aws.call("dynamodb", "get_item", TableName=guard.table, ConsistentRead=True,
                               Key={"pk": {"S": pk}})
    item = got.get("Item", {})
    return item if isinstance(item, dict) else {}


async def _items(guard: FleetGuard, pks: list[str]) -> dict[str, dict[str, Any]]:
    """The items with keys `pks` (absent ones left out), read consistently by BatchGetItem, at most 100 keys a
    request; keys DynamoDB leaves unprocessed are asked again, BATCH_RETRIES times at most, then an error."""
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(pks))  # a batch must not name a key twice
    for start in range(0, len(unique), BATCH_KEYS):
        keys: list[dict[str, Any]] = [{"pk": {"S": pk}} for pk in unique[start:start + BATCH_KEYS]]
        for attempt in range(BATCH_RETRIES + 1):
            if attempt:
                log.info("fleet_status_unprocessed_keys", table=guard.table, keys=len(keys), attempt=attempt)
                await asyncio.sleep(BATCH_BACKOFF_S * 2 ** (attempt - 1))
            got = await guard.aws.call("dynamodb", "batch_get_item",
                                       RequestItems={guard.table: {"Keys": keys, "ConsistentRead": True}})
            for item in got.get("Responses", {}).get(guard.table, []):
                found[_text(item, "pk")] = item
            keys = got.get("UnprocessedKeys", {}).get(guard.table, {}).get("Keys", [])
            if not keys:
                break
        else:
            raise TransientActuationError(f"BatchGetItem left {len(keys)} key(s) unprocessed after "
                                          f"{BATCH_RETRIES} retries (throttled?); try again", code="UnprocessedKeys")
    return found


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name, {}).get("S", "")
    return value if isinstance(value, str) else ""


def _switch(item: dict[str, Any]) -> KillSwitch:
    return KillSwitch(on=switch_on(item), by=_text(item, "by"), reason=_text(item, "reason"),
                      at=_text(item, "at"))


async def read_switch(guard: FleetGuard) -> tuple[KillSwitch, dict[str, Any]]:
    """The kill switch, read consistently, and its item as stored ({} when it was never set)."""
    item = await _item(guard, KILL_SWITCH)
    return _switch(item), item


def _unchanged(seen: dict[str, Any]) -> dict[str, Any]:
    """PutItem's condition (with its names and values) that holds only while the kill-switch item is still `seen`
    ({}: still absent). Every attribute is compared, not `at` alone: `at` counts whole seconds."""
    if not seen:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    terms, names, values = ["attribute_exists(pk)"], {}, {}
    for i, field in enumerate(SWITCH_FIELDS):
        names[f"#f{i}"] = field
        if field in seen:
            terms.append(f"#f{i} = :v{i}")
            values[f":v{i}"] = seen[field]
        else:
            terms.append(f"attribute_not_exists(#f{i})")
    condition = {"ConditionExpression": " AND ".join(terms), "ExpressionAttributeNames": names}
    return condition | ({"ExpressionAttributeValues": values} if values else {})


async def put_switch(guard: FleetGuard, switch: KillSwitch, seen: dict[str, Any]) -> bool:
    """Write the kill switch (`switch_item`, which every replica reads) only if its item is still `seen`, as read
    before; False, and nothing written, when it changed meanwhile."""
    item = switch_item(switch.on, switch.by, switch.reason, switch.at)
    try:
        await guard.aws.call("dynamodb", "put_item", TableName=guard.table, Item=item, **_unchanged(seen))
    except ActuationError as exc:
        if getattr(exc, "code", "") == "ConditionalCheckFailedException":
            return False
        raise
    return True


async def set_switch(guard: FleetGuard, switch: KillSwitch) -> SwitchChange:
    """Turn the kill switch to `switch` unless another operator changes it between this read and the write
    (optimistic concurrency: a conditional PutItem). Turning off a switch that is off writes nothing."""
    before, seen = await read_switch(guard)
    if not switch.on and not before.on:
        return SwitchChange(outcome="unchanged", before=before, now=before)
    if await put_switch(guard, switch, seen):
        return SwitchChange(outcome="written", before=before, now=switch)
    return SwitchChange(outcome="conflict", before=before, now=_switch(await _item(guard, KILL_SWITCH)))


async def read_status(guard: FleetGuard, now: float) -> FleetStatus:
    """The table's kill switch, digest and quota slots taken within their windows at `now` (epoch seconds)."""
    slots = [(q, [slot_key(q, slot) for slot in range(q.max)]) for q in guard.quotas]
    items = await _items(guard, [KILL_SWITCH, DIGEST, *(pk for _, pks in slots for pk in pks)])
    switch, digest = items.get(KILL_SWITCH, {}), items.get(DIGEST, {})
    quotas = []
    for q, pks in slots:
        taken = []
        for slot, pk in enumerate(pks):
            item = items.get(pk, {})
            at = float(item.get("at", {}).get("N", "nan"))
            if now - at < q.window:  # NaN (never taken) compares false
                taken.append(SlotUse(slot=slot, key=_text(item, "key"), age_s=round(max(0.0, now - at), 1)))
        quotas.append(QuotaUse(actuator=q.actuator, window_s=q.window, max=q.max, taken=taken))
    return FleetStatus(table=guard.table, kill_switch=_switch(switch), digest=_text(digest, "digest") or None,
                       digest_set_by=_text(digest, "writer") or None, quotas=quotas)
