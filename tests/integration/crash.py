"""The crash driver: run the service as a subprocess, SIGKILL it at random points, restart it, count effects."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import string
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from responder.actuators.aws.archive import S3Archive
from responder.actuators.aws.session import AwsSession
from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.crash_worker import write_runbook
from tests.timeline_builders import PRIVATE

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CrashStats:
    """What the kills hit."""

    kills: int = 0
    mid_step: int = 0  # the killed worker left an intent of its own without a result: killed inside a step
    first_entry_s: list[float] = field(default_factory=list)  # consuming → first timeline entry, per worker
    recovered: int = 0  # results written after a restart found the effect already there (verify())
    already_done: int = 0  # redelivered steps skipped because their result was durable
    keys: list[str] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    effects: Counter[str] = field(default_factory=Counter)
    archive: S3Archive | None = None


def fake_key() -> str:
    """A unique access-key-shaped id (the marker each finding asks for)."""
    return "AKIA" + "".join(random.choices(string.ascii_uppercase + string.digits, k=16))


def timeline_state(path: Path) -> tuple[set[str], dict[str, str]]:
    """(targets with an ok result, {key with an intent but no result: writer}) in what is on disk now."""
    done: set[str] = set()
    open_keys: dict[str, str] = {}
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            e = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn tail: the next worker repairs it
        key = str(e["body"].get("key", ""))
        if e["kind"] == "step.intent":
            open_keys[key] = e["writer"]
        elif e["kind"] == "step.result":
            open_keys.pop(key, None)
            if e["body"].get("status") == "ok":
                done.add(str(e["body"].get("target")))
    return done, open_keys


class Workers:
    """Spawns warmed-up workers and makes sure every one of them is gone at the end."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env, self.count = tmp, env, 0
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> tuple[subprocess.Popen[bytes], Path, Path]:
        n = self.count = self.count + 1
        go, ready = self.tmp / f"go-{n}", self.tmp / f"ready-{n}"
        env = self.env | {"CRASH_GO_FILE": str(go), "CRASH_READY_FILE": str(ready)}
        with (self.tmp / f"worker-{n % 3}.log").open("wb") as err:
            proc = lifeline.popen([sys.executable, "-m", "tests.integration.crash_worker"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(proc)
        return proc, go, ready

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


async def effects(aws: AwsSession, bucket: str) -> Counter[str]:
    """Objects under effects/ in `bucket`, by marker (what PutMarker's applies left): the actions that really
    happened in moto, whatever responder recorded."""
    counts: Counter[str] = Counter()
    kwargs: dict[str, object] = {"Bucket": bucket, "Prefix": "effects/", "MaxKeys": 1000}
    while True:
        listed = await aws.call("s3", "list_objects_v2", **kwargs)
        counts.update(obj["Key"].split("/")[1] for obj in listed.get("Contents", []))
        if not listed.get("IsTruncated"):
            return counts
        kwargs["ContinuationToken"] = listed["NextContinuationToken"]


def _exists(path: Path) -> bool:
    return path.exists()


def _logs(tmp: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp.glob("worker-*.log"))


async def wait_ready(proc: subprocess.Popen[bytes], ready: Path, tmp: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"worker did not become ready (rc={proc.poll()}):\n{_logs(tmp)}")
        await asyncio.sleep(0.01)


def worker_env(bootstrap: str, aws: AwsSession, topic: str, dlq: str, unique: str, tmp: Path) -> dict[str, str]:
    """The crash worker's environment: consumer-group mode, timeline and runbooks under `tmp`, a WORM archive
    in bucket worm-<unique>."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "PYTHONPATH": str(ROOT), "RESPONDER_KAFKA_BOOTSTRAP": bootstrap, "RESPONDER_TOPICS": f'["{topic}"]',
        "RESPONDER_DEADLETTER_TOPIC": dlq, "RESPONDER_GROUP_ID": f"crash-{unique}",
        "RESPONDER_TIMELINE_PATH": str(tmp / "timeline.jsonl"),
        "RESPONDER_RUNBOOKS_DIR": str(tmp / "runbooks"), "RESPONDER_AWS_ENDPOINT_URL": aws.endpoint_url or "",
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
        "RESPONDER_TIMELINE_SIGNING_KEY": PRIVATE, "RESPONDER_TIMELINE_CHECKPOINT_EVERY": "10",
        "RESPONDER_TIMELINE_ARCHIVE": f"s3://worm-{unique}/", "RESPONDER_LOG_LEVEL": "warning",
        "RESPONDER_MAX_BATCH": "10",  # small batches commit often, so a short-lived worker still makes progress
    }


async def crash_run(bootstrap: str, aws: AwsSession, topic: str, dlq: str, unique: str, tmp: Path, kills: int,
                    per_round: int = 3, max_delay: float = 0.25, max_backlog: int = 30) -> CrashStats:
    """Publish `per_round` findings, start a worker, SIGKILL it after a random delay; `kills` times; then drain.

    Publishing pauses while more than `max_backlog` findings wait for a result, so the backlog stays bounded.
    """
    bucket = f"effects-{unique}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    archive = S3Archive(f"worm-{unique}", prefix="", endpoint_url=aws.endpoint_url, credentials=SANDBOX_CREDENTIALS)
    archive.ensure_bucket()
    runbooks, timeline = tmp / "runbooks", tmp / "timeline.jsonl"
    write_runbook(runbooks, bucket)
    env = worker_env(bootstrap, aws, topic, dlq, unique, tmp) | {"RESPONDER_KAFKA_MANUAL_ASSIGNMENT": "true"}
    stats = CrashStats(archive=archive)
    workers = Workers(tmp, env)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        current = workers.spawn()
        for _ in range(kills):
            backlog = len(set(stats.keys) - timeline_state(timeline)[0])
            for _ in range(per_round if backlog <= max_backlog else 0):
                key = fake_key()
                stats.keys.append(key)
                finding = guardduty_finding(key, finding_id=uuid.uuid4().hex)
                await producer.send_and_wait(topic, envelope_bytes(finding), key=key.encode())
            standby = workers.spawn()
            proc, go, ready = current
            go.touch()
            await wait_ready(proc, ready, tmp)
            await asyncio.sleep(random.uniform(0, max_delay))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            stats.kills += 1
            stats.first_entry_s.append(float(ready.read_text() or 0))
            stats.mid_step += any(w.endswith(f":{proc.pid}") for w in timeline_state(timeline)[1].values())
            current = standby
        proc, go, ready = current
        go.touch()  # the last worker runs undisturbed (it may have nothing left to write: wait for it to serve)
        await wait_ready(proc, ready.with_name(ready.name + ".serving"), tmp)
        deadline = time.monotonic() + 180
        while timeline_state(timeline)[0] < set(stats.keys):
            assert proc.poll() is None, f"the last worker died:\n{_logs(tmp)}"
            assert time.monotonic() < deadline, "not every finding was acted on after the last restart"
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        await producer.stop()
        workers.kill_all()
    stats.lines = timeline.read_bytes().splitlines()
    for e in parse_lines(stats.lines):
        stats.recovered += e.kind == "step.result" and bool(e.body.get("recovered"))
        stats.already_done += e.kind == "step.skipped" and e.body.get("reason") == "already_done"
    stats.effects = await effects(aws, bucket)
    return stats
