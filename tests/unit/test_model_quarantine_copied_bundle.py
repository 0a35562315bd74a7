"""Quarantine marks an artifact digest only from a bundle that verifies as the quarantined version's own."""

from __future__ import annotations

import shutil

from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import VersionParams
from responder.actuators.model.quarantine import QuarantineVersion
from responder.actuators.model.selection import check
from responder.actuators.model.versions import digest_mark
from tests.modelkit import NoAws, context, publish


async def test_an_unsigned_version_with_a_copied_bundle_does_not_get_the_good_artifact_quarantined(tmp_path, keys):
    """hotfix (unsigned weights, v2's model.sig copied) quarantined: only its name is marked; v2 still verifies."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v1", "v2"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    await publish(store, tmp_path / "w", "fraud", "hotfix", None)
    versions = tmp_path / "registry" / "fraud" / "versions"
    shutil.copyfile(versions / "v2" / "model.sig", versions / "hotfix" / "model.sig")
    ctx = context(NoAws(), str(tmp_path / "registry"), keys)
    await QuarantineVersion().apply(VersionParams(model="fraud", version="hotfix", reason="unsigned"), ctx)
    found = {v.version: v for v in await store.versions("fraud")}
    assert found["hotfix"].digest == found["v2"].digest  # the copied bundle claims v2's artifact
    assert await store.quarantined("fraud") == {"hotfix"}
    assert (await check(store, found["v2"], [keys.public], await store.quarantined("fraud"))).ok


async def test_a_signed_version_still_has_its_artifact_digest_marked(tmp_path, keys):
    """v2 signed and quarantined: its name and its verified artifact digest are both marked."""
    store = LocalStore(tmp_path / "registry")
    await publish(store, tmp_path / "w", "fraud", "v2", keys.private)
    ctx = context(NoAws(), str(tmp_path / "registry"), keys)
    await QuarantineVersion().apply(VersionParams(model="fraud", version="v2", reason="bad"), ctx)
    [v2] = await store.versions("fraud")
    assert await store.quarantined("fraud") == {"v2", digest_mark(v2.digest or "")}
