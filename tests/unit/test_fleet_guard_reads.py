"""The fleet's kill switch as a replica reads it: fails closed until it has been read once, keeps the last value
read while the table cannot be reached, and never holds the poll loop longer than one bounded read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.engine import fleetguard
from responder.engine.fleetguard import SWITCH_RETRY_S, FleetGuard
from responder.errors import ActuationError


class _Table:
    """A DynamoDB stand-in: `item` is the kill-switch item (None: never set); `down` makes every call fail, `hang`
    makes it never answer; `calls` counts them."""

    def __init__(self) -> None:
        self.item: dict[str, Any] | None = None
        self.down = self.hang = False
        self.calls = 0
        self.answer = asyncio.Event()  # what a hung call waits for

    async def call(self, service: str, op: str, **kw: Any) -> dict[str, Any]:
        self.calls += 1
        if self.hang:
            await self.answer.wait()
        if self.down:
            raise ActuationError("dynamodb unreachable")
        return {"Item": self.item} if self.item is not None else {}


class _Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _guard(table: _Table) -> tuple[FleetGuard, _Clock]:
    guard, clock = FleetGuard(table, "guards", []), _Clock()
    guard.monotonic = clock
    return guard, clock


async def test_the_switch_counts_as_on_until_it_has_been_read():
    """A replica counts the switch as on until it is read, acting on nothing unattended; the first read sets it."""
    table = _Table()
    guard, clock = _guard(table)
    assert guard.killed
    table.down = True
    assert await guard.refresh() is True
    table.down = False
    clock.now += SWITCH_RETRY_S
    assert await guard.refresh() is False


async def test_a_failed_read_keeps_the_last_value_read():
    """Once read, the switch keeps its last value through a failed read, on or off."""
    table = _Table()
    guard, clock = _guard(table)
    table.item = {"on": {"BOOL": True}, "by": {"S": "alice"}}
    assert await guard.refresh() is True
    table.down = True
    assert await guard.refresh() is True
    table.down, table.item = False, {"on": {"BOOL": False}}
    clock.now += SWITCH_RETRY_S
    assert await guard.refresh() is False
    table.down = True
    assert await guard.refresh() is False


async def test_a_switch_edited_by_hand_with_another_type_counts_as_on():
    """An `on` edited by hand as a string or number counts as on; only a boolean false or no item is off."""
    table = _Table()
    guard = FleetGuard(table, "guards", [])
    for on in ({"S": "true"}, {"N": "1"}, {"S": "false"}, {"NULL": True}):
        table.item = {"on": on}
        assert await guard.refresh() is True, on
    table.item = {"on": {"BOOL": False}}
    assert await guard.refresh() is False
    table.item = None
    assert await guard.refresh() is False


async def test_a_table_that_does_not_answer_holds_a_poll_one_bounded_read_only(monkeypatch: pytest.MonkeyPatch):
    """A switch read the table never answers fails at SWITCH_READ_S, keeping the last value, not holding the poll."""
    monkeypatch.setattr(fleetguard, "SWITCH_READ_S", 0.05)
    table = _Table()
    guard, clock = _guard(table)
    table.item = {"on": {"BOOL": False}}
    assert await guard.refresh() is False
    table.hang = True
    with capture_logs() as logs:
        assert await asyncio.wait_for(guard.refresh(), 2.0) is False
    [unreadable] = [e for e in logs if e["event"] == "fleet_guard_unreadable"]
    assert unreadable["error"] == "no answer within 0.05 s"
    clock.now += SWITCH_RETRY_S
    assert await guard.refresh() is False
    assert table.calls == 2  # no second read beside the hung one (each holds one of the actuators' threads)
    table.item = {"on": {"BOOL": True}}
    table.answer.set()  # the hung read ends at last (its late answer is dropped)
    for _ in range(3):
        await asyncio.sleep(0)
    assert await guard.refresh() is True
    assert table.calls == 3


async def test_after_a_failed_read_the_polls_keep_the_last_value_without_reading_for_a_while():
    """After a failed read, polls within SWITCH_RETRY_S keep the last value unread; the next one reads again."""
    table = _Table()
    guard, clock = _guard(table)
    table.item = {"on": {"BOOL": True}}
    assert await guard.refresh() is True
    table.down = True
    assert await guard.refresh() is True
    assert table.calls == 2
    table.down, table.item = False, {"on": {"BOOL": False}}
    clock.now += SWITCH_RETRY_S - 0.1
    assert await guard.refresh() is True
    assert table.calls == 2
    clock.now += 0.1
    assert await guard.refresh() is False
    assert table.calls == 3


def test_a_read_left_in_an_event_loop_that_was_left_does_not_stop_the_reads(monkeypatch: pytest.MonkeyPatch):
    """A read left pending in an event loop no longer running does not stop the next loop from reading the switch."""
    monkeypatch.setattr(fleetguard, "SWITCH_READ_S", 0.05)
    table = _Table()
    guard, clock = _guard(table)
    table.hang = True
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(guard.refresh()) is True  # timed out: its read goes on in `first`
        stale = guard._reading
        assert stale is not None
        table.hang = False
        clock.now += SWITCH_RETRY_S
        assert asyncio.run(guard.refresh()) is False  # another loop: the switch is read
        assert table.calls == 2
        table.answer.set()
        first.run_until_complete(stale)  # the stale read ends in its own loop, and changes nothing
        assert guard._reading is None
    finally:
        first.close()
