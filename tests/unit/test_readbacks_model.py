"""On a local model registry: quarantine_version and switch_version's `outputs_now` (the read that rebuilds a lost
reply's outputs) give back what `apply` returned (the switch's `from` aside: no read can give it), and nothing once
someone else changed the registry."""

from __future__ import annotations

from pathlib import Path

from responder.actuators import registry
from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import VersionParams
from tests.modelkit import Keys, NoAws, context, publish

QUARANTINE = registry.get("model.quarantine_version")
SWITCH = registry.get("model.switch_version")


async def _store(tmp_path: Path, keys: Keys) -> LocalStore:
    """A local registry with v1 and v2 of `fraud` signed, v1 served."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2"):
        await publish(store, tmp_path / "work", "fraud", version, keys.private)
    versions = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", versions["v1"])
    return store


async def test_quarantine_version_reads_back_its_outputs(tmp_path: Path, keys: Keys) -> None:
    """quarantine_version reads back the model, version and reason it applied, and nothing for a version unmarked."""
    store = await _store(tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    p = QUARANTINE.params.model_validate({"model": "fraud", "version": "v2", "reason": "tampered"})
    assert await QUARANTINE.outputs_now(p, ctx) is None
    done = await QUARANTINE.apply(p, ctx)
    assert done.outputs
    assert await QUARANTINE.outputs_now(p, ctx) == done.outputs


async def test_switch_version_reads_back_what_is_served_until_switched_by_hand(tmp_path: Path, keys: Keys) -> None:
    """switch_version reads back all it returned but `from`, and nothing once someone switched the model again."""
    store = await _store(tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    p = VersionParams(model="fraud", version="v2")
    done = await SWITCH.apply(p, ctx)
    assert done.outputs["from"] == "v1"
    assert await SWITCH.outputs_now(p, ctx) == {k: v for k, v in done.outputs.items() if k != "from"}
    versions = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", versions["v1"])
    assert await SWITCH.outputs_now(p, ctx) is None
