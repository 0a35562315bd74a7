"""The served start version's place in the order only bounds the walk back when a trusted signature attests it."""

from __future__ import annotations

import json
from pathlib import Path

from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.release import RELEASE_NAME
from responder.actuators.model.rollback import RollbackToLastSigned
from tests.modelkit import Keys, NoAws, context, publish


async def _registry(tmp_path: Path, keys: Keys, served: str) -> LocalStore:
    """v1..v4 signed in that order, `served` is served (a registered version)."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2", "v3", "v4"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    if served not in ("v1", "v2", "v3", "v4"):
        await publish(store, tmp_path / "w", "fraud", served, None)
    return store


async def _served(store: LocalStore, version: str) -> Path:
    """Serve `version`; its artifact directory."""
    found = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", found[version])
    return Path(found[version].location)


async def _claim(store: LocalStore, tmp_path: Path, version: str, between: tuple[str, str]) -> None:
    """Write `version`'s version.json so that it claims a place between two signed versions, and serve it."""
    found = {v.version: v for v in await store.versions("fraud")}
    low, high = found[between[0]].created, found[between[1]].created
    meta = tmp_path / "registry" / "fraud" / "versions" / version / "version.json"
    meta.write_text(json.dumps({"created": (low + (high - low) / 2).isoformat()}))
    assert [v.version for v in await store.versions("fraud")].index(version) == 1  # now ordered v1 < it < v2
    await _served(store, version)


async def _rollback(tmp_path: Path, keys: Keys, **start: object) -> str:
    """Run a rollback of fraud from `start` (from_version or only_if_unverified); the version it served."""
    result = await RollbackToLastSigned().apply(RollbackParams.model_validate({"model": "fraud", **start}),
                                                context(NoAws(), str(tmp_path / "registry"), keys))
    return str(result.outputs["to"])


async def test_an_unsigned_served_start_cannot_pick_an_old_signed_version_by_its_own_created(tmp_path, keys):
    """Unsigned served version claiming a place after v1: only_if_unverified serves the newest signed v4, not v1."""
    store = await _registry(tmp_path, keys, "evil")
    await _claim(store, tmp_path, "evil", ("v1", "v2"))
    result = await RollbackToLastSigned().apply(RollbackParams(model="fraud", only_if_unverified=True),
                                                context(NoAws(), str(tmp_path / "registry"), keys))
    assert result.outputs["to"] == "v4"
    assert "evil (served, the start) has no signed place" in str(result.outputs["note"])
    assert await store.serving("fraud") == "v4"


async def test_from_version_naming_the_unsigned_served_version_is_not_placed_by_its_claim(tmp_path, keys):
    """from_version = the unsigned served version claiming an old place: the walk starts above every signed one."""
    store = await _registry(tmp_path, keys, "evil")
    await _claim(store, tmp_path, "evil", ("v1", "v2"))
    assert await _rollback(tmp_path, keys, from_version="evil") == "v4"


async def test_a_tampered_served_version_keeps_the_place_its_signature_attests(tmp_path, keys):
    """Served v2 with changed weights but its signed release statement intact: the walk stays below v2 (v1)."""
    artifact = await _served(await _registry(tmp_path, keys, "v2"), "v2")
    (artifact / "weights.bin").write_bytes(b"tampered")
    assert await _rollback(tmp_path, keys, only_if_unverified=True) == "v1"


async def test_a_served_version_whose_release_statement_was_rewritten_is_not_placed_by_it(tmp_path, keys):
    """Served v3's statement rewritten (no longer the signed one): its claimed place does not bound; v4 is served."""
    statement = await _served(await _registry(tmp_path, keys, "v3"), "v3") / RELEASE_NAME
    statement.write_text(json.dumps({**json.loads(statement.read_text()), "created": "2000-01-01T00:00:00+00:00"}))
    assert await _rollback(tmp_path, keys, only_if_unverified=True) == "v4"
