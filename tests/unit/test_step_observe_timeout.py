"""The read of a step's prior state (`observe()`) is bounded by the step's timeout, as the step itself is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from responder.actuators import registry
from responder.actuators.model.local import LocalStore
from responder.actuators.registry import Registry
from responder.engine import Engine
from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.runbook import Runbook
from responder.rules.matcher import Match
from responder.timeline import MemoryStore, Recorder
from tests.modelkit import NoAws, publish, settings_registry

RUNBOOK = {
    "id": "t", "trigger": {"source": "test", "type": "*"}, "group_by": "${event.incident_key}",
    "steps": [{"id": "roll-back", "actuator": "model.rollback_to_last_signed", "timeout": 0.2,
               "with": {"model": "${event.resource.model.id}", "only_if_unverified": True}}],
}


async def test_a_serving_read_that_never_settles_fails_the_step_timeout(tmp_path, keys, monkeypatch):
    """The first serving() read (observe's) never returns: the step fails Timeout instead of waiting on it."""
    store = settings_registry(tmp_path, keys, monkeypatch)
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    await publish(store, tmp_path / "w", "fraud", "v2", None)
    await store.set_serving("fraud", {v.version: v for v in await store.versions("fraud")}["v2"])
    original, first = LocalStore.serving, [True]

    async def serving(self: LocalStore, model: str) -> str | None:
        if first and first.pop():  # a SageMaker endpoint still Updating: settled() would poll for minutes
            await asyncio.Event().wait()
        return await original(self, model)

    monkeypatch.setattr(LocalStore, "serving", serving)
    reg = Registry()
    reg.add(registry.get("model.rollback_to_last_signed"))
    event = Event(id="e1", source="test", type="x", severity=Severity.of(8), time=datetime.now(UTC),
                  resources=(Resource(kind=ResourceKind.MODEL, id="fraud"),), incident_key="fraud")
    recorder = Recorder(MemoryStore())
    await asyncio.wait_for(Engine(recorder, reg, NoAws()).handle(Match(Runbook.model_validate(RUNBOOK), event)), 30)
    await recorder.flush()
    results = [orjson.loads(line) for line in recorder.store.read().splitlines() if b'"step.result"' in line]
    assert [(r["body"]["status"], r["body"]["code"]) for r in results] == [("failed", "Timeout")]
