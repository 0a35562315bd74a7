"""The shipped model runbooks, matched and run by the engine against a real local registry.

Notify and endpoint isolation are stand-ins that record their calls (those actuators have their own
tests); the model actuators, the signatures and the registry are real.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, JsonValue

from responder.actuators import registry
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.model.local import LocalStore
from responder.actuators.registry import Registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.errors import TransientActuationError
from responder.models.event import Event
from responder.normalise import decode_doc, normalise
from responder.rules.matcher import Matcher
from responder.timeline import MemoryStore, Recorder
from tests.modelkit import Keys, NoAws, publish, settings_registry

STAND_INS = ("notify.kafka.publish_message", "aws.sagemaker.isolate_endpoint")
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "runbooks" / "examples"


class IsolateParams(Params):
    """The params of aws.sagemaker.isolate_endpoint, used while that actuator is not registered."""

    endpoint_name: str
    role_names: list[str]


class NotifyParams(Params):
    """The params of notify.kafka.publish_message, used while that actuator is not registered."""

    topic: str
    title: str
    severity: str = "info"
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    key_id: str | None = None


FALLBACK_PARAMS: dict[str, type[Params]] = {"aws.sagemaker.isolate_endpoint": IsolateParams,
                                             "notify.kafka.publish_message": NotifyParams}


class StandIn(Actuator[Any]):
    """Records each call instead of acting; validates with the real actuator's params when it is registered."""

    permissions = ("none:None",)

    def __init__(self, name: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.name = name  # type: ignore[misc]
        self.params = registry.get(name).params if name in registry else FALLBACK_PARAMS[name]  # type: ignore[misc]
        self.calls = calls

    def target(self, p: Any) -> str:
        return self.name

    async def plan(self, p: Any, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.name, summary="stand-in")

    async def apply(self, p: Any, ctx: ActuationContext) -> ActuationResult:
        self.calls.append((self.name, p.model_dump()))
        return ActuationResult(changed=True, target=self.name)

    async def verify(self, p: Any, ctx: ActuationContext) -> bool:
        return True


class World:
    """Registry, engine and recorded stand-in calls for one test."""

    def __init__(self, runbooks_dir: Path) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        reg = Registry()
        for actuator in registry:
            if actuator.name not in STAND_INS:
                reg.add(actuator)
        for name in STAND_INS:
            reg.add(StandIn(name, self.calls))
        self.matcher = Matcher(load_runbooks(runbooks_dir, reg))
        self.recorder = Recorder(MemoryStore())
        self.engine = Engine(self.recorder, reg, NoAws())

    async def send(self, event: Event) -> list[str]:
        """Run every matching runbook; the ids of those that matched."""
        matches = self.matcher.match(event)
        for m in matches:
            await self.engine.handle(m)
        return [m.runbook.id for m in matches]

    def results(self, step: str) -> list[dict[str, Any]]:
        """Bodies of the step.result entries of `step`."""
        return [e.body for e in self.recorder_entries() if e.kind == "step.result" and e.body.get("step") == step]

    def recorder_entries(self) -> list[Any]:
        """Every entry appended so far."""
        self.recorder.flush_sync()
        return list(self.recorder.entries())

    def sent(self, name: str) -> list[dict[str, Any]]:
        """Params of every call of the stand-in `name`."""
        return [p for n, p in self.calls if n == name]


@pytest.fixture(name="store")
def _store(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    """The settings' local registry, trusting `keys.public`."""
    return settings_registry(tmp_path, keys, monkeypatch)


async def _versions(store: LocalStore, tmp_path: Path, signers: list[Path | None]) -> None:
    for i, key in enumerate(signers, start=1):
        await publish(store, tmp_path / "w", "fraud-scorer", f"v{i}", key)
    await store.set_serving("fraud-scorer", (await store.versions("fraud-scorer"))[-1])


def drift(verdict: str, hour: int) -> Event:
    """The drift runbook's example document for another window and verdict, decoded by the real decoder."""
    doc = json.loads((EXAMPLES / "model-drift-sustained.json").read_bytes())
    doc |= {"id": f"drift-{verdict}-{hour}", "verdict": verdict, "time": (T0 + timedelta(hours=hour)).isoformat()}
    [event] = decode_doc(doc)
    return event


def example(runbook: str) -> Event:
    """The runbook's test event from runbooks/examples, decoded by the real decoders."""
    [event] = normalise((EXAMPLES / f"{runbook}.json").read_bytes())
    return event


def test_each_model_runbook_has_an_example_that_matches_only_it(runbooks_dir):
    """runbooks/examples/<id>.json decodes to an event that triggers exactly its runbook."""
    world = World(runbooks_dir)
    for runbook in ("model-artifact-tampered", "model-unsigned-deployed", "model-drift-sustained"):
        assert [m.runbook.id for m in world.matcher.match(example(runbook))] == [runbook]


async def test_suspected_drift_only_notifies(store, tmp_path, keys, runbooks_dir):
    """Suspected drift notifies once per incident, however many windows, and never switches the model."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    world = World(runbooks_dir)
    for hour in range(4):
        assert await world.send(drift("suspected", hour)) == ["model-drift-sustained"]
    assert [p["title"] for p in world.sent("notify.kafka.publish_message")] == ["model drift suspected"]
    assert world.results("roll-back") == []
    assert await store.serving("fraud-scorer") == "v3"


async def test_detected_drift_rolls_back_on_the_third_window(store, tmp_path, keys, runbooks_dir):
    """Two detected windows do nothing; the third rolls v3 back to v2; a fourth changes nothing more."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    world = World(runbooks_dir)
    await world.send(drift("detected", 0))
    await world.send(drift("detected", 1))
    assert await store.serving("fraud-scorer") == "v3"
    await world.send(drift("detected", 2))
    assert await store.serving("fraud-scorer") == "v2"
    await world.send(drift("detected", 3))
    assert await store.serving("fraud-scorer") == "v2"
    assert [r["outputs"]["to"] for r in world.results("roll-back") if r.get("status") == "ok"] == ["v2"]
    assert world.sent("notify.kafka.publish_message") == []


async def test_detected_windows_spread_beyond_four_hours_do_not_roll_back(store, tmp_path, keys, runbooks_dir):
    """Detected at hours 0, 2, 4 and 6 is never 3 of the last 4 windows: the model keeps serving."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    world = World(runbooks_dir)
    for hour in (0, 2, 4, 6):
        await world.send(drift("detected", hour))
    assert await store.serving("fraud-scorer") == "v3"
    assert world.results("roll-back") == []


async def test_a_redelivered_drift_window_is_not_counted_twice(store, tmp_path, keys, runbooks_dir):
    """The same detected window delivered three times counts once; no rollback."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    world = World(runbooks_dir)
    for _ in range(3):
        await world.send(drift("detected", 0))
    await world.send(drift("detected", 1))
    assert await store.serving("fraud-scorer") == "v3"


async def test_drift_with_no_signed_predecessor_escalates(store, tmp_path, keys, runbooks_dir):
    """When no older version verifies, the rollback fails permanently and the escalation notifies once."""
    await _versions(store, tmp_path, [None, keys.wrong_private, keys.private])
    world = World(runbooks_dir)
    for hour in range(4):
        await world.send(drift("detected", hour))
    assert await store.serving("fraud-scorer") == "v3"
    failed = [r for r in world.results("roll-back") if r.get("status") == "failed"]
    assert failed[0]["code"] == "NoSignedVersion"
    assert [p["severity"] for p in world.sent("notify.kafka.publish_message")] == ["high"]


async def test_unsigned_deployment_is_rolled_back_and_quarantined(store, tmp_path, keys, runbooks_dir):
    """UpdateEndpoint to an unsigned v3: roll back to v2 and quarantine v3."""
    await _versions(store, tmp_path, [keys.private, keys.private, None])
    world = World(runbooks_dir)
    assert await world.send(example("model-unsigned-deployed")) == ["model-unsigned-deployed"]
    assert await store.serving("fraud-scorer") == "v2"
    assert await store.quarantined("fraud-scorer") == {"v3"}


async def test_signed_deployment_is_left_alone(store, tmp_path, keys, runbooks_dir):
    """UpdateEndpoint to a signed v3 is a normal release: nothing switched, quarantined or sent."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    world = World(runbooks_dir)
    await world.send(example("model-unsigned-deployed"))
    assert await store.serving("fraud-scorer") == "v3"
    assert await store.quarantined("fraud-scorer") == set()
    assert world.sent("notify.kafka.publish_message") == []


async def test_tampered_artifact_isolates_rolls_back_and_quarantines(store, tmp_path, keys, runbooks_dir):
    """An integrity alarm on a v3 whose weights changed: isolate, serve v2, quarantine v3."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    (store.root / "fraud-scorer" / "versions" / "v3" / "model" / "weights.bin").write_bytes(b"backdoored")
    world = World(runbooks_dir)
    assert await world.send(example("model-artifact-tampered")) == ["model-artifact-tampered"]
    assert world.sent("aws.sagemaker.isolate_endpoint")[0]["endpoint_name"] == "fraud-scorer"
    assert await store.serving("fraud-scorer") == "v2"
    assert {q for q in await store.quarantined("fraud-scorer") if not q.startswith("sha256.")} == {"v3"}
    assert world.sent("notify.kafka.publish_message") == []


async def test_uncorroborated_integrity_alarm_switches_nothing_and_tells_a_human(store, tmp_path, keys,
                                                                                 runbooks_dir):
    """An integrity alarm while the served version verifies: no switch, no quarantine, one notification."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    world = World(runbooks_dir)
    await world.send(example("model-artifact-tampered"))
    assert await store.serving("fraud-scorer") == "v3"
    assert await store.quarantined("fraud-scorer") == set()
    assert [p["title"] for p in world.sent("notify.kafka.publish_message")] == [
        "model-integrity alarm, but the served version verifies"]


async def test_tampered_rollback_with_a_lost_reply_never_skips_the_quarantine_silently(
        store, tmp_path, keys, runbooks_dir, monkeypatch):
    """The rollback's reply lost after it switched: `corroborated` no read gives back, so quarantine fails and pages."""
    await _versions(store, tmp_path, [keys.private, keys.private, keys.private])
    (store.root / "fraud-scorer" / "versions" / "v3" / "model" / "weights.bin").write_bytes(b"backdoored")
    rollback = registry.get("model.rollback_to_last_signed")
    real = rollback.apply

    async def lost(p: Any, ctx: ActuationContext) -> ActuationResult:
        await real(p, ctx)
        monkeypatch.setattr(rollback, "apply", real)
        raise TransientActuationError("ssm read-back throttled", code="Throttling")

    monkeypatch.setattr(rollback, "apply", lost)
    world = World(runbooks_dir)
    await world.send(example("model-artifact-tampered"))
    assert await store.serving("fraud-scorer") == "v2"
    [rolled] = world.results("roll-back")
    assert (rolled["status"], rolled["outputs"]["to"], rolled["outputs_rebuilt"]) == ("ok", "v2", True)
    assert {"corroborated", "from"} <= set(rolled["outputs_lost"])
    [quarantine] = world.results("quarantine")
    assert quarantine["status"] == "failed"
    unread = "steps.roll-back.result.corroborated, steps.roll-back.result.from cannot be read"
    assert unread in quarantine["error"]
    assert [(p["title"], p["fields"]["step"]) for p in world.sent("notify.kafka.publish_message")] == [
        ("model artifact tampered: quarantine failed (model.quarantine_version)", "quarantine")]
