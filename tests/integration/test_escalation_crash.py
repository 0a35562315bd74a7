"""Against moto: a containment that did not take effect, whose escalation a crash cut short right after
`step.escalated`, still pages on-call once when the alert is redelivered to the restarted engine."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.actuators.notify.kafka import KafkaNotify
from responder.actuators.notify.message import Ledger
from responder.catalog import load_runbooks
from responder.models import RawRecord
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.integration.actuator_cases import _instance
from tests.integration.example_kit import EXAMPLE_INSTANCE, EXAMPLES, ROOT, RecordingPublisher, example_engine

pytestmark = pytest.mark.integration
RUNBOOK = "compromised-inference-host"


async def _handled(aws: Any, store: MemoryStore, raw: bytes) -> RecordingPublisher:
    """A fresh engine recovered from `store` (a restart: its notify actuator remembers no delivery) handles `raw`;
    what it published."""
    notify = registry.get("notify.kafka.publish_message")
    assert isinstance(notify, KafkaNotify)
    notify.ledger = Ledger()
    books = [b for b in load_runbooks(ROOT / "runbooks", registry) if b.id == RUNBOOK]
    engine, publisher = example_engine(aws, store)
    engine.recover()
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    return publisher


def _cut_after_escalated(store: MemoryStore) -> MemoryStore:
    """What a SIGKILL leaves once `step.escalated` is durable and nothing after it is."""
    lines = store.read().splitlines(keepends=True)
    at = max(i for i, line in enumerate(lines) if orjson.loads(line)["kind"] == "step.escalated")
    kept = MemoryStore()
    kept.write(b"".join(lines[:at + 1]))
    kept.sync()
    return kept


def _pages(publisher: RecordingPublisher) -> list[tuple[str, str]]:
    return [(body["fields"]["step"], body["fields"]["status"]) for _, body in publisher.sent
            if body["title"].startswith("containment failed")]


async def test_an_unverified_snapshot_cut_after_its_escalation_pages_once_on_redelivery(aws):
    """An unverified snapshot killed after its escalation, before the page, pages once on redelivery."""
    instance = (await _instance(aws))["instance_id"]
    attached = [{"Name": "attachment.instance-id", "Values": [instance]}]
    for volume in (await aws.call("ec2", "describe_volumes", Filters=attached))["Volumes"]:
        await aws.call("ec2", "detach_volume", VolumeId=volume["VolumeId"], InstanceId=instance, Force=True)
    raw = (EXAMPLES / f"{RUNBOOK}.json").read_text().replace(EXAMPLE_INSTANCE, instance).encode()
    first = MemoryStore()
    assert _pages(await _handled(aws, first, raw)) == [("snapshot-volumes", "unverified")]
    store = _cut_after_escalated(first)
    assert _pages(await _handled(aws, store, raw)) == [("snapshot-volumes", "unverified")]
    entries = list(Recorder(store).entries())
    assert [e.body["step"] for e in entries if e.kind == "step.escalated"] == ["snapshot-volumes"]
    assert [e.body["step"] for e in entries if e.kind == "step.intent"] == [
        "isolate-host", "snapshot-volumes", "escalate-oncall.snapshot-volumes", "notify-oncall"]
    assert _pages(await _handled(aws, store, raw)) == []  # redelivered again: told already
