"""A version named like an artifact digest's mark cannot make a quarantine step quarantine another version."""

from __future__ import annotations

import pytest

from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams, VersionParams
from responder.actuators.model.quarantine import QuarantineVersion
from responder.actuators.model.rollback import RollbackToLastSigned
from responder.actuators.model.selection import check
from responder.actuators.model.versions import digest_mark
from responder.errors import PermanentActuationError
from tests.modelkit import NoAws, context, publish


async def test_an_unsigned_deploy_named_after_a_good_digest_does_not_get_it_quarantined(tmp_path, keys):
    """Served `sha256.<v6's digest>` (unsigned): rolled back to v6, the quarantine step refuses; v6 stays servable."""
    store = LocalStore(tmp_path / "registry")
    for version in ("v5", "v6"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    v6 = {v.version: v for v in await store.versions("fraud")}["v6"]
    assert v6.digest is not None
    evil = digest_mark(v6.digest)
    await publish(store, tmp_path / "w", "fraud", evil, None)
    await store.set_serving("fraud", {v.version: v for v in await store.versions("fraud")}[evil])
    ctx = context(NoAws(), str(tmp_path / "registry"), keys)
    rolled = await RollbackToLastSigned().apply(RollbackParams(model="fraud", only_if_unverified=True), ctx)
    assert (rolled.outputs["from"], rolled.outputs["to"]) == (evil, "v6")
    with pytest.raises(PermanentActuationError) as refused:
        await QuarantineVersion().apply(VersionParams(model="fraud", version=evil, reason="unsigned"), ctx)
    assert refused.value.code == "InvalidName"
    assert (await check(store, v6, [keys.public], await store.quarantined("fraud"))).ok
    assert await store.quarantined("fraud") == set()


async def test_a_version_name_merely_starting_with_sha256_is_quarantined(tmp_path, keys):
    """Only the exact mark form is refused: `sha256.v2` is an ordinary name, quarantined as asked."""
    store = LocalStore(tmp_path / "registry")
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    ctx = context(NoAws(), str(tmp_path / "registry"), keys)
    done = await QuarantineVersion().apply(VersionParams(model="fraud", version="sha256.v2", reason="r"), ctx)
    assert done.changed
    assert await store.quarantined("fraud") == {"sha256.v2"}
