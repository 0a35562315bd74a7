"""Which version a rollback may land on, on a real local or S3 registry with real model-signing bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams, pin_start
from responder.actuators.model.s3 import S3Store
from responder.actuators.model.signing import sign
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.models.step import StepIntent
from responder.timeline import MemoryStore, Recorder
from tests.integration.actuator_cases import throttle
from tests.modelkit import URL, Keys, NoAws, context, make_model, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")
QUARANTINE = registry.get("model.quarantine_version")
S3_ACTIONS = {"list_objects_v2": "s3:ListBucket", "get_object": "s3:GetObject", "put_object": "s3:PutObject",
              "get_parameter": "ssm:GetParameter", "put_parameter": "ssm:PutParameter"}


async def _same_artifact_twice(store: LocalStore, work: Path, keys: Keys) -> None:
    """v1 good; v2-rc1 and then v2: one artifact signed and published under two names; v2 served."""
    await publish(store, work, "fraud", "v1", keys.private)
    src = make_model(work, "fraud-v2")
    sig = src.with_name("model.sig")
    sign(src, keys.private, sig, model="fraud", version="v2-rc1")
    await store.publish("fraud", "v2-rc1", src, sig)
    sign(src, keys.private, sig, model="fraud", version="v2")
    promoted = await store.publish("fraud", "v2", src, sig)
    await store.set_serving("fraud", promoted)


async def test_rollback_never_lands_on_the_bad_artifact_under_another_name(tmp_path, keys):
    """The version rolled away from, re-published earlier under another name (an rc), is not a rollback target."""
    store = LocalStore(tmp_path / "registry")
    await _same_artifact_twice(store, tmp_path / "work", keys)
    ctx = context(NoAws(), str(store.root), keys)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2"), ctx)
    assert result.outputs["to"] == "v1"
    assert await store.serving("fraud") == "v1"
    assert [r["version"] for r in result.outputs["rejected"]] == ["v2-rc1"]  # type: ignore[index, union-attr]


async def test_verify_does_not_count_the_bad_artifact_under_another_name_as_rolled_back(tmp_path, keys):
    """Serving the bad version's artifact under another name does not verify as rolled back from it."""
    store = LocalStore(tmp_path / "registry")
    await _same_artifact_twice(store, tmp_path / "work", keys)
    rc = next(v for v in await store.versions("fraud") if v.version == "v2-rc1")
    await store.set_serving("fraud", rc)
    ctx = context(NoAws(), str(store.root), keys)
    assert await ROLLBACK.verify(RollbackParams(model="fraud", from_version="v2"), ctx) is False


class Recording:
    """Forwards every call and remembers which operations were made."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.operations = inner, set[str]()

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Record, then forward."""
        self.operations.add(operation)
        reply: dict[str, Any] = await self.inner.call(service, operation, **kwargs)
        return reply


@pytest.mark.integration
@pytest.mark.parametrize("name", ["model.quarantine_version", "model.rollback_to_last_signed"])
async def test_model_actuators_declare_every_action_they_call_on_s3(aws: AwsSession, s3store: S3Store, tmp_path, keys,
                                                                   name):
    """Every S3/SSM call a model actuator makes on the S3 registry is in its declared IAM permissions."""
    for v in ("v1", "v2"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    recording = Recording(aws)
    actuator = registry.get(name)
    raw = {"model": "fraud", "registry": URL, "version": "v2"} if name == QUARANTINE.name else {
        "model": "fraud", "registry": URL, "from_version": "v2"}
    await actuator.apply(actuator.params.model_validate(raw), context(recording, URL, keys))
    called = {S3_ACTIONS[op] for op in recording.operations}
    assert called <= set(actuator.permissions), called - set(actuator.permissions)


@pytest.mark.integration
async def test_rollback_without_from_version_is_not_settled_by_a_transient_error(aws: AwsSession, s3store: S3Store,
                                                                                 tmp_path, keys):
    """A throttled registry read on the first attempt must not make the step succeed with the drifting model served."""
    for v in ("v1", "v2"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    ctx = context(aws, URL, keys)
    # no from_version given, as `responder models rollback fraud`: the version served now is pinned as the start
    p = RollbackParams.model_validate(await pin_start({"model": "fraud", "registry": URL}, ctx))
    assert p.from_version == "v2"
    throttle(aws, "s3", 1, code="SlowDown", status=503, operation="GetObject")
    call = StepCall(ROLLBACK, p, ctx, attempts=3, timeout=60)
    intent = StepIntent(step="roll-back", actuator=ROLLBACK.name, target=ROLLBACK.target(p), key="k" * 32,
                        params=p.model_dump(mode="json"))
    result = await run_step(Recorder(MemoryStore()), call, intent, incident="inc")
    assert result.ok
    assert await s3store.serving("fraud") == "v1"


def test_rollback_params_naming_no_start_are_rejected():
    """Neither from_version nor only_if_unverified: refused, naming both choices (verify() could not tell)."""
    with pytest.raises(ValidationError, match="valid choices: from_version, only_if_unverified"):
        RollbackParams(model="fraud")
    with pytest.raises(ValidationError):
        RollbackParams(model="fraud", only_if_unverified=False)
    assert RollbackParams(model="fraud", only_if_unverified=True).from_version is None


class EndpointStuck:
    """A SageMaker API whose endpoint sits in `status` on the old config after UpdateEndpoint."""

    def __init__(self, status: str) -> None:
        self.status = status

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """describe_endpoint reports `status`; update_endpoint is accepted."""
        if operation == "describe_endpoint":
            return {"EndpointName": "fraud", "EndpointConfigName": "fraud-v1", "EndpointStatus": self.status}
        assert operation == "update_endpoint", operation
        return {}


@pytest.mark.parametrize("status", ["UpdateRollbackFailed", "OutOfService", "Deleting"])
async def test_sagemaker_switch_to_a_terminal_endpoint_state_fails_permanently(status):
    """An endpoint left UpdateRollbackFailed/OutOfService/Deleting fails the switch at once, not after a timeout."""
    from datetime import UTC, datetime

    from responder.actuators.model.sagemaker import SageMakerStore
    from responder.actuators.model.versions import ModelVersion
    from responder.errors import PermanentActuationError

    store = SageMakerStore(EndpointStuck(status), f"sagemaker+{URL}", poll_interval=0.0, deploy_timeout=0.05)
    version = ModelVersion(model="fraud", version="v2", location=f"{URL}/fraud/versions/v2/model/", signature=None,
                           digest=None, created=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(PermanentActuationError) as info:
        await store.set_serving("fraud", version)
    assert info.value.code == "DeployFailed"


async def test_a_forged_start_bundle_can_only_make_the_walk_refuse_more(tmp_path, keys):
    """The bad version's bundle swapped for v2's (read unverified): v2 is skipped as same_artifact, v1 served."""
    store = LocalStore(tmp_path / "registry")
    for v in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "work", "fraud", v, keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])
    versions = store.root / "fraud" / "versions"
    (versions / "v3" / "model.sig").write_bytes((versions / "v2" / "model.sig").read_bytes())
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3"), context(NoAws(), str(store.root),
                                                                                             keys))
    assert result.outputs["to"] == "v1"
    assert [r["reason"] for r in result.outputs["rejected"]] == ["same_artifact"]  # type: ignore[index, union-attr]
