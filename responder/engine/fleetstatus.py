"""What the fleet's guard table says now: the kill switch (who set it, why, when), the fleet's runbook digest,
and the slots of every global quota taken within its window. `responder fleet status` prints it; the items are
the ones `FleetGuard` (responder/engine/fleetguard.py) reads and writes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from responder.engine.fleetguard import DIGEST, KILL_SWITCH, FleetGuard, slot_key
from responder.errors import ActuationError, ConfigError


class KillSwitch(BaseModel):
    """The kill switch item: on or off, and who turned it so, why and when (empty when never set)."""

    model_config = ConfigDict(frozen=True)
    on: bool = False
    by: str = ""
    reason: str = ""
    at: str = ""


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


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name, {}).get("S", "")
    return value if isinstance(value, str) else ""


async def read_status(guard: FleetGuard, now: float) -> FleetStatus:
    """The table's kill switch, digest and quota slots taken within their windows at `now` (epoch seconds)."""
    switch, digest = await _item(guard, KILL_SWITCH), await _item(guard, DIGEST)
    quotas = []
    for q in guard.quotas:
        taken = []
        for slot in range(q.max):
            item = await _item(guard, slot_key(q, slot))
            at = float(item.get("at", {}).get("N", "nan"))
            if now - at < q.window:  # NaN (never taken) compares false
                taken.append(SlotUse(slot=slot, key=_text(item, "key"), age_s=round(max(0.0, now - at), 1)))
        quotas.append(QuotaUse(actuator=q.actuator, window_s=q.window, max=q.max, taken=taken))
    return FleetStatus(
        table=guard.table,
        kill_switch=KillSwitch(on=switch.get("on", {}).get("BOOL") is True, by=_text(switch, "by"),
                               reason=_text(switch, "reason"), at=_text(switch, "at")),
        digest=_text(digest, "digest") or None, digest_set_by=_text(digest, "writer") or None, quotas=quotas)
