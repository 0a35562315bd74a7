"""A signature names its model and version: relabelled or foreign signed artifacts are no rollback target (moto S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.model.params import RollbackParams, VersionParams
from responder.actuators.model.s3 import S3Store
from responder.errors import PermanentActuationError
from tests.modelkit import BUCKET, LATER, URL, Keys, context, copy_version, legacy_sign, make_model, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")
SWITCH = registry.get("model.switch_version")

pytestmark = pytest.mark.integration


async def _three_versions(store: S3Store, tmp_path: Path, keys: Keys) -> None:
    for v in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "w", "fraud", v, keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])


async def test_an_old_signed_version_copied_under_a_newer_name_is_refused(aws, s3store, tmp_path, keys):
    """v1's signed artifact copied to v2.9, made to look newer than v2 (quarantined): other_version; v1 served."""
    await _three_versions(s3store, tmp_path, keys)
    await copy_version(aws, "fraud/versions/v1", "fraud/versions/v2.9")
    await aws.call("s3", "put_object", Bucket=BUCKET, Key="registry/fraud/versions/v3/version.json", Body=LATER)
    await s3store.quarantine("fraud", "v2", "bad too")
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL),
                                  context(aws, URL, keys))
    assert result.outputs["to"] == "v1"
    rejected = [(r["version"], r["reason"]) for r in result.outputs["rejected"]]  # type: ignore[index, union-attr]
    assert rejected == [("v2", "quarantined"), ("v2.9", "other_version")]
    assert await s3store.serving("fraud") == "v1"


async def test_an_old_version_relabelled_newer_in_version_json_is_not_walked_first(aws, s3store, tmp_path, keys):
    """Rewriting v1's unsigned version.json to look newest does not reorder it: the signed order puts v2 first."""
    await _three_versions(s3store, tmp_path, keys)
    relabel = json.dumps({"created": datetime(2099, 1, 1, tzinfo=UTC).isoformat()}).encode()
    await aws.call("s3", "put_object", Bucket=BUCKET, Key="registry/fraud/versions/v1/version.json", Body=relabel)
    await aws.call("s3", "put_object", Bucket=BUCKET, Key="registry/fraud/versions/v3/version.json", Body=LATER)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL),
                                  context(aws, URL, keys))
    assert result.outputs["to"] == "v2"


async def test_another_models_signed_artifact_is_refused_as_other_model(aws, s3store, tmp_path, keys):
    """Model `churn`'s signed artifact copied into `fraud` is refused as other_model by the rollback and the switch."""
    await publish(s3store, tmp_path / "w", "churn", "v7", keys.private)
    for v in ("v1", "v2", "v3"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    await copy_version(aws, "churn/versions/v7", "fraud/versions/v2.9")
    await aws.call("s3", "put_object", Bucket=BUCKET, Key="registry/fraud/versions/v3/version.json", Body=LATER)
    for v in ("v1", "v2"):
        await s3store.quarantine("fraud", v, "bad too")
    ctx = context(aws, URL, keys)
    with pytest.raises(PermanentActuationError, match=r"v2\.9: other_model"):
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL), ctx)
    assert await s3store.serving("fraud") == "v3"
    with pytest.raises(PermanentActuationError, match="other_model"):
        await SWITCH.apply(VersionParams(model="fraud", version="v2.9", registry=URL), ctx)


async def test_resign_migrates_a_legacy_version_on_s3(aws, s3store, tmp_path, keys):
    """A legacy-signed v1 in S3 is refused as legacy_signature; after `resign` the rollback lands on it."""
    from responder.actuators.model import migrate

    src = make_model(tmp_path / "w", "legacy-v1")
    legacy_sign(src, keys.private, src.with_name("model.sig"))
    await s3store.publish("fraud", "v1", src, src.with_name("model.sig"))
    await publish(s3store, tmp_path / "w", "fraud", "v2", keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    ctx = context(aws, URL, keys)
    with pytest.raises(PermanentActuationError, match="v1: legacy_signature"):
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2", registry=URL), ctx)
    await migrate.resign(s3store, "fraud", "v1", keys.private, [keys.public])
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2", registry=URL), ctx)
    assert result.outputs["to"] == "v1"


class FailingBundlePut:
    """Forwards to moto, but the first PutObject of a model.sig fails (resign interrupted between its two writes)."""

    def __init__(self, inner: AwsSession) -> None:
        self.inner, self.failed = inner, False

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Fail once on the bundle upload, forward everything else."""
        if operation == "put_object" and str(kwargs.get("Key", "")).endswith("/model.sig") and not self.failed:
            self.failed = True
            raise PermanentActuationError("injected: connection reset", code="InternalError")
        reply: dict[str, Any] = await self.inner.call(service, operation, **kwargs)
        return reply


async def test_resign_on_s3_interrupted_after_the_statement_completes_when_run_again(aws, tmp_path, keys):
    """The bundle upload fails after the statement's: v1 is unservable, and running resign again migrates it."""
    from responder.actuators.model import migrate

    await aws.call("s3", "create_bucket", Bucket=BUCKET)
    src = make_model(tmp_path / "w", "legacy-v1")
    legacy_sign(src, keys.private, src.with_name("model.sig"))
    await S3Store(aws, URL).publish("fraud", "v1", src, src.with_name("model.sig"))
    before = (await S3Store(aws, URL).versions("fraud"))[0]
    flaky = S3Store(FailingBundlePut(aws), URL)
    with pytest.raises(PermanentActuationError, match="injected"):
        await migrate.resign(flaky, "fraud", "v1", keys.private, [keys.public])
    verdict = await migrate.resign(flaky, "fraud", "v1", keys.private, [keys.public])
    assert verdict.release is not None
    assert (verdict.release.version, verdict.release.created, verdict.digest) == ("v1", before.created, before.digest)
    await publish(S3Store(aws, URL), tmp_path / "w", "fraud", "v2", keys.private)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2", registry=URL),
                                  context(aws, URL, keys))
    assert result.outputs["to"] == "v1"
