"""A containment step that applies but does not take effect, run by the engine against moto: on-call hears of it."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.models import RawRecord
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.integration.actuator_cases import _instance
from tests.integration.test_runbooks import EXAMPLE_INSTANCE, EXAMPLES, ROOT, RecordingPublisher

pytestmark = pytest.mark.integration
RUNBOOK = "compromised-inference-host"


async def _run(aws: Any, instance: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], RecordingPublisher]:
    """The shipped runbook on its example naming `instance`: step results by step, step.escalated bodies, publisher."""
    books = [b for b in load_runbooks(ROOT / "runbooks", registry) if b.id == RUNBOOK]
    publisher = RecordingPublisher()
    engine = Engine(Recorder(MemoryStore()), registry, aws, context=ActuationContext(aws=aws, publisher=publisher))
    raw = (EXAMPLES / f"{RUNBOOK}.json").read_text().replace(EXAMPLE_INSTANCE, instance)
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw.encode()))
    await engine.recorder.flush()
    entries = list(engine.recorder.entries())
    return ({e.body["step"]: e.body for e in entries if e.kind == "step.result"},
            [e.body for e in entries if e.kind == "step.escalated"], publisher)


async def test_a_snapshot_of_a_host_whose_volumes_were_detached_escalates(aws):
    """The evidence moved off the host before the alert: the snapshot is ok but unverified, and on-call is paged."""
    instance = (await _instance(aws))["instance_id"]
    attached = [{"Name": "attachment.instance-id", "Values": [instance]}]
    volumes = await aws.call("ec2", "describe_volumes", Filters=attached)
    for volume in volumes["Volumes"]:
        await aws.call("ec2", "detach_volume", VolumeId=volume["VolumeId"], InstanceId=instance, Force=True)
    results, escalated, publisher = await _run(aws, instance)
    assert (results["isolate-host"]["status"], results["isolate-host"]["verified"]) == ("ok", True)
    assert (results["snapshot-volumes"]["status"], results["snapshot-volumes"]["verified"]) == ("ok", False)
    assert [(b["step"], b["status"], b["code"]) for b in escalated] == [
        ("snapshot-volumes", "unverified", "Unverified")]
    pages = [body for _, body in publisher.sent if body["title"].startswith("containment failed")]
    assert [(p["fields"]["step"], p["fields"]["status"]) for p in pages] == [("snapshot-volumes", "unverified")]
    assert results["notify-oncall"]["status"] == "ok"  # the run went on


async def test_a_host_contained_and_snapshotted_escalates_nothing(aws):
    """The same runbook on an intact host: every step verifies and nobody is paged about a failure."""
    instance = (await _instance(aws))["instance_id"]
    results, escalated, publisher = await _run(aws, instance)
    assert [r["verified"] for r in results.values()] == [True, True, True]
    assert escalated == []
    assert not any(body["title"].startswith("containment failed") for _, body in publisher.sent)
