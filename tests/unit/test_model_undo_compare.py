"""Undoing a model rollback is compare-and-set on the serving pointer: a version served since is not replaced."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from responder.actuators import registry
from responder.actuators.model.local import LocalStore
from responder.actuators.model.versions import ModelVersion
from responder.actuators.registry import Registry
from responder.engine import Engine
from responder.engine.undo import Undoer
from responder.errors import TransientActuationError
from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.runbook import Runbook
from responder.rules.matcher import Match
from responder.timeline import MemoryStore, Recorder
from tests.modelkit import Keys, NoAws, publish, settings_registry

RUNBOOK = {
    "id": "model-drift-test",
    "trigger": {"source": "test", "type": "*"},
    "group_by": "${event.incident_key}",
    "steps": [{"id": "roll-back", "actuator": "model.rollback_to_last_signed",
               "with": {"model": "${event.resource.model.id}", "from_version": "v2"}}],
}


def _registry() -> Registry:
    reg = Registry()
    for name in ("model.rollback_to_last_signed", "model.switch_version"):
        reg.add(registry.get(name))
    return reg


async def _rolled_back(tmp_path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, str]:
    """v1..v3 signed; v2 served, rolled back to v1 by a drift runbook; then v3 deployed by hand."""
    store = settings_registry(tmp_path, keys, monkeypatch)
    for version in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    found = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", found["v2"])
    event = Event(id="e1", source="test", type="model.drift", severity=Severity.of(8), time=datetime.now(UTC),
                  resources=(Resource(kind=ResourceKind.MODEL, id="fraud"),), incident_key="fraud")
    recorder = Recorder(MemoryStore())
    incident = await Engine(recorder, _registry(), NoAws()).handle(Match(Runbook.model_validate(RUNBOOK), event))
    assert await store.serving("fraud") == "v1"
    await store.set_serving("fraud", found["v3"])  # a release deployed after the rollback
    return recorder, incident.id


async def test_undo_of_a_rollback_skips_once_another_version_is_served(tmp_path, keys, monkeypatch):
    """v3 served since the rollback: undo (destructive allowed, no --force) skips it, naming the difference."""
    recorder, incident = await _rolled_back(tmp_path, keys, monkeypatch)
    [out] = await Undoer(recorder, _registry(), NoAws(), allow_destructive=True).undo(incident)
    assert out["status"] == "skipped"
    assert "recorded 'v1', now 'v3'" in out["reason"]
    assert await settings_registry(tmp_path, keys, monkeypatch).serving("fraud") == "v3"


async def test_forced_undo_of_a_rollback_still_switches_back(tmp_path, keys, monkeypatch):
    """With --force the undo serves the recorded prior version v2 again (it verifies)."""
    recorder, incident = await _rolled_back(tmp_path, keys, monkeypatch)
    [out] = await Undoer(recorder, _registry(), NoAws(), allow_destructive=True, force=True).undo(incident)
    assert out["status"] == "ok"
    assert await settings_registry(tmp_path, keys, monkeypatch).serving("fraud") == "v2"


async def test_undo_skips_a_rollback_whose_after_state_is_a_release_deployed_during_its_retry(tmp_path, keys,
                                                                                             monkeypatch):
    """A transient first attempt while v4 is deployed: the step records after v4; undo does not serve v3 again."""
    store = settings_registry(tmp_path, keys, monkeypatch)
    for version in ("v1", "v2", "v3", "v4"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    found = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", found["v3"])
    original, armed = LocalStore.versions, [True]

    async def versions(self: LocalStore, model: str) -> list[ModelVersion]:
        if armed and armed.pop():  # the registry throttles once; meanwhile the release pipeline deploys v4
            await self.set_serving(model, found["v4"])
            raise TransientActuationError("SlowDown", code="SlowDown")
        return await original(self, model)

    monkeypatch.setattr(LocalStore, "versions", versions)
    book = {**RUNBOOK, "steps": [{**RUNBOOK["steps"][0], "retries": 2,
                                  "with": {"model": "${event.resource.model.id}", "from_version": "v3"}}]}
    event = Event(id="e1", source="test", type="model.drift", severity=Severity.of(8), time=datetime.now(UTC),
                  resources=(Resource(kind=ResourceKind.MODEL, id="fraud"),), incident_key="fraud")
    recorder = Recorder(MemoryStore())
    incident = await Engine(recorder, _registry(), NoAws()).handle(Match(Runbook.model_validate(book), event))
    [out] = await Undoer(recorder, _registry(), NoAws(), allow_destructive=True).undo(incident.id)
    assert out["status"] == "skipped"
    assert await store.serving("fraud") == "v4"


async def test_undos_read_of_the_serving_pointer_is_bounded_by_the_steps_deadline(tmp_path, keys, monkeypatch):
    """The drift read never returns: undo records a skip naming the deadline instead of waiting on it forever."""
    recorder, incident = await _rolled_back(tmp_path, keys, monkeypatch)

    async def stuck(self: LocalStore, model: str) -> str | None:
        await asyncio.Event().wait()  # an event that never fires: a registry read that hangs
        return None

    monkeypatch.setattr(LocalStore, "serving", stuck)
    undoer = Undoer(recorder, _registry(), NoAws(), allow_destructive=True, deadline=0.05)
    [out] = await asyncio.wait_for(undoer.undo(incident), 30)
    assert out["status"] == "skipped"
    assert "could not read the target within the step's deadline (0.05s)" in out["reason"]
    assert [e.kind for e in recorder.entries()][-1] == "undo.skipped"
