"""The S3 + SSM registry on the moto server, and the SageMaker registry with botocore's Stubber.

SageMaker runs on a Stubber because moto does not implement `update_endpoint` (NotImplementedError
in-process, HTTP 500 in server mode; reference/stack-lab.md §4.4): the stub replays the exact
describe/update calls and responses SageMaker documents, while the versions, their artifacts and
their signatures are real objects on the moto server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from responder.actuators import registry
from responder.actuators.aws.session import AwsSession
from responder.actuators.model.params import RollbackParams, VersionParams
from responder.actuators.model.sagemaker import SageMakerStore
from responder.errors import PermanentActuationError
from tests.modelkit import BUCKET, URL, context, forged_bundle, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")
QUARANTINE = registry.get("model.quarantine_version")
NOW = datetime(2026, 11, 25, tzinfo=UTC)


async def _tamper(aws: AwsSession, version: str) -> None:
    key = f"registry/fraud/versions/{version}/model/config.json"
    await aws.call("s3", "put_object", Bucket=BUCKET, Key=key, Body=b'{"layers": 99}')


async def test_s3_rollback_skips_tampered_and_moves_the_ssm_pointer(aws, s3store, tmp_path, keys):
    """v3 served, v2 changed in S3 after signing: the rollback serves v1 and SSM's history shows v3 → v1."""
    for v in ("v1", "v2", "v3"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    await _tamper(aws, "v2")
    p = RollbackParams(model="fraud", from_version="v3", registry=URL)
    result = await ROLLBACK.apply(p, context(aws, URL, keys))
    assert result.outputs["to"] == "v1"
    assert [r["reason"] for r in result.outputs["rejected"]] == ["tampered"]  # type: ignore[index, union-attr]
    history = await aws.call("ssm", "get_parameter_history", Name="/responder/models/fraud/serving")
    assert [h["Value"] for h in history["Parameters"]] == ["v3", "v1"]


async def test_s3_forged_bundle_on_the_middle_version_is_walked_past(aws, s3store, tmp_path, keys):
    """v3 served, v2's weights and payload rewritten in S3 under the old signature: v2 is bad_signature, v1 served."""
    for v in ("v1", "v2", "v3"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    place = "registry/fraud/versions/v2"
    bundle = (await aws.call("s3", "get_object", Bucket=BUCKET, Key=f"{place}/model.sig"))["Body"].read()
    await aws.call("s3", "put_object", Bucket=BUCKET, Key=f"{place}/model/weights.bin", Body=b"attacker weights")
    await aws.call("s3", "put_object", Bucket=BUCKET, Key=f"{place}/model.sig",
                   Body=forged_bundle(bundle, "weights.bin", b"attacker weights"))
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL),
                                  context(aws, URL, keys))
    assert result.outputs["to"] == "v1"
    assert [r["reason"] for r in result.outputs["rejected"]] == ["bad_signature"]  # type: ignore[index, union-attr]
    assert await s3store.serving("fraud") == "v1"


async def test_s3_refusal_leaves_the_pointer_alone(aws, s3store, tmp_path, keys):
    """Unsigned and wrong-key versions only: refused, and the SSM parameter still names v3."""
    await publish(s3store, tmp_path / "w", "fraud", "v1", None)
    await publish(s3store, tmp_path / "w", "fraud", "v2", keys.wrong_private)
    await publish(s3store, tmp_path / "w", "fraud", "v3", keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    with pytest.raises(PermanentActuationError, match=r"v2: untrusted_key; v1: unsigned"):
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL), context(aws, URL, keys))
    assert await s3store.serving("fraud") == "v3"


async def test_s3_quarantine_then_rollback_skips_it(aws, s3store, tmp_path, keys):
    """A quarantine mark in S3 is honoured by the next rollback."""
    for v in ("v1", "v2", "v3"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    ctx = context(aws, URL, keys)
    await QUARANTINE.apply(VersionParams(model="fraud", version="v2", registry=URL), ctx)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL), ctx)
    assert result.outputs["to"] == "v1"
    assert [r["reason"] for r in result.outputs["rejected"]] == ["quarantined"]  # type: ignore[index, union-attr]


async def test_s3_object_key_escaping_the_artifact_is_rejected(aws, s3store, tmp_path, keys):
    """A key with `..` under a version is never written outside the temporary copy."""
    await publish(s3store, tmp_path / "w", "fraud", "v1", keys.private)
    await publish(s3store, tmp_path / "w", "fraud", "v2", keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    await aws.call("s3", "put_object", Bucket=BUCKET, Key="registry/fraud/versions/v1/model/../../../escape",
                   Body=b"x")
    with pytest.raises(PermanentActuationError, match="v1: unsafe_path"):
        await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2", registry=URL), context(aws, URL, keys))


async def test_s3_keys_naming_a_file_and_a_directory_alike_are_walked_past(aws, s3store, tmp_path, keys):
    """v2 gains keys model/x and model/x/y (no local copy holds both): v2 is unsafe_path, the rollback serves v1."""
    for v in ("v1", "v2", "v3"):
        await publish(s3store, tmp_path / "w", "fraud", v, keys.private)
    await s3store.set_serving("fraud", (await s3store.versions("fraud"))[-1])
    for key, body in (("x", b"1"), ("x/y", b"2")):
        await aws.call("s3", "put_object", Bucket=BUCKET, Key=f"registry/fraud/versions/v2/model/{key}", Body=body)
    result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v3", registry=URL),
                                  context(aws, URL, keys))
    assert result.outputs["to"] == "v1"
    assert [r["reason"] for r in result.outputs["rejected"]] == ["unsafe_path"]  # type: ignore[index, union-attr]
    assert await s3store.serving("fraud") == "v1"


def _endpoint(config: str, status: str = "InService") -> dict[str, Any]:
    return {"EndpointName": "fraud", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud",
            "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW}


def _expect_config(stub: Stubber, config: str, model_name: str, data_url: str) -> None:
    stub.add_response("describe_endpoint_config", {
        "EndpointConfigName": config, "CreationTime": NOW,
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{config}",
        "ProductionVariants": [{"VariantName": "main", "ModelName": model_name}]}, {"EndpointConfigName": config})
    stub.add_response("describe_model", {
        "ModelName": model_name, "CreationTime": NOW,
        "ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{model_name}",
        "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
                             "ModelDataUrl": data_url}}, {"ModelName": model_name})


def _data(version: str) -> str:
    return f"{URL}/fraud/versions/{version}/model/"


async def test_sagemaker_rollback_updates_the_endpoint_and_reads_it_back(aws, tmp_path, keys):
    """Serving v2 (wrong key): the endpoint is updated to fraud-v1's config, then read back through the model."""
    await aws.call("s3", "create_bucket", Bucket=BUCKET)
    store = SageMakerStore(aws, f"sagemaker+{URL}", poll_interval=0.0)
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    await publish(store, tmp_path / "w", "fraud", "v2", keys.wrong_private)
    with Stubber(aws.client("sagemaker")) as stub:
        stub.add_response("describe_endpoint", _endpoint("fraud-v2"), {"EndpointName": "fraud"})
        _expect_config(stub, "fraud-v2", "fraud-v2", _data("v2"))
        _expect_config(stub, "fraud-v1", "fraud-v1", _data("v1"))
        stub.add_response("describe_endpoint", _endpoint("fraud-v2"), {"EndpointName": "fraud"})
        stub.add_response("update_endpoint", {"EndpointArn": _endpoint("x")["EndpointArn"]},
                          {"EndpointName": "fraud", "EndpointConfigName": "fraud-v1"})
        stub.add_response("describe_endpoint", _endpoint("fraud-v1", "Updating"), {"EndpointName": "fraud"})
        stub.add_response("describe_endpoint", _endpoint("fraud-v1"), {"EndpointName": "fraud"})
        stub.add_response("describe_endpoint", _endpoint("fraud-v1"), {"EndpointName": "fraud"})
        _expect_config(stub, "fraud-v1", "fraud-v1", _data("v1"))
        result = await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2", registry=f"sagemaker+{URL}"),
                                      context(aws, f"sagemaker+{URL}", keys))
        stub.assert_no_pending_responses()
    assert (result.outputs["from"], result.outputs["to"]) == ("v2", "v1")
    assert result.outputs["backend"] == "sagemaker"


async def test_sagemaker_config_loading_other_data_is_not_deployable(aws, tmp_path, keys):
    """A signed v1 whose endpoint config loads v2's data is rejected, and no update_endpoint is made."""
    await aws.call("s3", "create_bucket", Bucket=BUCKET)
    store = SageMakerStore(aws, f"sagemaker+{URL}", poll_interval=0.0)
    await publish(store, tmp_path / "w", "fraud", "v1", keys.private)
    await publish(store, tmp_path / "w", "fraud", "v2", None)
    with Stubber(aws.client("sagemaker")) as stub:
        stub.add_response("describe_endpoint", _endpoint("fraud-v2"), {"EndpointName": "fraud"})
        _expect_config(stub, "fraud-v2", "fraud-v2", _data("v2"))
        _expect_config(stub, "fraud-v1", "fraud-v1-model", _data("v2"))
        with pytest.raises(PermanentActuationError, match="v1: not_deployable"):
            await ROLLBACK.apply(RollbackParams(model="fraud", from_version="v2", registry=f"sagemaker+{URL}"),
                                 context(aws, f"sagemaker+{URL}", keys))
        stub.assert_no_pending_responses()


async def test_sagemaker_serving_waits_for_a_deployment_in_progress(aws):
    """While the endpoint is Updating the old config is not what it will serve: wait, then read the new one."""
    store = SageMakerStore(aws, f"sagemaker+{URL}", poll_interval=0.0)
    with Stubber(aws.client("sagemaker")) as stub:
        stub.add_response("describe_endpoint", _endpoint("fraud-v1", "Updating"), {"EndpointName": "fraud"})
        stub.add_response("describe_endpoint", _endpoint("fraud-v2"), {"EndpointName": "fraud"})
        _expect_config(stub, "fraud-v2", "fraud-v2", _data("v2"))
        assert await store.serving("fraud") == "v2"
        stub.assert_no_pending_responses()
