"""model_refuse_legacy_signatures on S3 (moto): a legacy artifact under the served name fails integrity."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.model.params import RollbackParams
from responder.actuators.model.s3 import S3Store
from responder.actuators.model.selection import check
from responder.actuators.model.signing import Reason
from tests.modelkit import BUCKET, URL, Keys, context, copy_version, legacy_sign, make_model, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")

pytestmark = pytest.mark.integration


async def _legacy_under_served(aws: AwsSession, store: S3Store, tmp_path: Path, keys: Keys) -> None:
    """v1, v2 signed with statements and v2 served; a registry writer replaces v2's objects by an old legacy version."""
    old = make_model(tmp_path / "old", "fraud-v0-weights")
    legacy_sign(old, keys.private, old.with_name("model.sig"))
    await store.publish("fraud", "v0", old, old.with_name("model.sig"))
    for v in ("v1", "v2"):
        await publish(store, tmp_path / "w", "fraud", v, keys.private)
    await store.set_serving("fraud", next(v for v in await store.versions("fraud") if v.version == "v2"))
    listed = await aws.call("s3", "list_objects_v2", Bucket=BUCKET, Prefix="registry/fraud/versions/v2/")
    for obj in listed.get("Contents", []):
        await aws.call("s3", "delete_object", Bucket=BUCKET, Key=obj["Key"])
    await copy_version(aws, "fraud/versions/v0", "fraud/versions/v2")


@pytest.mark.parametrize("refuse", [True, False])
async def test_a_legacy_artifact_under_the_served_version_fails_integrity_only_with_the_setting(
        aws, s3store, tmp_path, keys, refuse):
    """refuse: the check fails as legacy_signature and the alert rolls back to v1; default: accepted, v2 stays."""
    await _legacy_under_served(aws, s3store, tmp_path, keys)
    served = next(v for v in await s3store.versions("fraud") if v.version == "v2")
    verdict = await check(s3store, served, [keys.public], await s3store.quarantined("fraud"), legacy=not refuse)
    assert (verdict.ok, verdict.release) == (not refuse, None)
    if refuse:
        assert verdict.reason is Reason.LEGACY_SIGNATURE
    base = context(aws, URL, keys)
    assert base.models is not None
    ctx = dataclasses.replace(base, models=dataclasses.replace(base.models, refuse_legacy=refuse))
    result = await ROLLBACK.apply(RollbackParams(model="fraud", only_if_unverified=True, registry=URL), ctx)
    assert result.outputs["corroborated"] is refuse
    assert await s3store.serving("fraud") == ("v1" if refuse else "v2")
