"""`responder fleet status|kill-switch` against the moto server: the operator's brake reaches what every replica
reads, says who pulled it and why, and refuses a table no fleet uses."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.engine.fleetguard import FleetGuard
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
