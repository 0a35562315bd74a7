"""`bench/restart.py --service`: the real `responder run`, SIGKILLed and restarted, timed to its next action."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from responder.actuators.aws.session import AwsSession
from responder.ingest.kafka import ensure_topics, publish
from responder.sandbox import SANDBOX_CREDENTIALS, lifeline
from responder.sandbox.aws import AwsSandbox
from tests.findings import envelope_bytes, guardduty_finding

ROOT = Path(__file__).resolve().parent.parent
_AWS: AwsSandbox | None = None


def _aws() -> AwsSandbox:
    global _AWS  # one moto server for every round of the bench
    if _AWS is None:
        _AWS = AwsSandbox()
        _AWS.start()
    return _AWS


def _acted(timeline: Path, target: str) -> bool:
    if not timeline.exists():
        return False
    for line in timeline.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if entry.get("kind") == "step.result" and entry["body"].get("target") == target:
            return True
    return False


def _wait_acted(timeline: Path, target: str, timeout: float = 120.0) -> float:
    start = time.monotonic()
    while not _acted(timeline, target):
        if time.monotonic() - start > timeout:
            raise SystemExit(f"no step.result for {target} within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - start


async def _key(endpoint: str, user: str) -> str:
    aws = AwsSession(region="us-east-1", endpoint_url=endpoint, credentials=SANDBOX_CREDENTIALS)
    await aws.call("iam", "create_user", UserName=user)
    return str((await aws.call("iam", "create_access_key", UserName=user))["AccessKey"]["AccessKeyId"])


def measure_service(bootstrap: str, session: int, static: bool) -> float:
    """Run the service, act once, SIGKILL it, publish a finding, restart: seconds to that finding's action."""
    with tempfile.TemporaryDirectory(prefix="restart-") as tmp:
        return _measure_service(bootstrap, session, static, Path(tmp) / "timeline.jsonl")


def _measure_service(bootstrap: str, session: int, static: bool, timeline: Path) -> float:
    endpoint = _aws().endpoint_url
    unique = uuid.uuid4().hex[:8]
    topic = f"alerts-{unique}"
    asyncio.run(ensure_topics(bootstrap, [topic, f"dlq-{unique}", f"approvals-{unique}"], partitions=3))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "PYTHONPATH": str(ROOT), "RESPONDER_KAFKA_BOOTSTRAP": bootstrap, "RESPONDER_TOPICS": f'["{topic}"]',
        "RESPONDER_DEADLETTER_TOPIC": f"dlq-{unique}", "RESPONDER_GROUP_ID": f"g-{unique}",
        "RESPONDER_APPROVALS_TOPIC": f"approvals-{unique}", "RESPONDER_SESSION_TIMEOUT_MS": str(session),
        "RESPONDER_TIMELINE_PATH": str(timeline), "RESPONDER_RUNBOOKS_DIR": str(ROOT / "runbooks"),
        "RESPONDER_AWS_ENDPOINT_URL": endpoint, "RESPONDER_LOG_LEVEL": "warning",
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
    }
    if static:
        env["RESPONDER_KAFKA_GROUP_INSTANCE_ID"] = f"responder-{unique}"

    def spawn() -> subprocess.Popen[bytes]:
        return lifeline.popen([sys.executable, "-m", "responder", "run"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def finding(user: str) -> str:
        key = await _key(endpoint, user)
        await publish(bootstrap, topic, [envelope_bytes(guardduty_finding(key, user, finding_id=uuid.uuid4().hex))],
                      key=key.encode())
        return key

    first = spawn()
    try:
        _wait_acted(timeline, asyncio.run(finding(f"u1-{unique}")))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    target = asyncio.run(finding(f"u2-{unique}"))
    second = spawn()
    try:
        return _wait_acted(timeline, target)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
