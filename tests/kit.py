"""Build an engine and pipeline over runbooks written as YAML text, with fakes and a controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from responder.actuators.registry import Registry
from responder.actuators.retry import VerifySettle
from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, ApproverKeys, signed_headers
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.engine.approvals import MemoryPublisher
from responder.engine.guards import GuardPolicy, Guards
from responder.fleet import FleetState
from responder.ingest.gate import Gate
from responder.models import RawRecord
from responder.models.approval import ApprovalDecision
from responder.models.runbook import Runbook
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import Echo, FakeIam, Wipe, test_registry
from tests.findings import envelope_bytes, guardduty_finding

KEY = "AKIAABCDEFGHIJKLMNOP"
SECRET = b"approval-secret"
APPROVER_KEYS = ApproverKeys({"k1": SECRET, "k-bob": b"bob-secret", "k-nobody": b"nobody-secret"},
                             identities={"k1": "alice", "k-bob": "bob"}, max_lifetime=3600)
DEACTIVATE_STEPS = """\
steps:
  - id: deactivate
    actuator: aws.iam.deactivate_access_key
    with:
      user_name: "${event.resource.access_key.attributes.user_name}"
      access_key_id: "${event.resource.access_key.id}"
"""


def deactivate_key_step(retries: int | str) -> str:
    """A `steps:` item `deactivate-key`: aws.iam.deactivate_access_key on the finding's key and user, with `retries`."""
    return f"""\
  - id: deactivate-key
    actuator: aws.iam.deactivate_access_key
    retries: {retries}
    with:
      user_name: ${{event.resource.access_key.attributes.user_name}}
      access_key_id: ${{event.resource.access_key.id}}
"""


PAGE_ON_FAILURE = """\
on_failure:
  - id: page
    actuator: notify.kafka.publish_message
    with:
      topic: responder.notifications
      title: "${failure.step} ${failure.status}"
      severity: critical
      fields: {target: "${failure.target}", error: "${failure.error}", user_name: "not an IAM name"}
"""
"""A runbook's escalation that pages on the notifications topic, naming the failed step's target and error in its
fields (`user_name` a param a protected-id guard must not read as a target: a page is never refused)."""
HEADER = """\
id: {id}
trigger: {{source: guardduty, type: "*IAMUser/*"}}
group_by: "${{event.resource.access_key.id}}"
"""
WIPE = """\
steps:
  - id: wipe
    actuator: test.wipe
    with: {target: t1}
    approval: {approvers: [alice], timeout: 10m, on_timeout: %s}
  - id: note
    actuator: test.echo
    with: {target: t2, message: after}
"""
"""A destructive step (test.wipe) that waits for alice's approval (`% on_timeout`: approve or deny), then an echo."""
ECHO = """\
{guards}
steps:
  - id: note
    actuator: test.echo
    with: {{target: "${{event.resource.access_key.attributes.user_name}}", message: hi}}
"""
"""Guards (`.format(guards=...)`) and one echo step naming the finding's user."""
MISSING_KEY = "AKIAZZZZZZZZZZZZZZZZ"  # not in the fake IAM: deactivating it fails
ESCALATE = """\
on_failure:
  - id: tell
    actuator: test.echo
    with: {target: oncall, message: "${failure.step} failed"}
"""
"""An `on_failure` that tells on-call through test.echo, naming the failed step."""
BATCH_RUNBOOK = Runbook.model_validate({
    "id": "deactivate", "trigger": {"source": "guardduty", "type": "*IAMUser/*",
                                    "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]},
    "steps": [{"id": "deactivate", "actuator": "aws.iam.deactivate_access_key",
               "with": {"user_name": "${event.resource.iam_user.id}",
                        "access_key_id": "${event.resource.access_key.id}"}}],
})


class Clock:
    """A settable wall clock (epoch seconds)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Kit:
    """Everything a unit test of the engine touches."""

    store: MemoryStore
    iam: FakeIam
    echo: Echo
    wipe: Wipe
    publisher: MemoryPublisher
    clock: Clock
    runbooks_dir: Path
    registry: Registry
    policy: GuardPolicy = field(default_factory=GuardPolicy)
    dry_run: bool = False
    pipeline: Pipeline | None = None
    settle: VerifySettle | None = None

    def start(self) -> Pipeline:
        """A fresh engine recovered from the store (as after a restart) and its pipeline."""
        reg = self.registry
        engine = Engine(Recorder(self.store), reg, self.iam, dry_run=self.dry_run,
                        guards=Guards(self.policy), publisher=self.publisher,
                        approval_keys=APPROVER_KEYS, clock=self.clock, verify_settle=self.settle)
        engine.recover()
        self.pipeline = Pipeline(load_runbooks(self.runbooks_dir, reg), engine)
        return self.pipeline

    @property
    def engine(self) -> Engine:
        """The current engine."""
        assert self.pipeline is not None
        return self.pipeline.engine

    async def send(self, key: str = KEY, user: str = "ml-training", **kw: Any) -> None:
        """Handle one GuardDuty finding naming `key` and flush."""
        assert self.pipeline is not None
        await self.pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(key, user, **kw))))
        await self.engine.recorder.flush()

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the durable entries (of one kind)."""
        return [e.body for e in Recorder(self.store).entries() if kind is None or e.kind == kind]

    def kinds(self) -> list[str]:
        """Kinds of the durable entries, in order."""
        return [e.kind for e in Recorder(self.store).entries()]


def make_kit(tmp_path: Path, runbooks: dict[str, str], **kw: Any) -> Kit:
    """Write runbooks (name → YAML body after the shared header) and build the kit."""
    d = tmp_path / "runbooks"
    d.mkdir(exist_ok=True)
    for name, body in runbooks.items():
        (d / f"{name}.yaml").write_text(HEADER.format(id=name) + body)
    reg, echo, wipe = test_registry()
    iam = FakeIam()
    iam.add_key("ml-training", KEY)
    kit = Kit(MemoryStore(), iam, echo, wipe, MemoryPublisher(), Clock(), d, reg, **kw)
    kit.start()
    return kit


def decision(kit: Kit, incident: str, step: str, verdict: str = "approve", *, by: str = "alice",
             digest: str | None = None, ttl: float = 600, secret: bytes = SECRET,
             key_id: str = "k1", request: str | None = None) -> tuple[bytes, str, str]:
    """A signed decision as it arrives from Kafka: (value, key id, signature), answering the step's request (its
    parking's id) unless `request` names another."""
    parked = kit.engine.state.parked(incident, step)
    now = datetime.fromtimestamp(kit.clock(), UTC)
    d = ApprovalDecision(incident=incident, step=step, decision=verdict, by=by,  # type: ignore[arg-type]
                         digest=digest or (parked.digest if parked else "0" * 64), issued_at=now,
                         expires_at=now + timedelta(seconds=ttl),
                         request_id=request or (parked.request_id if parked else None))
    value = d.canonical()
    headers = dict(signed_headers(key_id, secret, value))
    return value, headers[KEY_ID_HEADER].decode(), headers[SIGNATURE_HEADER].decode()


async def restore(fleet: FleetState, partitions: Iterable[int]) -> set[int]:
    """What the service's background restores do, in one call and one partition after another: fetch and adopt
    each partition not yet owned, apply the held decisions; the partitions that could not be restored."""
    for partition in sorted(set(partitions) - fleet.owned):
        slices = await fleet.fetch(partition)
        if slices is not None:
            fleet.adopt(partition, slices)
    await fleet.release_held()
    return set(fleet.failed)


async def chunk_in_hand(gate: Gate) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A lane holding `gate`'s shared side (a chunk in hand) until the returned event is set; returns once it holds
    it, with its task."""
    in_hand, done = asyncio.Event(), asyncio.Event()

    async def lane() -> None:
        async with gate.shared():
            in_hand.set()
            await done.wait()

    task = asyncio.create_task(lane())
    await in_hand.wait()
    return task, done
