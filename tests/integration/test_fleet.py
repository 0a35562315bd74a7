"""A fleet of `responder run` replicas in one consumer group, state following its partition (real broker, moto)."""

from __future__ import annotations

import asyncio
import signal
import time

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.engine.fleetguard import FleetGuard
from responder.timeline.chain import parse_lines
from responder.timeline.verify import verify_lines
from tests.integration.fleet import effects, kinds, make_keys, start_fleet, stream

runner = CliRunner()


async def _fleet_run(kafka_bootstrap, aws, unique, tmp_path, events: int, incidents: int) -> None:
    fleet, topic, bucket = await start_fleet(kafka_bootstrap, aws, unique, tmp_path)
    keys = make_keys(incidents)
    try:
        first = [fleet.spawn() for _ in range(3)]
        for n in first:
            await fleet.serving(n)
        half = events // 2
        await stream(kafka_bootstrap, topic, keys, half)
        await asyncio.sleep(1.0)
        fleet.kill(first[0])  # SIGKILL mid-stream
        added = fleet.spawn()  # scale out
        await fleet.serving(added)
        await stream(kafka_bootstrap, topic, keys, events - half)
        for n in list(fleet.procs):  # rolling restart: SIGTERM one, start its replacement, next
            assert fleet.kill(n, signal.SIGTERM) == 0, fleet.logs()
            await fleet.serving(fleet.spawn())
        await stream(kafka_bootstrap, topic, keys[: incidents // 10], incidents // 10)  # redeliveries after moves
        deadline = time.monotonic() + 120
        while fleet.done() < set(keys):
            assert time.monotonic() < deadline, f"missing {len(set(keys) - fleet.done())}:\n{fleet.logs()}"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # let the redelivered tail drain before counting
    finally:
        fleet.stop_all()
    counted = await effects(aws, bucket)
    assert set(counted) == set(keys)
    twice = {k: c for k, c in counted.items() if c > 1}
    assert not twice, f"step keys acted more than once: {twice}"
    for path in fleet.timelines():
        lines = path.read_bytes().splitlines()
        assert verify_lines(lines).entries == len(lines), path  # raises on a broken chain
    opened = [e for p in fleet.timelines() for e in parse_lines(p.read_bytes().splitlines())
              if e.kind == "incident.opened"]
    assert len({e.incident for e in opened}) == incidents, "an incident was opened twice (state lost in a move)"
    _merged_view_shows_every_writer(tmp_path, fleet.timelines())


def _merged_view_shows_every_writer(directory, paths) -> None:
    """`timeline verify DIR` checks every writer; `show DIR --incident X` has every writer's entries for X."""
    assert runner.invoke(app, ["timeline", "verify", str(directory)]).exit_code == 0
    writers: dict[str, set[tuple[str, int]]] = {}
    for path in paths:
        for e in parse_lines(path.read_bytes().splitlines()):
            if e.incident:
                writers.setdefault(e.incident, set()).add((e.writer, e.seq))
    moved = max(writers, key=lambda i: len({w for w, _ in writers[i]}))
    assert len({w for w, _ in writers[moved]}) > 1, "no incident moved between replicas"
    out = runner.invoke(app, ["timeline", "show", str(directory), "--incident", moved, "--json"])
    shown = {(d["writer"], d["seq"]) for d in orjson.loads(out.stdout)["entries"]}
    assert writers[moved] <= shown


@pytest.mark.timeout(300)
async def test_fleet_sigkill_scale_out_rolling_restart_acts_once(kafka_bootstrap, aws, unique, tmp_path):
    """3 replicas, 1,000 events over 100 incidents with redeliveries; SIGKILL, add, rolling restart: each acts once."""
    await _fleet_run(kafka_bootstrap, aws, unique, tmp_path, events=1_000, incidents=100)


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_soak_fleet_10k_events_1k_incidents(kafka_bootstrap, aws, unique, tmp_path):
    """The issue's form: 10,000 events over 1,000 incidents through the same moves, each step acting once."""
    await _fleet_run(kafka_bootstrap, aws, unique, tmp_path, events=10_000, incidents=1_000)


async def _settled(fleet, incidents: int) -> None:
    """Wait until every incident has either acted or parked."""
    deadline = time.monotonic() + 90
    while len(fleet.done()) + len(kinds(fleet, "approval.requested")) < incidents:
        assert time.monotonic() < deadline, fleet.logs()
        await asyncio.sleep(0.5)


@pytest.mark.timeout(300)
async def test_fleet_wide_quota_and_kill_switch_hold_across_replicas(kafka_bootstrap, aws, unique, tmp_path):
    """A global quota of 5 per 15 minutes allows 5 actions over 3 replicas; the kill switch stops all of them."""
    fleet, topic, bucket = await start_fleet(kafka_bootstrap, aws, unique, tmp_path)
    table = f"guards-{unique}"
    fleet.env |= {"RESPONDER_FLEET_GUARD_TABLE": table,
                  "RESPONDER_GUARD_QUOTAS": '[{"actuator": "test.s3.*", "max": 5, "window": 900}]'}
    guard = FleetGuard(aws, table, [])
    await guard.ensure_table()
    try:
        for n in [fleet.spawn() for _ in range(3)]:
            await fleet.serving(n)
        await stream(kafka_bootstrap, topic, make_keys(30), 30, redeliver=0)
        await _settled(fleet, 30)
        assert sum((await effects(aws, bucket)).values()) == 5
        writers = {e["writer"] for e in kinds(fleet, "step.result")}
        await guard.set_kill_switch(True, by="test")
        await asyncio.sleep(1.0)  # one poll
        await guard.set_kill_switch(False, by="test")  # quota slots free: only the switch could stop them now
        await guard.set_kill_switch(True, by="test")
        await asyncio.sleep(1.0)
        await aws.call("dynamodb", "delete_item", TableName=table, Key={"pk": {"S": "quota#test.s3.*#900#0"}})
        await stream(kafka_bootstrap, topic, make_keys(6), 6, redeliver=0)
        await _settled(fleet, 36)
    finally:
        fleet.stop_all()
    assert sum((await effects(aws, bucket)).values()) == 5, "the kill switch let a replica act"
    tripped = [e for e in kinds(fleet, "guard.tripped") if e["body"]["guard"] == "kill_switch"]
    assert len(tripped) == 6
    assert len(writers) >= 1


async def test_replica_with_other_runbooks_is_refused(aws, unique, tmp_path):
    """The first replica's digest becomes the fleet's; another digest is refused (exit 3 wording); adopt replaces it."""
    from responder.errors import ConfigError
    from responder.fleet import fleet_digest
    from responder.models.runbook import Runbook
    from responder.settings import Settings

    guard = FleetGuard(aws, f"guards-{unique}", [])
    await guard.ensure_table()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", changelog_topic="changelog")
    book = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"},
                                   "steps": [{"id": "s", "actuator": "test.s3.put_marker", "with": {}}]})
    mine = fleet_digest([book], settings)
    other = fleet_digest([book.model_copy(update={"window": 60.0})], settings)
    assert mine != other
    await guard.check_digest(mine, "replica-1")
    await guard.check_digest(mine, "replica-2")
    with pytest.raises(ConfigError, match="differs from the fleet's"):
        await guard.check_digest(other, "replica-3")
    await guard.check_digest(other, "replica-3", adopt=True)
    with pytest.raises(ConfigError, match="set by replica-3"):
        await guard.check_digest(mine, "replica-1")
