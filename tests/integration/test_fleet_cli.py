"""`responder fleet status|kill-switch` against the moto server: the operator's brake reaches what every replica
reads, says who pulled it and why, and refuses a table no fleet uses."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from responder.actuators.aws.session import AwsSession
from responder.cli import app
from responder.cli import fleet as cli_fleet
from responder.engine import fleetstatus
from responder.engine.fleetguard import FleetGuard
from responder.engine.fleetitems import KILL_SWITCH, slot_key
from responder.engine.fleetstatus import KillSwitch, put_switch
from responder.errors import ActuationError
from responder.models.runbook import Quota
from responder.sandbox import SANDBOX_CREDENTIALS

QUOTA = Quota(actuator="aws.iam.*", max=3, window=900)


@pytest.fixture(name="fleet_env")
def _fleet_env(aws, unique, monkeypatch) -> FleetGuard:
    """The settings of an operator pointed at the moto server and the fleet's guard table (created, as a replica
    does at start), and a guard as a replica holds it."""
    table = f"guards-{unique}"
    for name, value in {"RESPONDER_AWS_ENDPOINT_URL": aws.endpoint_url or "",
                        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
                        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
                        "RESPONDER_FLEET_GUARD_TABLE": table,
                        "RESPONDER_GUARD_QUOTAS": '[{"actuator": "aws.iam.*", "max": 3, "window": 900}]'}.items():
        monkeypatch.setenv(name, value)
    guard = FleetGuard(aws, table, [QUOTA])
    asyncio.run(guard.ensure_table())
    return guard


def _cli(*args: str):
    return CliRunner().invoke(app, ["fleet", *args])


def _switch_item(guard: FleetGuard) -> dict[str, Any] | None:
    """The kill-switch item as stored, or None."""
    got = asyncio.run(guard.aws.call("dynamodb", "get_item", TableName=guard.table, ConsistentRead=True,
                                     Key={"pk": {"S": KILL_SWITCH}}))
    item = got.get("Item")
    return item if isinstance(item, dict) else None


BOBS = ("bob", "IR-43: still revoking keys", "2026-12-03T10:00:00+00:00")


def _bob_races(guard: FleetGuard, monkeypatch: pytest.MonkeyPatch, *, on: bool) -> None:
    """Bob sets the switch (`on`) between the command's read and its write, through the test's own client."""
    read = fleetstatus.read_switch

    async def read_then_bob_sets_it(table: FleetGuard) -> tuple[KillSwitch, dict[str, Any]]:
        seen = await read(table)
        await guard.set_kill_switch(on, *BOBS)
        return seen

    monkeypatch.setattr(fleetstatus, "read_switch", read_then_bob_sets_it)


def test_the_kill_switch_reaches_every_replica_and_says_who_and_why(fleet_env):
    """`kill-switch on` is what a replica's next refresh reads, with by, reason and time; `off` releases it."""
    assert asyncio.run(fleet_env.refresh()) is False
    on = _cli("kill-switch", "on", "--reason", "IR-42: runaway key revocations", "--by", "alice", "--json")
    assert on.exit_code == 0, on.output
    switch = orjson.loads(on.stdout)["kill_switch"]
    assert (switch["on"], switch["by"], switch["reason"]) == (True, "alice", "IR-42: runaway key revocations")
    assert switch["at"].startswith("20")
    assert asyncio.run(fleet_env.refresh()) is True  # a replica's next poll
    shown = _cli("status")
    assert shown.exit_code == 0, shown.output
    assert "ON" in shown.stdout
    assert "alice" in shown.stdout
    off = _cli("kill-switch", "off", "--reason", "IR-42 contained")
    assert off.exit_code == 0, off.output
    assert "off" in off.stdout
    assert asyncio.run(fleet_env.refresh()) is False


def test_status_shows_the_digest_and_the_quota_slots_in_use(fleet_env):
    """Two IAM actions taken fleet-wide show as 2 of 3 slots with their step keys; the digest and its setter show."""
    async def fleet_acts() -> None:
        await fleet_env.check_digest("d" * 64, "replica-1")
        for key in ("inc-1/revoke", "inc-2/revoke"):
            assert await fleet_env.acquire("aws.iam.deactivate_access_key", key, time.time()) is None

    asyncio.run(fleet_acts())
    got = _cli("status", "--json")
    assert got.exit_code == 0, got.output
    status = orjson.loads(got.stdout)
    assert (status["digest"], status["digest_set_by"]) == ("d" * 64, "replica-1")
    assert status["kill_switch"]["on"] is False
    (quota,) = status["quotas"]
    assert (quota["actuator"], quota["max"]) == ("aws.iam.*", 3)
    assert sorted(s["key"] for s in quota["taken"]) == ["inc-1/revoke", "inc-2/revoke"]
    text = _cli("status")
    assert "2 of 3 taken" in text.stdout


def test_off_says_who_had_set_the_switch_on_why_and_when(fleet_env):
    """`kill-switch off` prints what it cleared: who had turned the switch on, at what time and with what reason."""
    assert _cli("kill-switch", "on", "--reason", "IR-42: runaway key revocations", "--by", "alice").exit_code == 0
    at = (_switch_item(fleet_env) or {})["at"]["S"]
    off = _cli("kill-switch", "off", "--reason", "IR-42 contained", "--by", "carol")
    assert off.exit_code == 0, off.output
    text = " ".join(off.stdout.split())
    assert "kill switch off" in text
    assert f"cleared: ON (set by alice at {at}: IR-42: runaway key revocations)" in text


def test_off_when_already_off_is_a_success_that_writes_nothing(fleet_env):
    """`off` on a switch never set, or already turned off, exits 0 saying so and leaves the item as it was."""
    never = _cli("kill-switch", "off", "--reason", "drill", "--by", "carol")
    assert never.exit_code == 0, never.output
    assert "already off" in never.stdout
    assert "nothing written" in " ".join(never.stdout.split())
    assert _switch_item(fleet_env) is None  # not even an "off" item
    asyncio.run(fleet_env.set_kill_switch(False, *BOBS))
    before = _switch_item(fleet_env)
    again = _cli("kill-switch", "off", "--reason", "drill", "--by", "carol")
    assert again.exit_code == 0, again.output
    assert "already off" in again.stdout
    assert "bob" in again.stdout
    assert _switch_item(fleet_env) == before


def test_a_switch_changed_between_read_and_write_is_not_overwritten(fleet_env, monkeypatch):
    """A switch another operator changed between `off`'s read and write: exit 3, one line naming it, not overwritten."""
    asyncio.run(fleet_env.set_kill_switch(True, "alice", "IR-42", "2026-12-03T09:00:00+00:00"))
    _bob_races(fleet_env, monkeypatch, on=True)
    got = _cli("kill-switch", "off", "--reason", "IR-42 contained", "--by", "carol")
    assert got.exit_code == 3, got.output
    (line,) = got.stderr.strip().splitlines()
    assert "changed after it was read" in line
    assert f"now ON (set by {BOBS[0]} at {BOBS[2]}: {BOBS[1]})" in line
    assert "nothing written" in line
    assert "run the command again" in line
    assert (_switch_item(fleet_env) or {})["by"] == {"S": "bob"}
    assert asyncio.run(fleet_env.refresh()) is True


def test_a_concurrent_change_to_the_wanted_state_is_a_success(fleet_env, monkeypatch):
    """`on` while another operator turns the switch on between the read and the write: exit 0, theirs kept."""
    _bob_races(fleet_env, monkeypatch, on=True)
    got = _cli("kill-switch", "on", "--reason", "IR-44", "--by", "carol")
    assert got.exit_code == 0, got.output
    assert "already ON" in got.stdout
    assert "bob" in got.stdout
    assert (_switch_item(fleet_env) or {})["by"] == {"S": "bob"}


def test_off_while_another_turns_it_off_is_a_success_with_the_outcome_in_json(fleet_env, monkeypatch):
    """`off --json` while another operator turns the switch off meanwhile: exit 0, outcome "conflict", theirs kept."""
    asyncio.run(fleet_env.set_kill_switch(True, "alice", "IR-42", "2026-12-03T09:00:00+00:00"))
    _bob_races(fleet_env, monkeypatch, on=False)
    got = _cli("kill-switch", "off", "--reason", "IR-42 contained", "--by", "carol", "--json")
    assert got.exit_code == 0, got.output
    shown = orjson.loads(got.stdout)
    assert (shown["outcome"], shown["read_back_error"]) == ("conflict", None)
    assert shown["kill_switch"]["by"] == "bob"


def test_a_read_back_refused_after_the_write_is_not_a_failure(fleet_env, monkeypatch):
    """The switch written but the status read back refused (no BatchGetItem right): exit 0, the switch is on."""
    async def refused(guard: FleetGuard, now: float) -> None:
        raise ActuationError("AccessDeniedException: not authorized to perform dynamodb:BatchGetItem")

    monkeypatch.setattr(cli_fleet, "read_status", refused)
    got = _cli("kill-switch", "on", "--reason", "IR-45", "--by", "carol")
    assert got.exit_code == 0, got.output
    assert "could not be read back" in got.stderr
    assert "ON" in got.stdout
    assert asyncio.run(fleet_env.refresh()) is True


def test_a_write_from_a_stale_reading_is_refused(fleet_env):
    """put_switch with the item as read before another write (or with "absent" once it exists) writes nothing."""
    never: dict[str, Any] = {}
    assert asyncio.run(put_switch(fleet_env, KillSwitch(on=True, by="alice", reason="r", at="t1"), never)) is True
    stale = _switch_item(fleet_env) or {}
    asyncio.run(fleet_env.set_kill_switch(True, *BOBS))
    bobs = _switch_item(fleet_env)
    for seen in (stale, never):
        assert asyncio.run(put_switch(fleet_env, KillSwitch(on=False, by="carol", reason="r", at="t2"), seen)) is False
        assert _switch_item(fleet_env) == bobs
    assert asyncio.run(put_switch(fleet_env, KillSwitch(on=False, by="carol", reason="r", at="t2"), bobs or {}))


def test_status_reads_every_slot_with_batches_of_at_most_100_keys(fleet_env, monkeypatch):
    """Quotas of 150 and 2 slots: the slots in their windows show, read by consistent BatchGetItems of ≤ 100 keys."""
    big, small = Quota(actuator="aws.iam.*", max=150, window=900), Quota(actuator="aws.ec2.*", max=2, window=60)
    monkeypatch.setenv("RESPONDER_GUARD_QUOTAS", orjson.dumps([q.model_dump() for q in (big, small)]).decode())
    now = time.time()
    taken = {(big, 0): now - 10, (big, 99): now - 20, (big, 100): now - 30, (big, 149): now - 40,
             (big, 50): now - 1000, (small, 1): now - 5, (small, 0): now - 61}  # the last two of each: expired

    async def fleet_acts() -> None:
        for (q, slot), at in taken.items():
            await fleet_env.aws.call("dynamodb", "put_item", TableName=fleet_env.table,
                                     Item={"pk": {"S": slot_key(q, slot)}, "at": {"N": repr(at)},
                                           "key": {"S": f"inc-{q.max}-{slot}/act"}})

    asyncio.run(fleet_acts())
    calls: list[tuple[str, dict[str, Any]]] = []
    real = AwsSession.call

    async def spy(self: AwsSession, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        calls.append((operation, kwargs))
        return await real(self, service, operation, **kwargs)

    monkeypatch.setattr(AwsSession, "call", spy)
    got = _cli("status", "--json")
    assert got.exit_code == 0, got.output
    quotas = orjson.loads(got.stdout)["quotas"]
    assert [(q["actuator"], q["max"], [(s["slot"], s["key"]) for s in q["taken"]]) for q in quotas] == [
        ("aws.iam.*", 150, [(slot, f"inc-150-{slot}/act") for slot in (0, 99, 100, 149)]),
        ("aws.ec2.*", 2, [(1, "inc-2-1/act")])]
    assert [op for op, _ in calls] == ["describe_table", "batch_get_item", "batch_get_item"]
    batches = [kw["RequestItems"][fleet_env.table] for op, kw in calls if op == "batch_get_item"]
    assert all(b["ConsistentRead"] is True and len(b["Keys"]) <= 100 for b in batches)
    assert sum(len(b["Keys"]) for b in batches) == 2 + 150 + 2  # the switch, the digest and every slot, once
    text = _cli("status")
    assert text.exit_code == 0, text.output
    assert "4 of 150 taken" in text.stdout
    assert "1 of 2 taken" in text.stdout
    assert "slot 149: inc-150-149/act (" in text.stdout
    assert "slot 50:" not in text.stdout


def test_a_table_no_fleet_uses_is_refused_and_not_created(fleet_env, monkeypatch, aws):
    """A mistyped table name exits 3 naming it, and the switch is not written anywhere (no table is created)."""
    monkeypatch.setenv("RESPONDER_FLEET_GUARD_TABLE", "guards-typo")
    got = _cli("kill-switch", "on", "--reason", "drill")
    assert got.exit_code == 3, got.output
    assert "guards-typo" in got.output
    assert "does not exist" in got.output
    tables = asyncio.run(aws.call("dynamodb", "list_tables"))["TableNames"]
    assert "guards-typo" not in tables


def test_bad_usage_is_refused_before_anything_is_written(fleet_env):
    """An unknown state exits 2 listing on and off; an empty reason exits 2; the switch stays as it was."""
    bad = _cli("kill-switch", "enable", "--reason", "x")
    assert bad.exit_code == 2
    assert "valid choices: on, off" in bad.output
    empty = _cli("kill-switch", "on", "--reason", "  ")
    assert empty.exit_code == 2
    assert asyncio.run(fleet_env.refresh()) is False


def test_no_table_configured_is_one_line_and_exit_3(monkeypatch):
    """Without RESPONDER_FLEET_GUARD_TABLE the commands say which setting to set, exit 3."""
    monkeypatch.delenv("RESPONDER_FLEET_GUARD_TABLE", raising=False)
    got = _cli("status")
    assert got.exit_code == 3
    assert "RESPONDER_FLEET_GUARD_TABLE" in got.output
