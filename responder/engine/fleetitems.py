"""The items of the fleet's guard table (responder/engine/fleetguard.py): the kill switch, the runbook digest, the
global quotas' slots and the operator replies, by key; `responder fleet status` (responder/engine/fleetstatus.py)
reads the same items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from responder.models.runbook import Quota

KILL_SWITCH = "kill-switch"
DIGEST = "fleet-digest"
OPERATOR = "operator#"  # + request id: the reply of a completed operator request, seen by every replica
REPLY_TTL = "expires"
"""The table's TTL attribute (epoch seconds, a number): on an operator reply item, when DynamoDB may delete it."""
REPLY_TTL_MARGIN_S = 86_400.0
"""Seconds a reply item is kept past the time its request is refused anyway (`held_until`): a day, so a replica
whose clock runs behind AWS's by less than that still finds a request it sees valid answered, never run twice."""


def slot_key(q: Quota, slot: int) -> str:
    """The item key of slot `slot` of global quota `q`."""
    return f"quota#{q.actuator}#{q.window:g}#{slot}"


def switch_item(on: bool, by: str, reason: str, at: str) -> dict[str, Any]:
    """The kill-switch item every replica reads: on or off, who, why and when."""
    return {"pk": {"S": KILL_SWITCH}, "on": {"BOOL": on}, "by": {"S": by}, "reason": {"S": reason}, "at": {"S": at}}


def switch_on(item: Mapping[str, Any]) -> bool:
    """Whether the kill-switch item says on: off only when never set or a boolean false; an `on` of another type (an
    item edited by hand, `"true"` or `1`) counts as on, failing closed."""
    on = item.get("on")
    return on is not None and (not isinstance(on, Mapping) or on.get("BOOL") is not False)


@dataclass(frozen=True)
class Slot:
    """A slot a step key took: its item key and the take's time (as written), and whether the key held it already."""

    pk: str
    at: str
    fresh: bool
