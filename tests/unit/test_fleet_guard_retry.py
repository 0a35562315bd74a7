"""A retried step retakes the fleet-wide quota slot its step key holds, never a second one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from responder.engine.fleetguard import FleetGuard
from responder.engine.guards import Trip
from responder.errors import ActuationError
from responder.models.runbook import Quota
from responder.models.step import StepResult, StepStatus
from tests.kit import DEACTIVATE_STEPS, KEY, make_kit

T = 1_800_000_000.0
DEACTIVATE = "aws.iam.deactivate_access_key"


class _Slots:
    """A DynamoDB stand-in for slot items: the conditional put and delete FleetGuard writes, and a batch read."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    async def call(self, service: str, op: str, **kw: Any) -> dict[str, Any]:
        if op == "batch_get_item":
            [(table, ask)] = kw["RequestItems"].items()
            found = [self.items[k["pk"]["S"]] for k in ask["Keys"] if k["pk"]["S"] in self.items]
            return {"Responses": {table: found}}
        pk = (kw.get("Item") or kw["Key"])["pk"]["S"]
        old, values = self.items.get(pk), kw["ExpressionAttributeValues"]
        if op == "put_item":
            free = old is None or float(old["at"]["N"]) <= float(values[":expired"]["N"])
            if not free and old is not None and old["key"] != values[":key"]:
                raise ActuationError("taken", code="ConditionalCheckFailedException")
            self.items[pk] = kw["Item"]
            return {"Attributes": old or {}}
        if old is not None and old["key"] == values[":key"] and old["at"] == values[":at"]:  # delete_item
            del self.items[pk]
        return {}


def _failed(key: str, *, permanent: bool) -> StepResult:
    return StepResult(step="s", actuator=DEACTIVATE, target="t", key=key, status=StepStatus.FAILED, permanent=permanent)


async def test_a_retry_retakes_its_slot_when_an_earlier_one_is_free() -> None:
    """With slot 0 given back and slot 1 held by k1, k1's retry retakes slot 1 and k2 still finds slot 0 free."""
    table = _Slots()
    guard = FleetGuard(table, "guards", [Quota(actuator="aws.iam.*", max=2, window=3600)])  # type: ignore[arg-type]
    assert await guard.acquire(DEACTIVATE, "k0", T) is None
    assert await guard.acquire(DEACTIVATE, "k1", T + 1) is None
    await guard.settle("k0", _failed("k0", permanent=True))
    await guard.settle("k1", _failed("k1", permanent=False))
    assert await guard.acquire(DEACTIVATE, "k1", T + 60, again=True) is None
    assert [i["key"]["S"] for i in table.items.values()] == ["k1"]
    assert await guard.acquire(DEACTIVATE, "k2", T + 61) is None


class _NoBatchRead(_Slots):
    """A table whose policy grants the conditional writes but not `dynamodb:BatchGetItem`."""

    async def call(self, service: str, op: str, **kw: Any) -> dict[str, Any]:
        if op == "batch_get_item":
            raise ActuationError("AccessDeniedException: not authorized to perform dynamodb:BatchGetItem",
                                 code="AccessDeniedException")
        return await super().call(service, op, **kw)


async def test_a_retry_without_the_batch_read_right_still_takes_a_slot() -> None:
    """A replica refused the slot lookup retakes a slot by the scan and does not park the retried step."""
    table = _NoBatchRead()
    guard = FleetGuard(table, "guards", [Quota(actuator="aws.iam.*", max=2, window=3600)])  # type: ignore[arg-type]
    assert await guard.acquire(DEACTIVATE, "k1", T) is None
    await guard.settle("k1", _failed("k1", permanent=False))
    assert await guard.acquire(DEACTIVATE, "k1", T + 60, again=True) is None
    assert [i["key"]["S"] for i in table.items.values()] == ["k1"]


class _Recording(FleetGuard):
    """Grants every slot and records whether the engine said the step key ran before."""

    def __init__(self) -> None:
        super().__init__(None, "t", [])  # type: ignore[arg-type]
        self.killed = False
        self.asked: list[bool] = []

    async def acquire(self, actuator: str, key: str, now: float, *, again: bool = False) -> Trip | None:
        self.asked.append(again)
        return None


async def test_the_engine_says_when_a_step_key_runs_again(tmp_path: Path) -> None:
    """A step's first run asks for a slot as new; its rerun after a failure asks as a step key that ran."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS})
    kit.engine.fleet_guard = guard = _Recording()
    seeded = kit.iam.keys.pop(KEY)  # the call fails (not final: a later event runs the step again)
    await kit.send()
    kit.iam.keys[KEY] = seeded
    await kit.send(finding_id="f2")
    assert guard.asked == [False, True]
