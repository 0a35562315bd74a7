"""`responder run --dry-run` as a user runs it: the plan is recorded, nothing is called."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from responder.ingest.kafka import ensure_topics, publish
from responder.sandbox import SANDBOX_CREDENTIALS, AwsSandbox
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY = "AKIADRYRUNEXAMPLE001"


def test_run_dry_run_records_the_plan_and_calls_nothing(kafka_bootstrap, moto_server: AwsSandbox, unique, tmp_path):
    """A finding handled by `responder run --dry-run` yields step.planned with concrete params and no intent."""
    topic = f"alerts-{unique}"
    asyncio.run(ensure_topics(kafka_bootstrap, [topic], partitions=1))
    timeline = tmp_path / "t.jsonl"
    env = {
        **os.environ, "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap, "RESPONDER_TOPICS": f'["{topic}"]',
        "RESPONDER_GROUP_ID": f"g-{unique}", "RESPONDER_TIMELINE_PATH": str(timeline),
        "RESPONDER_AWS_ENDPOINT_URL": moto_server.endpoint_url, "RESPONDER_SESSION_TIMEOUT_MS": "6000",
        "RESPONDER_AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
        "RESPONDER_AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
    }
    proc = subprocess.Popen([sys.executable, "-m", "responder", "run", "--dry-run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while b"consumer_started" not in (line := proc.stderr.readline()):
            assert line, "responder run exited before consuming"
        asyncio.run(publish(kafka_bootstrap, topic, [envelope_bytes(guardduty_finding(KEY))], key=KEY.encode()))
        deadline = time.monotonic() + 60
        while not (timeline.exists() and timeline.read_bytes().count(b"step.planned") >= 3):
            assert time.monotonic() < deadline, "no step.planned recorded"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    entries = list(parse_lines(timeline.read_bytes().splitlines()))
    planned = {e.body["step"]: e.body for e in entries if e.kind == "step.planned"}
    assert planned["deactivate-key"]["params"] == {"user_name": "ml-training", "access_key_id": KEY}
    assert planned["revoke-sessions"]["params"]["principal_name"] == "ml-training"
    assert all(p["dry_run"] is True for p in planned.values())
    assert not [e for e in entries if e.kind in ("step.intent", "step.result")]
