"""A rollback never serves a version newer than the one served, whatever `from_version` the alert names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.rollback import RollbackToLastSigned
from responder.errors import PermanentActuationError
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


async def test_an_alerts_from_version_cannot_roll_forward_past_the_served_version(tmp_path, keys):
    """from_version unregistered (v99) while v2 is served: the walk starts below v2 and serves v1, not v3/v4."""
    store = await _served_v2_tampered(tmp_path, keys)
    result = await RollbackToLastSigned().apply(RollbackParams(model="fraud", from_version="v99"),
                                                context(NoAws(), str(tmp_path / "registry"), keys))
    assert result.outputs["to"] == "v1"
    assert await store.serving("fraud") == "v1"


async def test_a_newer_from_version_than_an_unverified_served_one_is_refused(tmp_path, keys):
    """from_version v4 above the served v2, whose place is unverified: NoSignedVersion naming both; v2 stays."""
    store = await _served_v2_tampered(tmp_path, keys)
    with pytest.raises(PermanentActuationError, match=r"v2 \(served\) does not verify.*before v4") as err:
        await RollbackToLastSigned().apply(RollbackParams(model="fraud", from_version="v4"),
                                           context(NoAws(), str(tmp_path / "registry"), keys))
    assert err.value.code == "NoSignedVersion"
    assert await store.serving("fraud") == "v2"


async def test_an_older_from_version_still_bounds_the_walk(tmp_path, keys):
    """from_version older than the served version: candidates stay strictly older than from_version (none here)."""
    store = await _served_v2_tampered(tmp_path, keys)
    result = await RollbackToLastSigned().plan(RollbackParams(model="fraud", from_version="v1"),
                                               context(NoAws(), str(tmp_path / "registry"), keys))
    assert "would refuse" in result.summary
    assert await store.serving("fraud") == "v2"


async def test_an_unsigned_served_version_claiming_an_old_place_gets_a_refusal_that_names_it(tmp_path, keys):
    """Unsigned hotfix served, `created` 2000: the drift rollback from v3 refuses naming hotfix, not 'none older'."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    await publish(store, tmp_path / "w", "fraud", "hotfix", None)
    meta = tmp_path / "registry" / "fraud" / "versions" / "hotfix" / "version.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "created": "2000-01-01T00:00:00+00:00"}))
    found = {v.version: v for v in await store.versions("fraud")}
    assert next(iter(found)) == "hotfix"
    await store.set_serving("fraud", found["hotfix"])
    with pytest.raises(PermanentActuationError, match=r"hotfix \(served\) does not verify") as err:
        await RollbackToLastSigned().apply(RollbackParams(model="fraud", from_version="v3"),
                                           context(NoAws(), str(tmp_path / "registry"), keys))
    assert "no older version registered" not in str(err.value)
    assert await store.serving("fraud") == "hotfix"


async def test_an_unregistered_from_version_with_nothing_registered_served_is_refused(tmp_path, keys):
    """from_version v99 and an unregistered served model: refused, not the newest signed (never deployed) v2."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    with pytest.raises(PermanentActuationError, match="v99 is not a registered version"):
        await RollbackToLastSigned().apply(RollbackParams(model="fraud", from_version="v99"),
                                           context(NoAws(), str(tmp_path / "registry"), keys))
    assert await store.serving("fraud") is None
