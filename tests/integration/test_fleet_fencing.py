"""Zombie fencing with Kafka transactions (Apache Kafka): the changelog and the offsets commit in one transaction,
and a replica whose partition moved while it was paused is refused instead of acting, then rejoins in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.errors_kafka import ChangelogError, ReplicaFenced
from responder.ingest.changelog import Changelog, ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.ingest.transactions import Transactions
from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from responder.sandbox.broker import free_port
from responder.sandbox.fixtures import on_apache_kafka
from responder.timeline.verify import verify_lines
from tests.http import http_request
from tests.integration.crash import effects, fake_key
from tests.integration.fence_worker import write_runbook
from tests.integration.fleet import stream

ROOT = Path(__file__).resolve().parents[2]
kafka_bootstrap = on_apache_kafka()


def _slice(incident: str) -> tuple[bytes, bytes]:
    """A changelog record holding a slice of `incident` (a restore refuses one that holds none of its key)."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    held = EngineSnapshot(incidents=[Incident(incident, "rb", incident, at, at)])
    return incident.encode(), held.model_dump_json().encode()


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        for _ in range(50):  # the transaction's offsets become visible once its markers are written
            got = await consumer.committed(tp)
            if got is not None:
                return int(got)
            await asyncio.sleep(0.1)
        return None
    finally:
        await consumer.stop()


@pytest.mark.timeout(120)
async def test_new_owner_fences_the_old_ones_writes_and_commits(transactional, unique):
    """The next owner of a partition fences the previous one: its write and its offset commit raise ReplicaFenced."""
    topic, group = f"changelog-{unique}", f"group-{unique}"
    await ensure_changelog(transactional, topic, 1)
    await ensure_topics(transactional, [f"in-{unique}"], partitions=1)
    old, new = Transactions(transactional, topic, group), Transactions(transactional, topic, group)
    reader = Changelog(transactional, topic)
    reader.txn = old
    await reader.start()  # a restore writes its fence first
    try:
        await old.assign([0])
        with old.hold([0]):
            await old.write(0, [_slice("i-1")])
            await old.commit({TopicPartition(f"in-{unique}", 0): 7})
        assert await _committed(transactional, group, TopicPartition(f"in-{unique}", 0)) == 7
        await new.assign([0])  # the partition moved: `old` is a zombie now
        with pytest.raises(ReplicaFenced):
            await old.write(0, [_slice("i-2")], urgent=True)
        with pytest.raises(ReplicaFenced):
            await old.commit({TopicPartition(f"in-{unique}", 0): 9})
        assert await _committed(transactional, group, TopicPartition(f"in-{unique}", 0)) == 7
        await new.write(0, [_slice("i-3")])
        reader.txn = new
        assert len(await reader.read(0)) == 2  # i-1 and i-3: the zombie's i-2 never landed
    finally:
        await old.stop()
        await new.stop()
        await reader.producer.stop()


@pytest.mark.timeout(120)
async def test_held_writes_and_offsets_commit_together_or_not_at_all(transactional, unique):
    """Records written inside hold() stay invisible to a read_committed restore (it fails) until commit(offsets)."""
    topic, group = f"changelog-{unique}", f"group-{unique}"
    await ensure_changelog(transactional, topic, 1)
    await ensure_topics(transactional, [f"in-{unique}"], partitions=1)
    txn = Transactions(transactional, topic, group)
    reader = Changelog(transactional, topic)
    reader.txn = Transactions(transactional, topic, f"reader-{unique}")  # read_committed, another id
    await reader.start()  # a restore writes its fence first
    try:
        await txn.assign([0])
        with txn.hold([0]):
            await txn.write(0, [_slice("i-1")])
            with pytest.raises(ChangelogError):  # open: a restore cannot reach its fence, so it fails (and is retried)
                await reader.read(0, timeout=3)
            await txn.commit({TopicPartition(f"in-{unique}", 0): 1})
        assert len(await reader.read(0)) == 1
    finally:
        await txn.stop()
        await reader.producer.stop()


def _spawn(tmp: Path, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = env | {"FENCE_READY_FILE": str(tmp / f"ready-{name}"),
                 "RESPONDER_TIMELINE_PATH": str(tmp / f"timeline-{name}.jsonl")}
    with (tmp / f"replica-{name}.log").open("wb") as err:
        return lifeline.popen([sys.executable, "-m", "tests.integration.fence_worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=err)


async def _until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def _events(path: Path) -> list[str]:
    """The event names a replica logged (JSON lines), in order."""
    return [line.split('"event": "', 1)[1].split('"', 1)[0] for line in path.read_text(errors="replace").splitlines()
            if '"event": "' in line]


class _Probe:
    """Polls a replica's /readyz every 50 ms, as an orchestrator's probes would: what it answered, and whether the
    port ever refused a connection (a paused process times out instead, which is no refusal)."""

    def __init__(self, port: int) -> None:
        self.port, self.bodies, self.refused = port, list[str](), 0  # each change of answer, in order
        self.task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            try:
                _, body = await asyncio.wait_for(http_request(self.port, "/readyz"), 1)
                if not self.bodies or self.bodies[-1] != body:
                    self.bodies.append(body)
            except ConnectionRefusedError:
                self.refused += 1
            except (TimeoutError, OSError):
                pass
            await asyncio.sleep(0.05)


STOPS = ("replica_fenced", "membership_lapsed")  # a zombie's two ways to stop acting


def _stopped(log: Path) -> bool:
    """Whether the replica logged that it stopped acting: fenced, or its membership lease lapsed."""
    text = log.read_text(errors="replace")
    return any(f'"event": "{e}"' in text for e in STOPS)


def _has(path: Path, *needles: str) -> bool:
    return path.exists() and any(all(n in line for n in needles) for line in path.read_text().splitlines())


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("rejoins", "transactions"), [("5", "on"), ("0", "on"), ("5", "off")])
async def test_paused_replica_is_fenced_and_does_not_act_twice(transactional, aws, unique, tmp_path, rejoins,
                                                               transactions):
    """A paused replica past its session stops without acting (fenced, or its lease lapsed); the next incident once."""
    topic, changelog, bucket = f"alerts-{unique}", f"changelog-{unique}", f"effects-{unique}"
    await ensure_topics(transactional, [topic, f"dlq-{unique}"], partitions=1)
    await ensure_changelog(transactional, changelog, 1)
    await aws.call("s3", "create_bucket", Bucket=bucket)
    write_runbook(tmp_path / "runbooks", bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "PYTHONPATH": str(ROOT), "RESPONDER_KAFKA_BOOTSTRAP": transactional, "RESPONDER_TOPICS": f'["{topic}"]',
        "RESPONDER_DEADLETTER_TOPIC": f"dlq-{unique}", "RESPONDER_GROUP_ID": f"fence-{unique}",
        "RESPONDER_CHANGELOG_TOPIC": changelog, "RESPONDER_SESSION_TIMEOUT_MS": "6000",
        "RESPONDER_APPROVALS_TOPIC": f"approvals-{unique}", "RESPONDER_KAFKA_TRANSACTIONS": transactions,
        "RESPONDER_FENCED_REJOINS": rejoins,
        "RESPONDER_RUNBOOKS_DIR": str(tmp_path / "runbooks"), "RESPONDER_AWS_ENDPOINT_URL": aws.endpoint_url or "",
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
    }
    key, later = fake_key(), fake_key()
    port = free_port()
    a = _spawn(tmp_path, "a", env | {"RESPONDER_METRICS_PORT": str(port)})
    b: subprocess.Popen[bytes] | None = None
    log_a = tmp_path / "replica-a.log"
    probe: _Probe | None = None
    try:
        await _until(lambda: (tmp_path / "ready-a").exists(), "replica A did not start")
        probe = _Probe(port)
        await stream(transactional, topic, [key], 1, redeliver=0)
        await _until(lambda: _has(tmp_path / "timeline-a.jsonl", '"step.intent"', '"hold"'),
                     "A did not reach the hold step")
        a.send_signal(signal.SIGSTOP)  # a zombie-to-be: paused in the middle of the incident
        b = _spawn(tmp_path, "b", env)
        await _until(lambda: _has(tmp_path / "timeline-b.jsonl", '"step.result"', '"put-marker"'),
                     "B did not take the partition over and act", timeout=90)
        a.send_signal(signal.SIGCONT)
        await _until(lambda: a.poll() is not None or _stopped(log_a)
                     or _has(tmp_path / "timeline-a.jsonl", '"put-marker"'), "A neither was fenced nor acted",
                     timeout=60)
        await asyncio.sleep(3.0)  # had A acted, its object would be in moto by now
        counted = await effects(aws, bucket)
        assert counted[key] == 1, f"the step acted {counted[key]} times:\n" + log_a.read_text()[-3000:]
        assert _stopped(log_a)  # fenced by B's transactional producer, or its own lease lapsed first
        if transactions == "off":  # nothing fences it: its lease alone kept it from acting
            assert "membership_lapsed" in log_a.read_text()
        assert not _has(tmp_path / "timeline-a.jsonl", '"step.result"', '"put-marker"')
        await _until(lambda: a.poll() is not None or "replica_rejoining" in log_a.read_text(), "A did not stop")
        dying = _events(log_a)
        dying = dying[min(dying.index(e) for e in STOPS if e in dying):]  # until the new service starts (or exit)
        dying = dying[:dying.index("replica_rejoining")] if "replica_rejoining" in dying else dying
        assert "transactional_producer_started" not in dying, f"the fenced service fenced the new owner: {dying}"
        if rejoins == "0":
            assert a.wait(30) != 0, "a fenced replica with no rejoins left exits loudly"
            assert "replica_fenced_exiting" in log_a.read_text()
            return
        await _until(lambda: (tmp_path / "ready-a.2").exists(), "A did not rejoin:\n" + log_a.read_text()[-3000:],
                     timeout=90)
        assert a.poll() is None
        assert "replica_rejoining" in log_a.read_text()
        await stream(transactional, topic, [later], 1, redeliver=0)  # whichever of A and B owns it now
        await _until(lambda: any(_has(tmp_path / f"timeline-{n}.jsonl", '"step.result"', '"put-marker"', later)
                                 for n in "ab"), "the fleet did not handle the next incident", timeout=90)
        assert not probe.task.done(), probe.task  # the poller ran throughout
        probe.task.cancel()
        assert probe.refused == 0, "A's probes were refused while it rejoined"  # the port is the process's
        rejoining = [i for i, body in enumerate(probe.bodies) if "rejoining after a fence (1 of 5" in body]
        assert rejoining, probe.bodies
        assert "ready\n" in probe.bodies[rejoining[0]:], probe.bodies  # the rebuilt service, on the same port
        assert "responder_replica_rejoins_total 1.0" in (await http_request(port, "/metrics"))[1]
        a.send_signal(signal.SIGTERM)
        assert a.wait(60) == 0, "the rejoined replica stops cleanly:\n" + log_a.read_text()[-3000:]
        counted = await effects(aws, bucket)
        assert (counted[key], counted[later]) == (1, 1), counted
        for name in "ab":
            lines = (tmp_path / f"timeline-{name}.jsonl").read_bytes().splitlines()
            assert verify_lines(lines).entries == len(lines)  # A's two services wrote one chain
    finally:
        if probe is not None:
            probe.task.cancel()
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(10)
