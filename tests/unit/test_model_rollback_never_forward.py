"""A rollback never serves a version newer than the one served, whatever `from_version` the alert names."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.rollback import RollbackToLastSigned
from tests.modelkit import Keys, NoAws, context, publish


async def _served_v2_tampered(tmp_path: Path, keys: Keys) -> LocalStore:
    """v1..v4 signed, v2 served and tampered since (it no longer verifies), v3 and v4 never served."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2", "v3", "v4"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    found = {v.version: v for v in await store.versions("fraud")}
    await store.set_serving("fraud", found["v2"])
    (Path(found["v2"].location) / "weights.bin").write_bytes(b"tampered")
    return store


@pytest.mark.parametrize("start", ["v99", "v4"])
async def test_an_alerts_from_version_cannot_roll_forward_past_the_served_version(tmp_path, keys, start):
    """from_version unregistered or newer than the served v2: the walk starts below v2 and serves v1, not v3/v4."""
    store = await _served_v2_tampered(tmp_path, keys)
    result = await RollbackToLastSigned().apply(RollbackParams(model="fraud", from_version=start),
                                                context(NoAws(), str(tmp_path / "registry"), keys))
    assert result.outputs["to"] == "v1"
    assert await store.serving("fraud") == "v1"


async def test_an_older_from_version_still_bounds_the_walk(tmp_path, keys):
    """from_version older than the served version: candidates stay strictly older than from_version (none here)."""
    store = await _served_v2_tampered(tmp_path, keys)
    result = await RollbackToLastSigned().plan(RollbackParams(model="fraud", from_version="v1"),
                                               context(NoAws(), str(tmp_path / "registry"), keys))
    assert "would refuse" in result.summary
    assert await store.serving("fraud") == "v2"
