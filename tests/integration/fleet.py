"""The fleet driver: N `responder run` replicas (the crash worker's real Service) in one group, with a state
changelog; stream findings over many incidents with redeliveries while replicas are killed, added, restarted."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from responder.actuators.aws.session import AwsSession
from responder.ingest.changelog import ensure_changelog
from responder.ingest.kafka import ensure_topics
from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.crash import fake_key
from tests.integration.crash_worker import write_runbook

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


@dataclass
class Fleet:
    """Replicas by number; each has its own timeline file (one writer per file)."""

    tmp: Path
    env: dict[str, str]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    count: int = 0
    fenced: list[int] = field(default_factory=list)

    def spawn(self) -> int:
        n = self.count = self.count + 1
        go = self.tmp / f"go-{n}"
        go.touch()
        env = self.env | {"CRASH_GO_FILE": str(go), "CRASH_READY_FILE": str(self.tmp / f"ready-{n}"),
                          "RESPONDER_TIMELINE_PATH": str(self.tmp / f"timeline-{n}.jsonl")}
        with (self.tmp / f"replica-{n}.log").open("wb") as err:
            self.procs[n] = lifeline.popen([sys.executable, "-m", "tests.integration.crash_worker"], cwd=ROOT,
                                           env=env, stdout=subprocess.DEVNULL, stderr=err)
        return n

    async def serving(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (self.tmp / f"ready-{n}.serving").exists():
            assert self.procs[n].poll() is None, f"replica {n} exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"replica {n} did not start"
            await asyncio.sleep(0.05)

    def kill(self, n: int, sig: int = signal.SIGKILL) -> int:
        proc = self.procs.pop(n)
        proc.send_signal(sig)
        return proc.wait(60)

    def restart_fenced(self) -> None:
        """A replica fenced by another one that took its partition (`replica_fenced`: a zombie, e.g. starved past
        its session timeout on a loaded machine), or whose changelog transaction failed (a broker killed), rejoins
        in-process; one that did so more often than RESPONDER_FENCED_REJOINS allows exits by design, for its
        supervisor to start it again (docs/fleet.md): so does this one. Any other exit fails the test, with the
        logs."""
        for n, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            assert self.was_fenced(n), f"replica {n} exited with {proc.returncode}:\n{self.logs()}"
            del self.procs[n]
            self.fenced.append(n)
            self.spawn()

    def was_fenced(self, n: int) -> bool:
        """Whether replica n ended by design out of rejoins: it logged `replica_fenced_exiting` (fenced too often),
        `replica_transaction_failed_exiting` (the last of too many rejoins was for a failed changelog transaction) or
        `replica_unreachable_exiting` (for Kafka still unreachable after one). A replica fenced once, rejoined, then
        failed otherwise (exit 1) did not."""
        logged = (self.tmp / f"replica-{n}.log").read_text(errors="replace")
        return any(f'"event": "{event}"' in logged for event in (
            "replica_fenced_exiting", "replica_transaction_failed_exiting", "replica_unreachable_exiting"))

    def rejoins(self) -> int:
        """How many times a replica rejoined in-process (`replica_rejoining`: fenced, or a failed changelog
        transaction), over every replica's log."""
        return sum(p.read_text(errors="replace").count('"event": "replica_rejoining"')
                   for p in self.tmp.glob("replica-*.log"))

    def timelines(self) -> list[Path]:
        return sorted(self.tmp.glob("timeline-*.jsonl"))

    def done(self) -> set[str]:
        """Targets with an ok result in any writer's timeline."""
        return {str(e["body"].get("target")) for e in kinds(self, "step.result") if e["body"].get("status") == "ok"}

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.tmp.glob("replica-*.log")))

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


async def start_fleet(bootstrap: str, aws: AwsSession, unique: str, tmp: Path, replication: int = 1,
                      settings: Mapping[str, str] | None = None) -> tuple[Fleet, str, str]:
    """Topics (alerts and a compacted changelog, co-partitioned), the effects bucket, the replicas' settings
    (`settings`: more `RESPONDER_*` variables for every replica, over the defaults here)."""
    topic, dlq, changelog = f"alerts-{unique}", f"dlq-{unique}", f"changelog-{unique}"
    await ensure_topics(bootstrap, [topic, dlq], partitions=PARTITIONS, replication=replication)
    await ensure_changelog(bootstrap, changelog, PARTITIONS, replication=replication)
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    write_runbook(tmp / "runbooks", bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "PYTHONPATH": str(ROOT), "RESPONDER_KAFKA_BOOTSTRAP": bootstrap, "RESPONDER_TOPICS": f'["{topic}"]',
        "RESPONDER_DEADLETTER_TOPIC": dlq, "RESPONDER_GROUP_ID": f"fleet-{unique}",
        "RESPONDER_CHANGELOG_TOPIC": changelog, "RESPONDER_SESSION_TIMEOUT_MS": "6000",
        "RESPONDER_APPROVALS_TOPIC": f"approvals-{unique}",
        "RESPONDER_RUNBOOKS_DIR": str(tmp / "runbooks"), "RESPONDER_AWS_ENDPOINT_URL": aws.endpoint_url or "",
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
        "RESPONDER_LOG_LEVEL": "warning", "RESPONDER_MAX_BATCH": "50",
    } | dict(settings or {})
    return Fleet(tmp, env), topic, bucket


async def leader_of(bootstrap: str, topic: str, partition: int, *, wait: float = 10.0) -> int:
    """The node id leading one partition (retries for up to `wait` s while it has no leader: a just-created topic,
    or an election after its leader was killed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(int(wait * 10)):
            [described] = await admin.describe_topics([topic])
            leaders = {p["partition"]: p["leader"] for p in described["partitions"]}
            if leaders.get(partition, -1) >= 0:
                return int(leaders[partition])
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise AssertionError(f"no leader elected for {topic}:{partition}")


async def stream(bootstrap: str, topic: str, keys: list[str], events: int, redeliver: float = 0.2) -> int:
    """`events` findings spread over `keys` (keyed by incident), a share of them sent twice; returns records sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        futures = []
        for i in range(events):
            key = keys[i % len(keys)]
            value = envelope_bytes(guardduty_finding(key, finding_id=uuid.uuid4().hex))
            for _ in range(2 if random.random() < redeliver else 1):
                futures.append(await producer.send(topic, value, key=key.encode()))
                sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


def make_keys(n: int) -> list[str]:
    """`n` incident keys."""
    return [fake_key() for _ in range(n)]


def kinds(fleet: Fleet, kind: str) -> list[dict[str, Any]]:
    """Every entry of `kind` in every writer's timeline."""
    out = []
    for path in fleet.timelines():
        for line in path.read_bytes().splitlines():
            try:
                e = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if e["kind"] == kind:
                out.append(e)
    return out
