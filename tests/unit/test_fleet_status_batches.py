"""`fleet status` reads the guard table with BatchGetItem: at most 100 keys a request, consistent reads, and the keys
DynamoDB leaves unprocessed asked again a bounded number of times."""

from __future__ import annotations

from typing import Any

import pytest

from responder.engine import fleetstatus
from responder.engine.fleetguard import FleetGuard
from responder.engine.fleetitems import KILL_SWITCH, slot_key
from responder.engine.fleetstatus import BATCH_RETRIES, read_status
from responder.errors import ActuationError, TransientActuationError
from responder.models.runbook import Quota

NOW = 1_000_000.0
QUOTA = Quota(actuator="aws.iam.*", max=120, window=900)


class _Table:
    """A DynamoDB stand-in answering BatchGetItem only (a GetItem fails the test). `stingy` is how many requests in a
    row leave their second half of keys unprocessed (as DynamoDB does when throttled); `requests` records the keys."""

    def __init__(self, items: dict[str, dict[str, Any]], stingy: int = 0) -> None:
        self.items, self.stingy = items, stingy
        self.requests: list[list[str]] = []

    async def call(self, service: str, op: str, **kw: Any) -> dict[str, Any]:
        if op != "batch_get_item":
            raise ActuationError(f"unexpected {op}")
        ((table, ask),) = kw["RequestItems"].items()
        assert ask["ConsistentRead"] is True
        keys = [k["pk"]["S"] for k in ask["Keys"]]
        assert len(keys) <= 100
        assert len(set(keys)) == len(keys)
        self.requests.append(keys)
        served, left = (keys[:len(keys) // 2], keys[len(keys) // 2:]) if self.stingy else (keys, [])
        self.stingy = max(0, self.stingy - 1)
        return {"Responses": {table: [self.items[k] for k in served if k in self.items]},
                "UnprocessedKeys": {table: {"Keys": [{"pk": {"S": k}} for k in left]}} if left else {}}


def _slots(*taken: int) -> dict[str, dict[str, Any]]:
    """The items of the slots `taken` (a minute ago) and of a kill switch alice turned on."""
    items = {slot_key(QUOTA, s): {"pk": {"S": slot_key(QUOTA, s)}, "at": {"N": repr(NOW - 60)},
                                  "key": {"S": f"inc-{s}/revoke"}} for s in taken}
    items[KILL_SWITCH] = {"pk": {"S": KILL_SWITCH}, "on": {"BOOL": True}, "by": {"S": "alice"}}
    return items


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pause between the retries."""
    monkeypatch.setattr(fleetstatus, "BATCH_BACKOFF_S", 0.0)


async def test_unprocessed_keys_are_asked_again_until_every_slot_is_read():
    """Keys left unprocessed twice are asked again: every slot taken shows, and no request holds over 100 keys."""
    table = _Table(_slots(0, 60, 99, 119), stingy=2)
    status = await read_status(FleetGuard(table, "guards", [QUOTA]), NOW)
    assert [(s.slot, s.key) for s in status.quotas[0].taken] == [(s, f"inc-{s}/revoke") for s in (0, 60, 99, 119)]
    assert status.kill_switch.on
    assert status.kill_switch.by == "alice"
    assert [len(keys) for keys in table.requests] == [100, 50, 25, 22]  # 122 keys: 100 (half unprocessed twice), 22
    assert sorted(k for keys in table.requests for k in keys) == sorted(
        [KILL_SWITCH, "fleet-digest", *(slot_key(QUOTA, s) for s in range(120))]
        + [k for keys in table.requests[1:3] for k in keys])


async def test_keys_still_unprocessed_after_the_retries_raise_a_clear_error():
    """A table that keeps leaving keys unprocessed: after BATCH_RETRIES more requests, an ActuationError saying so."""
    table = _Table(_slots(0), stingy=1000)
    with pytest.raises(TransientActuationError, match=r"unprocessed after 5 retries") as caught:
        await read_status(FleetGuard(table, "guards", [QUOTA]), NOW)
    assert caught.value.code == "UnprocessedKeys"
    assert len(table.requests) == BATCH_RETRIES + 1
