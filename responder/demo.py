"""`responder demo`: the main job end to end on the embedded sandbox."""

from __future__ import annotations

import asyncio
import copy
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from responder.actuators.aws.session import AwsSession
from responder.errors import SandboxError
from responder.ingest.kafka import publish
from responder.ingest.producer import AckedProducer
from responder.ingest.security import kafka_client_options
from responder.intake import Intake
from responder.intake.server import serving
from responder.models.step import StepStatus
from responder.models.timeline import EntryKind, TimelineEntry
from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox, sandbox_account
from responder.service import Service
from responder.settings import Settings
from responder.timeline.chain import parse_lines, verify_entries

DEMO_USER = "ml-training"
DEMO_TOKEN = "demo-eventbridge-api-destination-token"  # noqa: S105  # nosec B105 # a sandbox-only credential
DEMO_SIGNING = "demo-intake-signing-key"


def finding_template() -> dict[str, Any]:
    """The bundled GuardDuty credential-exfiltration finding."""
    text = resources.files("responder.sandbox").joinpath("findings/guardduty-credential-exfiltration.json")
    doc: dict[str, Any] = orjson.loads(text.read_bytes())
    return doc


def in_account(finding: dict[str, Any], account: str) -> dict[str, Any]:
    """A copy of a GuardDuty finding about `account` (its `accountId`, which EventBridge's `account` follows, and its
    ARN's account field): the demo's finding is about the sandbox's account, moto's or `MOTO_ACCOUNT_ID`."""
    doc = copy.deepcopy(finding)
    doc["accountId"] = account
    parts = str(doc.get("arn", "")).split(":", 5)
    if len(parts) == 6:
        doc["arn"] = ":".join([*parts[:4], account, parts[5]])
    return doc


def eventbridge(finding: dict[str, Any]) -> dict[str, Any]:
    """Wrap a finding the way EventBridge delivers it."""
    return {
        "version": "0", "id": f"eb-{finding['id']}", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": finding["accountId"], "time": finding["updatedAt"],
        "region": finding["region"], "resources": [], "detail": finding,
    }


async def seed_key(aws: AwsSession, user: str = DEMO_USER) -> str:
    """Create the IAM user and an access key in the sandbox; returns the key id."""
    await aws.call("iam", "create_user", UserName=user)
    created = await aws.call("iam", "create_access_key", UserName=user)
    return str(created["AccessKey"]["AccessKeyId"])


async def key_status(aws: AwsSession, user: str, key_id: str) -> str:
    """Status of the key as the cloud reports it."""
    listed = await aws.call("iam", "list_access_keys", UserName=user)
    return next(str(k["Status"]) for k in listed["AccessKeyMetadata"] if k["AccessKeyId"] == key_id)


@dataclass
class DemoResult:
    """What the demo observed."""

    key_id: str
    key_status: str
    entries: list[TimelineEntry]
    verified: int
    head: str
    seconds: float
    broker_pid: int | None = None

    @property
    def ok(self) -> bool:
        """The key was deactivated, exactly once, and the timeline verifies."""
        results = [
            e for e in self.entries
            if e.kind == EntryKind.STEP_RESULT and e.body.get("status") == StepStatus.OK
            and e.body.get("target") == self.key_id
        ]
        return self.key_status == "Inactive" and len(results) == 1


def default_timeline_path() -> Path:
    """A fresh file under .responder/ for each demo run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return Path(".responder") / f"demo-{stamp}.jsonl"


def default_runbooks_dir() -> Path:
    """./runbooks when there is one (a checkout); else the runbooks shipped inside the installed wheel."""
    local = Path("runbooks")
    shipped = Path(str(resources.files("responder").joinpath("shipped_runbooks")))
    return local if local.is_dir() or not shipped.is_dir() else shipped


def webhook_settings() -> dict[str, Any]:
    """Settings for `--via webhook`: a bearer-token source (as an EventBridge API destination sends) and signing."""
    return {
        "intake_sources": {"eventbridge": {"auth": "bearer", "keys": {"demo": DEMO_TOKEN}, "format": "guardduty"}},
        "intake_signing_key_id": "intake", "event_signing_keys": {"intake": DEMO_SIGNING},
        "require_signature": ["*"],  # every record: a source listed alone guards only that source (docs/security.md)
    }


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 - loopback http
        "content-type": "application/json", "authorization": f"Bearer {DEMO_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  # nosec B310 # http://127.0.0.1 intake we started
        return int(answer.status)


async def _deliver(settings: Settings, body: bytes, key: bytes, via: str) -> None:
    """Publish to Kafka directly, or POST to an in-process intake as a SIEM would (202 = acknowledged)."""
    bootstrap = settings.kafka_bootstrap or ""
    if via == "kafka":
        await publish(bootstrap, "security.alerts", [body], key=key)
        return
    intake = Intake(settings, AckedProducer(bootstrap, send_timeout=settings.intake_send_timeout_s,
                                        options=kafka_client_options(settings),
                                        max_value_bytes=settings.intake_max_body_bytes))
    async with serving(intake) as port:
        status = await asyncio.to_thread(_post, f"http://127.0.0.1:{port}/v1/events/eventbridge", body)
    if status != 202:
        raise SandboxError(f"the intake answered {status}")


async def run_demo(timeline: Path, runbooks_dir: Path, wait: float = 30.0, via: str = "kafka",
                   sandbox: Sandbox | None = None) -> DemoResult:
    """Start the sandbox and the service, deliver a finding (Kafka or webhook), wait for the response, stop.

    With a started `sandbox` of the caller's, use it and leave it running (`responder demo --keep`).
    """
    started = time.monotonic()
    keep = sandbox is not None
    if sandbox is None:
        sandbox = Sandbox()
        await asyncio.to_thread(sandbox.start)
    broker_pid = sandbox.broker.pid
    try:
        aws = AwsSession(endpoint_url=sandbox.aws.endpoint_url, credentials=SANDBOX_CREDENTIALS)
        given: dict[str, Any] = {
            "kafka_bootstrap": sandbox.broker.bootstrap, "aws_endpoint_url": sandbox.aws.endpoint_url,
            "aws_access_key_id": SANDBOX_CREDENTIALS["aws_access_key_id"],
            "aws_secret_access_key": SANDBOX_CREDENTIALS["aws_secret_access_key"],
            "timeline_path": timeline, "runbooks_dir": runbooks_dir, "session_timeout_ms": 6000,
            "group_id": "responder-demo", **(webhook_settings() if via == "webhook" else {}),
        }
        # the account guard compares the finding's account with the sandbox's, never a configured one; validated as
        # any setting is (a MOTO_ACCOUNT_ID that is no 12 digits is a ConfigError, not an account)
        configured = Settings(**given).aws_account_id
        settings = Settings(**given, aws_account_id=sandbox_account(configured, sandbox.aws.account))
        key_id = await seed_key(aws)
        service = Service(settings)
        task = asyncio.create_task(service.run())
        try:
            await asyncio.wait_for(service.ready.wait(), 30)
            finding = in_account(finding_template(), str(settings.aws_account_id))
            finding["resource"]["accessKeyDetails"]["accessKeyId"] = key_id
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            finding["createdAt"] = finding["updatedAt"] = now
            incident_key = f"{finding['accountId']}:access_key:{key_id}".encode()
            await _deliver(settings, orjson.dumps(eventbridge(finding)), incident_key, via)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not service.engine.state.results():
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # let the batch's commit land before stopping
        finally:
            service.request_stop()
            await asyncio.wait_for(task, 30)
        status = await key_status(aws, DEMO_USER, key_id)
    finally:
        if not keep:
            await asyncio.to_thread(sandbox.stop)
    data = await asyncio.to_thread(timeline.read_bytes)
    entries = list(parse_lines(data.splitlines()))
    count, head = verify_entries(entries)
    return DemoResult(key_id, status, entries, count, head, time.monotonic() - started, broker_pid)
