"""Through the moto server: a step whose reply was lost after it acted (settled by verify() on its retry, or an open
intent resolved after a crash) still feeds its outputs, read back from AWS, to the later steps of the shipped
runbook (compromised-inference-host's page names the snapshots taken)."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.errors import TransientActuationError
from responder.models import RawRecord
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore
from tests.fakes import Killed
from tests.integration.actuator_cases import _instance
from tests.integration.example_kit import EXAMPLE_INSTANCE, EXAMPLES, ROOT, example_engine


class LostReply:
    """An AWS caller whose first `operation` call is made, then its reply lost: a transient error, or (`kill`) the
    process dying, once the call took effect."""

    def __init__(self, aws: Any, operation: str, *, kill: bool = False) -> None:
        self.aws, self.operation, self.kill, self.lost = aws, operation, kill, False

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Pass the call to moto; lose the reply of the first `operation`."""
        got: dict[str, Any] = await self.aws.call(service, operation, **kwargs)
        if operation == self.operation and not self.lost:
            self.lost = True
            if self.kill:
                raise Killed
            raise TransientActuationError("read timeout: the reply was lost", code="Timeout")
        return got


async def _host(aws: Any) -> tuple[str, bytes]:
    instance = str((await _instance(aws))["instance_id"])
    raw = (EXAMPLES / "compromised-inference-host.json").read_text().replace(EXAMPLE_INSTANCE, instance)
    return instance, raw.encode()


async def _snapshots(aws: Any, instance: str) -> list[str]:
    found = await aws.call("ec2", "describe_snapshots", OwnerIds=["self"],
                           Filters=[{"Name": "tag:responder:instance", "Values": [instance]}])
    return sorted(str(s["SnapshotId"]) for s in found["Snapshots"])


async def test_snapshot_settled_by_verify_still_feeds_the_page(aws: Any) -> None:
    """create_snapshot's reply lost: one snapshot, recorded with its id read back, named by notify-oncall's page."""
    instance, raw = await _host(aws)
    engine, publisher = example_engine(LostReply(aws, "create_snapshot"))
    books = load_runbooks(ROOT / "runbooks", registry)
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    results = {e.body["step"]: e.body for e in engine.recorder.entries() if e.kind == "step.result"}
    taken = await _snapshots(aws, instance)
    assert len(taken) == 1
    snap = results["snapshot-volumes"]
    assert (snap["status"], snap["verified"], snap["outputs_rebuilt"]) == ("ok", True, True)
    assert snap["outputs"] == {"snapshot_ids": taken}
    assert "outputs_lost" not in snap
    assert results["notify-oncall"]["status"] == "ok"
    assert [(body["title"], body["fields"]["snapshots"]) for _, body in publisher.sent] == [
        ("inference host isolated and snapshotted", taken)]


async def test_snapshot_recovered_after_a_crash_still_feeds_the_page(aws: Any) -> None:
    """The process killed once create_snapshot took: the restart records the snapshot ids read back and pages them."""
    instance, raw = await _host(aws)
    store = MemoryStore()
    books = load_runbooks(ROOT / "runbooks", registry)
    crashed, _ = example_engine(LostReply(aws, "create_snapshot", kill=True), store)
    with pytest.raises(Killed):
        await Pipeline(books, crashed).handle(RawRecord(topic="alerts", value=raw))
    engine, publisher = example_engine(aws, store)
    engine.recover()
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    results = {e.body["step"]: e.body for e in engine.recorder.entries() if e.kind == "step.result"}
    taken = await _snapshots(aws, instance)
    assert len(taken) == 1
    assert results["snapshot-volumes"]["recovered"] is True
    assert results["snapshot-volumes"]["outputs"] == {"snapshot_ids": taken}
    assert [(body["title"], body["fields"]["snapshots"]) for _, body in publisher.sent] == [
        ("inference host isolated and snapshotted", taken)]
