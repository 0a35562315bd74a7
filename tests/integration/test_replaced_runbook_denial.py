"""Through the real broker and moto: a human's denial of a step that waited while its runbook was upgraded is
applied at once (approval.decided, the step denied with their words), not refused and left to the timeout."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest

from responder.ingest.kafka import publish
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import running, wait_for
from tests.integration.test_approvals import SECRET, _setup, _status

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _bodies(path: Path, kind: str) -> list[dict[str, object]]:
    return [e.body for e in parse_lines(path.read_bytes().splitlines()) if e.kind == kind]


async def test_a_denial_under_a_replaced_runbook_is_applied_at_once(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """Parked under version 1, restarted with version 2, denied by `responder deny`: approval.decided, the step's
    result denied by them (not "runbook … no longer loaded"), nothing rejected, escalated or run; the key Active."""
    names, key, settings = await _setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    first = Service(settings)
    async with running(first):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(first.engine.state.parked_steps()))
    [(incident, step)] = [(p.incident, p.step) for p in first.engine.state.parked_steps()]
    book = tmp_path / "runbooks" / "iam-credential-compromise.yaml"
    assert "\nversion: 1\n" in book.read_text()
    book.write_text(book.read_text().replace("\nversion: 1\n", "\nversion: 2\n"))
    second = Service(settings)
    async with running(second):
        assert second.engine.state.parked(incident, step) is not None
        env = {**os.environ, "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
               "RESPONDER_APPROVAL_KEYS": orjson.dumps({"k1": SECRET}).decode(), "RESPONDER_APPROVAL_KEY_ID": "k1",
               "RESPONDER_APPROVER_IDENTITIES": '{"k1": "alice"}', "RESPONDER_APPROVALS_TOPIC": names["decisions"]}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "responder", "deny", incident, step, "--by", "alice", "--reason", "false positive",
            "--timeline", str(settings.timeline_path), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        await wait_for(lambda: bool(_bodies(settings.timeline_path, "step.result")), timeout=60)
        assert second.engine.state.parked(incident, step) is None
    [decided] = _bodies(settings.timeline_path, "approval.decided")
    assert decided["decision"] == "deny"
    [result] = _bodies(settings.timeline_path, "step.result")
    assert (result["step"], result["status"], result["error"]) == (step, "denied", "denied by alice")
    for kind in ("approval.rejected", "step.escalated", "escalation.missed", "step.intent"):
        assert _bodies(settings.timeline_path, kind) == [], kind
    assert await _status(aws, key) == "Active"
