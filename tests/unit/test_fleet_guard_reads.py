"""The fleet's kill switch as a replica reads it: fails closed until it has been read once, keeps the last value
read while the table cannot be reached."""

from __future__ import annotations

from typing import Any

from responder.engine.fleetguard import FleetGuard
from responder.errors import ActuationError


class _Table:
    """A DynamoDB stand-in: `item` is the kill-switch item (None: never set); `down` makes every call fail."""

    def __init__(self) -> None:
        self.item: dict[str, Any] | None = None
        self.down = False

    async def call(self, service: str, op: str, **kw: Any) -> dict[str, Any]:
        if self.down:
            raise ActuationError("dynamodb unreachable")
        return {"Item": self.item} if self.item is not None else {}


async def test_the_switch_counts_as_on_until_it_has_been_read():
    """A replica that never managed to read the switch (a rejoin while the table is unreachable) acts on nothing
    unattended; the first read sets the real value."""
    table = _Table()
    guard = FleetGuard(table, "guards", [])
    assert guard.killed
    table.down = True
    assert await guard.refresh() is True
    table.down = False
    assert await guard.refresh() is False


async def test_a_failed_read_keeps_the_last_value_read():
    """Once read, the switch keeps its last value through a failed read, on or off."""
    table = _Table()
    guard = FleetGuard(table, "guards", [])
    table.item = {"on": {"BOOL": True}, "by": {"S": "alice"}}
    assert await guard.refresh() is True
    table.down = True
    assert await guard.refresh() is True
    table.down, table.item = False, {"on": {"BOOL": False}}
    assert await guard.refresh() is False
    table.down = True
    assert await guard.refresh() is False


async def test_a_switch_edited_by_hand_with_another_type_counts_as_on():
    """An `on` written by hand as a string or a number (`"true"`, `1`, even `"false"`) is not a boolean false: the
    replica holds unattended steps (fails closed) rather than reading it as off; a boolean false and no item are off."""
    table = _Table()
    guard = FleetGuard(table, "guards", [])
    for on in ({"S": "true"}, {"N": "1"}, {"S": "false"}, {"NULL": True}):
        table.item = {"on": on}
        assert await guard.refresh() is True, on
    table.item = {"on": {"BOOL": False}}
    assert await guard.refresh() is False
    table.item = None
    assert await guard.refresh() is False
