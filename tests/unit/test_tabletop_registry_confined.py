"""In a drill, a runbook step's literal local `registry:` is the drill's sandbox registry, never the directory named."""

from __future__ import annotations

from pathlib import Path

from responder.actuators.context import context_from
from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.rollback import RollbackToLastSigned
from responder.settings import Settings
from responder.tabletop.sandboxed import SandboxSettings
from tests.modelkit import Keys, NoAws, publish


async def _registry(root: Path, work: Path, keys: Keys) -> LocalStore:
    """v1 and v2 signed, v2 served."""
    store = LocalStore(root)
    for version in ("v1", "v2"):
        await publish(store, work, "fraud", version, keys.private)
    await store.set_serving("fraud", {v.version: v for v in await store.versions("fraud")}["v2"])
    return store


async def test_a_drills_step_naming_a_local_registry_acts_on_the_sandbox_registry(tmp_path, keys):
    """registry: /elsewhere in a drill (SandboxSettings): the sandbox registry is rolled back, /elsewhere untouched."""
    sandbox = await _registry(tmp_path / "drill" / "registry", tmp_path / "w1", keys)
    elsewhere = await _registry(tmp_path / "production", tmp_path / "w2", keys)
    settings = SandboxSettings(model_registry=str(tmp_path / "drill" / "registry"), model_trusted_keys=[keys.public])
    params = RollbackParams(model="fraud", from_version="v2", registry=f"file://{tmp_path / 'production'}")
    result = await RollbackToLastSigned().apply(params, context_from(settings, aws=NoAws()))
    assert result.outputs["to"] == "v1"
    assert (await sandbox.serving("fraud"), await elsewhere.serving("fraud")) == ("v1", "v2")


async def test_outside_a_drill_a_steps_local_registry_is_the_one_it_names(tmp_path, keys):
    """The service's own settings: a step's literal registry is honoured, the model_registry setting untouched."""
    default = await _registry(tmp_path / "default", tmp_path / "w1", keys)
    named = await _registry(tmp_path / "named", tmp_path / "w2", keys)
    settings = Settings(model_registry=str(tmp_path / "default"), model_trusted_keys=[keys.public])
    params = RollbackParams(model="fraud", from_version="v2", registry=str(tmp_path / "named"))
    await RollbackToLastSigned().apply(params, context_from(settings, aws=NoAws()))
    assert (await default.serving("fraud"), await named.serving("fraud")) == ("v2", "v1")
