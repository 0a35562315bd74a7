"""Approvals against the real broker and moto: the shipped runbook with an approval required, a service run until
its step parks, a decision sent by `responder approve|deny`, and the kinds of the timeline's entries."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from responder.engine.approvals import Parked
from responder.ingest.kafka import ensure_topics, publish
from responder.models.approval import ApprovalDecision
from responder.sandbox import lifeline
from responder.service import Service
from responder.settings import Settings
from responder.timeline.chain import parse_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-approval-secret"


def approval_runbooks(tmp_path: Path, runbooks_dir: Path) -> Path:
    """The shipped runbook, with a human approval required on its step."""
    d = tmp_path / "runbooks"
    d.mkdir()
    text = (runbooks_dir / "iam-credential-compromise.yaml").read_text()
    text = text.replace("    retries: 3\n", "    retries: 3\n    approval: {required: true, approvers: [alice]}\n")
    assert "approval:" in text
    (d / "iam-credential-compromise.yaml").write_text(text)
    return d


async def approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """The requests and decisions topics, an access key of `ml-training` in moto, and settings whose runbook asks
    alice (key k1, `SECRET`) to approve its step."""
    names = {"requests": f"req-{unique}", "decisions": f"dec-{unique}"}
    await ensure_topics(kafka_bootstrap, list(names.values()), partitions=1)
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    settings = make_settings(
        kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", approval_runbooks(tmp_path, runbooks_dir),
        session_timeout_ms=3000, approvals_topic=names["decisions"], approval_requests_topic=names["requests"],
        approval_keys={"k1": SECRET}, approver_identities={"k1": "alice"},
    )
    return names, key, settings


async def park(service: Service, kafka_bootstrap: str, topics: dict[str, str], key: str,
               timeout: float = 30.0) -> Parked:
    """Publish the finding naming `key` to the running `service`; the step it parks (waited for up to `timeout` s)."""
    await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
    await wait_for(lambda: bool(service.engine.state.parked_steps()), timeout=timeout)
    [parked] = service.engine.state.parked_steps()
    return parked


def approval_of(parked: Parked, valid: timedelta = timedelta(minutes=5)) -> ApprovalDecision:
    """alice's approval of the `parked` step, answering its request, issued now and valid for `valid`."""
    now = datetime.now(UTC)
    return ApprovalDecision(incident=parked.incident, step=parked.step, decision="approve", by="alice",
                            digest=parked.digest, issued_at=now, expires_at=now + valid, request_id=parked.request_id)


async def run_until_parked(kafka_bootstrap: str, topics: dict[str, str], key: str,
                           settings: Settings) -> tuple[Service, str, str]:
    """Run a service until the finding naming `key` parks its step; the service, and the incident and step parked."""
    service = Service(settings)
    async with running(service):
        parked = await park(service, kafka_bootstrap, topics, key)
    return service, parked.incident, parked.step


async def decide_by_cli(verdict: str, kafka_bootstrap: str, names: dict[str, str], settings: Settings,
                        incident: str, step: str, reason: str) -> None:
    """`responder approve|deny` by alice, signed with key k1, sent to the decisions topic; it exits 0."""
    env = {**os.environ, "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "RESPONDER_APPROVAL_KEYS": orjson.dumps({"k1": SECRET}).decode(), "RESPONDER_APPROVAL_KEY_ID": "k1",
           "RESPONDER_APPROVER_IDENTITIES": '{"k1": "alice"}', "RESPONDER_APPROVALS_TOPIC": names["decisions"]}
    proc = await lifeline.exec_async(
        sys.executable, "-m", "responder", verdict, incident, step, "--by", "alice", "--reason", reason,
        "--timeline", str(settings.timeline_path), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]


def timeline_kinds(path: Path) -> list[str]:
    """The kind of each entry of the timeline file at `path`, in order."""
    return [e.kind for e in parse_lines(path.read_bytes().splitlines())]
