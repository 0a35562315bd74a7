"""Enabling the guard table's TTL at a replica's start: asked again while the table is being created, and a refusal
is logged, never a reason not to start."""

from __future__ import annotations

from typing import Any

from responder.engine.fleetguard import FleetGuard
from responder.engine.fleetitems import REPLY_TTL
from responder.errors import PermanentActuationError


class Table:
    """A DynamoDB table's TTL calls, with the errors to answer first (None: answered as asked)."""

    def __init__(self, *errors: str | None) -> None:
        self.errors, self.calls, self.status, self.attribute = list(errors), [], "DISABLED", REPLY_TTL

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(operation)
        if operation == "describe_time_to_live":
            return {"TimeToLiveDescription": {"TimeToLiveStatus": self.status}
                    | ({"AttributeName": self.attribute} if self.status != "DISABLED" else {})}
        if self.errors and (code := self.errors.pop(0)) is not None:
            raise PermanentActuationError(f"{operation}: {code}", code=code)
        assert kwargs["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": REPLY_TTL}
        self.status = "ENABLED"
        return {}


async def test_a_table_still_being_created_is_asked_again():
    """UpdateTimeToLive on a table still being created is refused as in use: asked again until it is active."""
    table = Table("ResourceInUseException", "ResourceInUseException")
    assert await FleetGuard(table, "guards", []).ensure_ttl(pause=0)
    assert table.calls.count("update_time_to_live") == 3


async def test_a_refused_ttl_is_logged_and_not_fatal(capsys):
    """A replica without `dynamodb:UpdateTimeToLive` starts anyway, saying the replies stay until the TTL is on."""
    table = Table("AccessDeniedException")
    assert not await FleetGuard(table, "guards", []).ensure_ttl(pause=0)
    assert "fleet_ttl_not_enabled" in capsys.readouterr().out


async def test_an_enabled_ttl_is_left_as_it_is():
    """A table whose TTL is on already is not written."""
    table = Table()
    table.status = "ENABLED"
    assert await FleetGuard(table, "guards", []).ensure_ttl()
    assert table.calls == ["describe_time_to_live"]


async def test_a_ttl_on_another_attribute_is_logged(capsys):
    """A guard table with its TTL on another attribute is logged and left unchanged, not fatal."""
    table = Table()
    table.status, table.attribute = "ENABLED", "ttl"
    assert not await FleetGuard(table, "guards", []).ensure_ttl()
    assert table.calls == ["describe_time_to_live"]
    out = capsys.readouterr().out
    assert "fleet_ttl_not_enabled" in out
    assert "on the attribute 'ttl'" in out
