"""Rollback to the last signed version on a real local registry with real model-signing bundles."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.actuators.model import ModelConfig
from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams, VersionParams
from responder.errors import PermanentActuationError
from tests.modelkit import Keys, NoAws, context, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")
SWITCH = registry.get("model.switch_version")
QUARANTINE = registry.get("model.quarantine_version")


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> LocalStore:
    """An empty local registry."""
    return LocalStore(tmp_path / "registry")


async def _history(store: LocalStore, tmp_path: Path, keys: Keys) -> None:
    """v1 good, v2 good but quarantined, v3 wrong key, v4 unsigned, v5 tampered after signing, v6 served."""
    work = tmp_path / "work"
    for version, key in (("v1", keys.private), ("v2", keys.private), ("v3", keys.wrong_private),
                         ("v4", None), ("v5", keys.private), ("v6", keys.private)):
        await publish(store, work, "fraud", version, key)
    await store.quarantine("fraud", "v2", "bad data")
    weights = store.root / "fraud" / "versions" / "v5" / "model" / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0x01
    weights.write_bytes(bytes(data))
    versions = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", versions["v6"])


async def test_walk_skips_tampered_unsigned_wrong_key_and_quarantined(store, tmp_path, keys):
    """From v6 the rollback skips v5..v2, each with its reason, and serves v1."""
    await _history(store, tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v6"), ctx)
    assert result.changed
    assert (result.outputs["from"], result.outputs["to"]) == ("v6", "v1")
    reasons = [(r["version"], r["reason"]) for r in result.outputs["rejected"]]  # type: ignore[index, union-attr]
    assert reasons == [("v5", "tampered"), ("v4", "unsigned"), ("v3", "untrusted_key"), ("v2", "quarantined")]
    assert (store.root / "fraud" / "serving").read_text().strip() == "v1"
    assert await ROLLBACK.verify(RollbackParams(model="fraud", from_version="v6"), ctx)


async def test_no_signed_version_left_refuses_and_switches_nothing(store, tmp_path, keys):
    """When every older version is rejected the step fails permanently and the pointer stays put."""
    await _history(store, tmp_path, keys)
    await store.quarantine("fraud", "v1", "also bad")
    ctx = context(NoAws(), str(store.root), keys)
    with pytest.raises(PermanentActuationError) as info:
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v6"), ctx)
    assert info.value.code == "NoSignedVersion"
    assert "v5: tampered" in str(info.value)
    assert "v1: quarantined" in str(info.value)
    assert await store.serving("fraud") == "v6"


async def test_rollback_from_a_named_version_is_idempotent(store, tmp_path, keys):
    """Applied twice for the same bad version, the second call changes nothing."""
    await _history(store, tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    params = RollbackParams(model="fraud", from_version="v6")
    first = await ROLLBACK.apply(params, ctx)
    second = await ROLLBACK.apply(params, ctx)
    assert first.changed
    assert not second.changed
    assert second.outputs["to"] == "v1"


async def test_no_trusted_key_configured_means_refusal(store, tmp_path, keys):
    """With no trusted key configured nothing verifies, so nothing is switched."""
    await _history(store, tmp_path, keys)
    config = ModelConfig(registry=str(store.root), trusted_keys=())
    ctx = ActuationContext(aws=NoAws(), models=config)
    with pytest.raises(PermanentActuationError, match="v1: no_trusted_keys"):
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v6"), ctx)
    assert await store.serving("fraud") == "v6"


async def test_reverse_switches_back_and_needs_approval(store, tmp_path, keys):
    """The reverse is the destructive switch_version with the prior version; it restores v6."""
    await _history(store, tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v6"), ctx)
    assert ROLLBACK.reverse == SWITCH.name
    assert SWITCH.destructive
    back = ROLLBACK.reverse_params(RollbackParams(model="fraud", from_version="v6"), result)
    assert back is not None
    assert back["version"] == "v6"
    undone = await SWITCH.apply(VersionParams.model_validate(back), ctx)
    assert undone.changed
    assert await store.serving("fraud") == "v6"


async def test_switch_refuses_a_quarantined_version(store, tmp_path, keys):
    """A quarantined version is never served, even on an operator's switch."""
    await _history(store, tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    with pytest.raises(PermanentActuationError, match="quarantined"):
        await SWITCH.apply(VersionParams(model="fraud", version="v2"), ctx)
    assert await store.serving("fraud") == "v6"


async def test_quarantine_is_idempotent(store, tmp_path, keys):
    """Quarantining twice changes state once and verifies both times."""
    await publish(store, tmp_path / "work", "fraud", "v1", keys.private)
    ctx = context(NoAws(), str(store.root), keys)
    params = VersionParams(model="fraud", version="v1", reason="drift")
    assert (await QUARANTINE.apply(params, ctx)).changed
    assert not (await QUARANTINE.apply(params, ctx)).changed
    assert await QUARANTINE.verify(params, ctx)


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", ".hidden", "", "x" * 80])
def test_names_that_could_escape_the_registry_are_rejected(bad):
    """Model and version names are patterns, never paths."""
    with pytest.raises(ValidationError):
        VersionParams(model="fraud", version=bad)
    with pytest.raises(ValidationError):
        RollbackParams(model=bad)


async def test_store_rejects_traversal_even_without_params(store):
    """The store checks names itself, so a caller that skips the params model cannot escape either."""
    with pytest.raises(PermanentActuationError):
        await store.quarantine("fraud", "../../outside", "x")
    assert not (store.root.parent / "outside.json").exists()


async def test_stale_alert_does_not_roll_back_a_newer_good_version(store, tmp_path, keys):
    """An alert about v5 after a good v7 was deployed changes nothing."""
    await _history(store, tmp_path, keys)
    await publish(store, tmp_path / "work", "fraud", "v7", keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v5"), context(NoAws(), str(store.root),
                                                                                            keys))
    assert not result.changed
    assert await store.serving("fraud") == "v7"


async def test_integrity_alert_about_a_good_version_is_not_corroborated(store, tmp_path, keys):
    """With only_if_unverified, an alert naming a version that verifies switches nothing."""
    await _history(store, tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v6", only_if_unverified=True), ctx)
    assert not result.changed
    assert result.outputs["corroborated"] is False
    assert await store.serving("fraud") == "v6"


async def test_integrity_alert_about_a_tampered_version_rolls_back(store, tmp_path, keys):
    """With only_if_unverified, a served version whose files changed is rolled back."""
    await _history(store, tmp_path, keys)
    (store.root / "fraud" / "versions" / "v6" / "model" / "extra.bin").write_bytes(b"implant")
    ctx = context(NoAws(), str(store.root), keys)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v6", only_if_unverified=True), ctx)
    assert result.outputs["to"] == "v1"


async def test_plan_names_the_version_it_would_serve_and_switches_nothing(store, tmp_path, keys):
    """The dry-run preview walks the registry read-only: it names v1 and the skipped versions."""
    await _history(store, tmp_path, keys)
    p = RollbackParams(model="fraud", from_version="v6")
    preview = await ROLLBACK.plan(p, context(NoAws(), str(store.root), keys))
    assert "would serve v1 instead of v6" in preview.summary
    assert "v5 (tampered)" in preview.summary
    assert await store.serving("fraud") == "v6"


@pytest.mark.parametrize(("version", "reason"), [("v5", "tampered"), ("v4", "unsigned"), ("v3", "untrusted_key")])
async def test_switch_reverifies_the_signature_before_switching(store, tmp_path, keys, version, reason):
    """An operator's switch to a tampered, unsigned or wrongly signed version is refused; the pointer stays."""
    await _history(store, tmp_path, keys)
    ctx = context(NoAws(), str(store.root), keys)
    with pytest.raises(PermanentActuationError) as info:
        await SWITCH.apply(VersionParams(model="fraud", version=version), ctx)
    assert info.value.code == "NotVerified"
    assert reason in str(info.value)
    assert await store.serving("fraud") == "v6"


async def test_quarantine_follows_the_artifact_digest_not_just_the_name(store, tmp_path, keys):
    """The quarantined v1's signed artifact re-published as v9 is refused by switch and skipped by rollback."""
    await publish(store, tmp_path / "work", "fraud", "v1", keys.private)
    ctx = context(NoAws(), str(store.root), keys)
    assert (await QUARANTINE.apply(VersionParams(model="fraud", version="v1", reason="poisoned"), ctx)).changed
    v1 = next(v for v in await store.versions("fraud") if v.version == "v1")
    assert v1.signature is not None
    await store.publish("fraud", "v9", Path(v1.location), Path(v1.signature))
    await publish(store, tmp_path / "work", "fraud", "v10", keys.private)
    with pytest.raises(PermanentActuationError, match="quarantined"):
        await SWITCH.apply(VersionParams(model="fraud", version="v9"), ctx)
    versions = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", versions["v10"])
    with pytest.raises(PermanentActuationError, match="v9: quarantined"):
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v10"), ctx)
