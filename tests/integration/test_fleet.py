"""A fleet of `responder run` replicas in one consumer group, state following its partition (real broker, moto)."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from typer.testing import CliRunner

from responder.cli import app
from responder.engine.fleetguard import FleetGuard
from responder.ingest.approvals import send_decision
from responder.ingest.kafka import ensure_topics
from responder.models.approval import ApprovalDecision
from responder.timeline.chain import parse_lines
from responder.timeline.verify import verify_lines
from tests.integration.crash import effects
from tests.integration.fleet import PARTITIONS, kinds, leader_of, make_keys, start_fleet, stream

runner = CliRunner()


async def _fleet_run(kafka_bootstrap, aws, unique, tmp_path, events: int, incidents: int, *, cluster=None,
                     moves: bool = True, settings: dict[str, str] | None = None) -> None:
    """SIGKILL, add and rolling restart (`moves`); on a 3-broker `cluster`, also kill partition 0's leader broker."""
    fleet, topic, bucket = await start_fleet(kafka_bootstrap, aws, unique, tmp_path,
                                             replication=3 if cluster else 1, settings=settings)
    keys = make_keys(incidents)
    killed_node = None
    try:
        first = [fleet.spawn() for _ in range(3)]
        for n in first:
            await fleet.serving(n)
        half = events // 2
        await stream(kafka_bootstrap, topic, keys, half)
        await asyncio.sleep(1.0)
        if moves:
            fleet.kill(first[0])  # SIGKILL mid-stream
            added = fleet.spawn()  # scale out
            await fleet.serving(added)
        second = asyncio.create_task(stream(kafka_bootstrap, topic, keys, events - half))
        if cluster is not None:  # the leader of an alert partition dies while the stream goes on
            await asyncio.sleep(0.5)
            killed_node = cluster.nodes[await leader_of(kafka_bootstrap, topic, 0) - 1]
            cluster.kill_node(killed_node)
        await second
        for n in list(fleet.procs) if moves else []:  # rolling restart: SIGTERM one, start its replacement, next
            fleet.restart_fenced()
            if n in fleet.procs:  # not fenced and restarted meanwhile
                code = fleet.kill(n, signal.SIGTERM)
                assert code == 0 or fleet.was_fenced(n), f"replica {n} exited with {code}:\n{fleet.logs()}"
                if code:
                    fleet.fenced.append(n)
                await fleet.serving(fleet.spawn())
        await stream(kafka_bootstrap, topic, keys[: incidents // 10], incidents // 10)  # redeliveries after moves
        deadline = time.monotonic() + 120 + events // 50
        while fleet.done() < set(keys):
            assert time.monotonic() < deadline, f"missing {len(set(keys) - fleet.done())}:\n{fleet.logs()}"
            fleet.restart_fenced()
            await asyncio.sleep(0.5)
        print(f"fleet: {fleet.rejoins()} fences or failed transactions survived in-process (replica_rejoining); "
              f"{len(fleet.fenced)} replicas exited out of rejoins and were started again: {fleet.fenced}")
        await asyncio.sleep(2.0)  # let the redelivered tail drain before counting
    finally:
        fleet.stop_all()
        if killed_node is not None:
            cluster.start_node(killed_node)
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
    if moves:
        _merged_view_shows_every_writer(tmp_path, fleet.timelines())


def _merged_view_shows_every_writer(directory, paths) -> None:
    """`timeline verify DIR` checks every writer; `show DIR --incident X` has every writer's entries for X."""
    checked = runner.invoke(app, ["timeline", "verify", str(directory)])
    assert checked.exit_code == 4, checked.output  # every chain holds; no key, so none is proven (0 before 2026-12-07)
    assert "does NOT verify" not in checked.output
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


@pytest.mark.apache_kafka
@pytest.mark.timeout(420)
async def test_fleet_on_3_brokers_leader_killed_mid_stream_acts_once(kafka_cluster3, aws, unique, tmp_path):
    """With 3 replicas on 3 brokers and partition 0's leader SIGKILLed mid-stream, every incident acts once."""
    await _fleet_run(kafka_cluster3.bootstrap(), aws, unique, tmp_path, events=300, incidents=30,
                     cluster=kafka_cluster3, moves=False)


@pytest.mark.soak
@pytest.mark.apache_kafka
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("transactions", ["auto", "off"])
async def test_soak_fleet_10k_events_1k_incidents(kafka_cluster3, aws, unique, tmp_path, transactions):
    """10,000 events over 1,000 incidents with faults on 3 brokers act once per step, with or without transactions."""
    await _fleet_run(kafka_cluster3.bootstrap(), aws, unique, tmp_path, events=10_000, incidents=1_000,
                     cluster=kafka_cluster3, settings={"RESPONDER_KAFKA_TRANSACTIONS": transactions})


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
    replicas = [fleet.spawn() for _ in range(3)]
    late = _covering(1)  # one incident per partition: every replica owns two of them
    try:
        for n in replicas:
            await fleet.serving(n)
        await stream(kafka_bootstrap, topic, make_keys(30), 30, redeliver=0)
        await _settled(fleet, 30)
        counted = await effects(aws, bucket)
        assert sorted(counted.values()) == [1] * 5, f"the fleet-wide quota of 5 let {dict(counted)} act"
        await _slots_held_by_those_that_acted(aws, table, fleet)
        await guard.set_kill_switch(True, by="test")
        await asyncio.sleep(1.0)  # several polls: every replica reads it on
        await guard.set_kill_switch(False, by="test")  # and follows it off and on again
        await guard.set_kill_switch(True, by="test")
        await aws.call("dynamodb", "delete_item", TableName=table, Key={"pk": {"S": "quota#test.s3.*#900#0"}})
        # no wait: a record polled after the switch was set is handled with that reading (read after each poll)
        await stream(kafka_bootstrap, topic, late, len(late), redeliver=0)
        await _settled(fleet, 30 + len(late))
    finally:
        fleet.stop_all()
    assert sum((await effects(aws, bucket)).values()) == 5, "the kill switch let a replica act"
    tripped = [e for e in kinds(fleet, "guard.tripped") if e["body"]["guard"] == "kill_switch"]
    assert sorted(e["body"]["target"] for e in tripped) == sorted(late)
    assert len({e["writer"] for e in tripped}) == 3, "a replica was not stopped by the kill switch"
    for log in sorted(tmp_path.glob("replica-*.log")):
        switched = [orjson.loads(line)["on"] for line in log.read_bytes().splitlines()
                    if line.startswith(b"{") and b'"fleet_kill_switch"' in line]
        assert switched[:1] == switched[-1:] == [True], f"{log.name} read the kill switch as {switched}"


async def _slots_held_by_those_that_acted(aws, table: str, fleet) -> None:
    """What the quota counted (the slot items' step keys) is what acted (the step keys with an `ok` result)."""
    items = (await aws.call("dynamodb", "scan", TableName=table, ConsistentRead=True))["Items"]
    holders = {i["key"]["S"] for i in items if i["pk"]["S"].startswith("quota#")}
    acted = {e["body"]["key"] for e in kinds(fleet, "step.result") if e["body"].get("status") == "ok"}
    assert holders == acted, f"slot holders {sorted(holders)} != acted {sorted(acted)}"


async def test_replica_with_other_runbooks_is_refused(aws, unique, tmp_path):
    """The first replica's digest becomes the fleet's; another digest is refused (exit 3 wording); adopt replaces it."""
    from responder.errors import ConfigError
    from responder.fleet_digest import fleet_digest
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


APPROVAL_SECRET = "fleet-approval-secret"


def _covering(keys_per_partition: int) -> list[str]:
    """Incident keys with `keys_per_partition` keys on every alert partition (Kafka's default partitioner)."""
    out: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    while min(len(v) for v in out.values()) < keys_per_partition:
        key = make_keys(1)[0]
        part = DefaultPartitioner()(key.encode(), list(range(PARTITIONS)), [])
        if len(out[part]) < keys_per_partition:
            out[part].append(key)
    return [k for v in out.values() for k in v]


async def _approve_all(bootstrap: str, topic: str, requested: list[dict]) -> None:
    now = datetime.now(UTC)
    for entry in requested:
        decision = ApprovalDecision(incident=entry["incident"], step=entry["body"]["step"], decision="approve",
                                    by="alice", digest=entry["body"]["digest"], issued_at=now,
                                    expires_at=now + timedelta(minutes=10), request_id=entry["body"]["request_id"])
        await send_decision(bootstrap, topic, decision, "k1", APPROVAL_SECRET.encode())


@pytest.mark.timeout(300)
async def test_approvals_parked_before_their_partition_moved_run_once_after_it_moved(kafka_bootstrap, aws, unique,
                                                                                    tmp_path):
    """Steps parked on a SIGKILLed replica and approved after the move act once; a late decision is rejected once."""
    fleet, topic, bucket = await start_fleet(kafka_bootstrap, aws, unique, tmp_path)
    book = tmp_path / "runbooks" / "crash-marker.yaml"
    book.write_text(book.read_text().replace("    timeout: 30\n",
                                             "    timeout: 30\n    approval: {required: true, approvers: [alice]}\n"))
    decisions = f"approvals-{unique}"
    await ensure_topics(kafka_bootstrap, [decisions, f"requests-{unique}"], partitions=PARTITIONS)
    fleet.env |= {"RESPONDER_APPROVAL_KEYS": orjson.dumps({"k1": APPROVAL_SECRET}).decode(),
                  "RESPONDER_APPROVER_IDENTITIES": '{"k1": "alice"}',
                  "RESPONDER_APPROVAL_REQUESTS_TOPIC": f"requests-{unique}"}
    parked_keys, probes = _covering(2), _covering(1)
    try:
        first = [fleet.spawn() for _ in range(2)]
        for n in first:
            await fleet.serving(n)
        await stream(kafka_bootstrap, topic, parked_keys, len(parked_keys), redeliver=0.5)
        await _requested(fleet, len(parked_keys))
        before = kinds(fleet, "approval.requested")
        parkers = {e["writer"] for e in before if e["body"]["target"] in parked_keys}
        assert len(parkers) == 2, "both replicas should have parked steps"
        victim_writer = min(parkers)
        victim = next(n for n in first if victim_writer.endswith(f":{fleet.procs[n].pid}"))
        fleet.kill(victim)  # SIGKILL: its partitions move after the session timeout
        await fleet.serving(fleet.spawn())  # scale out: partitions move again
        await stream(kafka_bootstrap, topic, probes, len(probes), redeliver=0)  # one new incident per partition
        await _requested(fleet, len(parked_keys) + len(probes))  # every partition is consumed again: moves done
        await _approve_all(kafka_bootstrap, decisions, [e for e in before if e["body"]["target"] in parked_keys])
        deadline = time.monotonic() + 90
        while not set(parked_keys) <= fleet.done():
            assert time.monotonic() < deadline, f"missing {set(parked_keys) - fleet.done()}:\n{fleet.logs()}"
            await asyncio.sleep(0.5)
        await asyncio.sleep(3.0)  # a second execution (by a holder of the decision) would show by now
        late = next(e for e in before if e["body"]["target"] in parked_keys)
        await _approve_all(kafka_bootstrap, decisions, [late])  # its step waits no more: its owner records why
        deadline = time.monotonic() + 60
        while not kinds(fleet, "approval.rejected"):
            assert time.monotonic() < deadline, f"the late decision was not recorded:\n{fleet.logs()}"
            await asyncio.sleep(0.5)
        await fleet.serving(fleet.spawn())  # it reads every decision again at its start, and records none of them
        await asyncio.sleep(5.0)  # another member recording a decision would show by now
    finally:
        fleet.stop_all()
    [rejected] = kinds(fleet, "approval.rejected")
    assert (rejected["incident"], rejected["body"]["reason"]) == (
        late["incident"], "no approval is pending for this incident and step")
    counted = await effects(aws, bucket)
    assert {k: counted[k] for k in parked_keys} == dict.fromkeys(parked_keys, 1), "an approved step acted twice"
    assert not set(probes) & set(counted), "a step acted without its approval"
    moved = [e for e in before if e["writer"] == victim_writer]
    decided = {e["incident"]: e["writer"] for e in kinds(fleet, "approval.decided")}
    assert moved, "the killed replica had no parked step"
    assert all(decided[e["incident"]] != victim_writer for e in moved), "a moved approval was not decided elsewhere"


async def _requested(fleet, count: int) -> None:
    """Wait until `count` approval requests are in the timelines (one per incident)."""
    deadline = time.monotonic() + 120
    while len({e["incident"] for e in kinds(fleet, "approval.requested")}) < count:
        assert time.monotonic() < deadline, fleet.logs()
        await asyncio.sleep(0.5)
