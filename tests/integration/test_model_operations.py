"""Rollback through the engine and the operator CLI: rejections, refusal and escalation land on the timeline."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog
from typer.testing import CliRunner

from responder.actuators import registry
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.model.local import LocalStore
from responder.actuators.registry import Registry
from responder.cli.app import app
from responder.engine import Engine
from responder.engine.undo import Undoer
from responder.models.event import Event, Resource, ResourceKind, Severity
from responder.models.runbook import Runbook
from responder.rules.matcher import Match
from responder.timeline import MemoryStore, Recorder
from tests.modelkit import Keys, NoAws, make_model, publish, settings_registry


class NotifyParams(Params):
    """What the fake notifier was asked to say."""

    message: str


class RecordingNotify(Actuator[NotifyParams]):
    """A notifier that remembers its messages."""

    name = "test.notify"
    params = NotifyParams
    permissions = ("none:None",)
    sent: ClassVar[list[str]] = []

    def target(self, p: NotifyParams) -> str:
        return "oncall"

    async def plan(self, p: NotifyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target="oncall", summary=p.message)

    async def apply(self, p: NotifyParams, ctx: ActuationContext) -> ActuationResult:
        self.sent.append(p.message)
        return ActuationResult(changed=True, target="oncall")

    async def verify(self, p: NotifyParams, ctx: ActuationContext) -> bool:
        return True


RUNBOOK = {
    "id": "model-rollback-test",
    "trigger": {"source": "test", "type": "*"},
    "group_by": "${event.incident_key}",
    "steps": [
        {"id": "roll-back", "actuator": "model.rollback_to_last_signed", "on_failure": "continue",
         "with": {"model": "${event.resource.model.id}", "only_if_unverified": True}},
        {"id": "escalate", "actuator": "test.notify",
         "when": [{"field": "steps.roll-back.result.to", "op": "exists", "value": False}],
         "with": {"message": "no signed version of ${event.resource.model.id} to roll back to"}},
    ],
}


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """The CLI binds structlog to CliRunner's streams; restore the defaults for later tests."""
    yield
    structlog.reset_defaults()


@pytest.fixture(name="store")
def _store(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    """A local registry named by the settings, trusting `keys.public`; the settings' timeline in `tmp_path`."""
    return settings_registry(tmp_path, keys, monkeypatch, timeline=True)


def _event() -> Event:
    return Event(id="e1", source="test", type="model.integrity", severity=Severity.of(8), time=datetime.now(UTC),
                 resources=(Resource(kind=ResourceKind.MODEL, id="fraud"),), incident_key="fraud")


async def _run(store_dir: Path) -> list[Any]:
    reg = Registry()
    for name in ("model.rollback_to_last_signed", "model.switch_version"):
        reg.add(registry.get(name))
    reg.add(RecordingNotify())
    recorder = Recorder(MemoryStore())
    await Engine(recorder, reg, NoAws()).handle(Match(Runbook.model_validate(RUNBOOK), _event()))
    await recorder.flush()
    return list(recorder.entries())


async def _served_after_bad(store: LocalStore, tmp_path: Path, keys: Keys, good: bool) -> None:
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private if good else keys.wrong_private)
    await publish(store, tmp_path / "w", "fraud", "v2", None)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])


async def test_engine_records_every_rejection_and_the_switch(store, tmp_path, keys):
    """The step.result body carries from, to and each rejected version with its reason; no escalation."""
    await _served_after_bad(store, tmp_path, keys, good=True)
    await publish(store, tmp_path / "w", "fraud", "v3", keys.wrong_private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])
    RecordingNotify.sent.clear()
    entries = await _run(store.root)
    result = next(e for e in entries if e.kind == "step.result" and e.body["step"] == "roll-back")
    assert result.body["status"] == "ok"
    assert result.body["outputs"]["from"] == "v3"
    assert result.body["outputs"]["to"] == "v1"
    assert [r["reason"] for r in result.body["outputs"]["rejected"]] == ["unsigned"]
    assert RecordingNotify.sent == []


async def test_refusal_fails_permanently_and_escalates(store, tmp_path, keys):
    """No qualifying version: the rollback fails permanently, nothing switches, and the notify step runs."""
    await _served_after_bad(store, tmp_path, keys, good=False)
    RecordingNotify.sent.clear()
    entries = await _run(store.root)
    result = next(e for e in entries if e.kind == "step.result" and e.body["step"] == "roll-back")
    assert result.body["status"] == "failed"
    assert result.body["permanent"] is True
    assert result.body["code"] == "NoSignedVersion"
    assert "v1: untrusted_key" in result.body["error"]
    assert RecordingNotify.sent == ["no signed version of fraud to roll back to"]
    assert await store.serving("fraud") == "v2"


def test_operator_cli_rollback_is_on_the_timeline(store, tmp_path, keys):
    """`responder models rollback` runs the actuator and records a verifiable intent and result."""
    asyncio.run(_served_after_bad(store, tmp_path, keys, good=True))
    runner = CliRunner()
    out = runner.invoke(app, ["models", "rollback", "fraud", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["outputs"]["to"] == "v1"
    intent = next(json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()
                  if json.loads(line)["kind"] == "step.intent")
    assert intent["body"]["params"]["from_version"] == "v2"  # no --from: the version served then, pinned
    checked = runner.invoke(app, ["timeline", "verify", str(tmp_path / "timeline.jsonl"), "--json"])
    assert json.loads(checked.output)["entries"] == 2
    again = runner.invoke(app, ["models", "rollback", "fraud"])
    assert again.exit_code == 1
    moves = runner.invoke(app, ["models", "history", "fraud", "--json"])
    assert [(r["from"], r["to"], r["by"]) for r in json.loads(moves.output)["changes"]] == [
        ("v2", "v1", getpass.getuser())]
    assert asyncio.run(store.serving("fraud")) == "v1"


def test_cli_sign_and_verify_detect_tampering(tmp_path, keys, store):
    """`models verify` passes on a freshly signed directory and exits 1 naming the reason after a change."""
    model = make_model(tmp_path, "m")
    runner = CliRunner()
    signed = runner.invoke(app, ["models", "sign", str(model), "--key", str(keys.private), "--model", "fraud",
                                 "--version", "v9"])
    assert signed.exit_code == 0, signed.output
    ok = runner.invoke(app, ["models", "verify", str(model), "--json"])
    assert ok.exit_code == 0
    assert (json.loads(ok.output)["model"], json.loads(ok.output)["version"]) == ("fraud", "v9")
    (model / "config.json").write_text('{"layers": 3}')
    out = runner.invoke(app, ["models", "verify", str(model), "--json"])
    assert out.exit_code == 1
    assert json.loads(out.output)["reason"] == "tampered"


def test_check_fails_once_the_served_files_change(tmp_path, keys, store):
    """`models check` exits 0 while the served version verifies and 1, naming tampering, after a change."""
    asyncio.run(_served_after_bad(store, tmp_path, keys, good=True))
    runner = CliRunner()
    assert runner.invoke(app, ["models", "switch", "fraud", "v1"]).exit_code == 0
    assert runner.invoke(app, ["models", "check", "fraud"]).exit_code == 0
    (store.root / "fraud" / "versions" / "v1" / "model" / "config.json").write_text("{}")
    out = runner.invoke(app, ["models", "check", "fraud", "--json"])
    assert out.exit_code == 1
    assert json.loads(out.output)["reason"] == "tampered"


async def test_undo_switches_back_only_when_destructive_reverses_are_allowed(store, tmp_path, keys):
    """Undoing a model rollback needs --allow-destructive, then serves v2 again after re-verifying it."""
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    await publish(store, tmp_path / "w", "fraud", "v2", keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])
    weights = store.root / "fraud" / "versions" / "v2" / "model" / "weights.bin"
    original = weights.read_bytes()
    weights.write_bytes(b"tampered")
    recorder = Recorder(MemoryStore())
    reg = Registry()
    for name in ("model.rollback_to_last_signed", "model.switch_version"):
        reg.add(registry.get(name))
    reg.add(RecordingNotify())
    incident = await Engine(recorder, reg, NoAws()).handle(Match(Runbook.model_validate(RUNBOOK), _event()))
    assert await store.serving("fraud") == "v1"
    [skipped] = await Undoer(recorder, reg, NoAws()).undo(incident.id)
    assert skipped["status"] == "skipped"
    assert await store.serving("fraud") == "v1"
    weights.write_bytes(original)
    [done] = await Undoer(recorder, reg, NoAws(), allow_destructive=True).undo(incident.id)
    assert done["status"] == "ok"
    assert await store.serving("fraud") == "v2"
    timeline = tmp_path / "undo.jsonl"
    await recorder.flush()
    timeline.write_bytes(recorder.store.read())
    out = CliRunner().invoke(app, ["models", "history", "fraud", "--timeline", str(timeline), "--json"])
    assert [(r["from"], r["to"]) for r in json.loads(out.output)["changes"]] == [("v2", "v1"), ("v1", "v2")]
