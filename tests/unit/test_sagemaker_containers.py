"""SageMaker: every container of the endpoint config's model must load its data from the version's own artifact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from responder.actuators.model.sagemaker import SageMakerStore
from responder.actuators.model.selection import select
from responder.actuators.model.versions import ModelVersion
from responder.errors import PermanentActuationError, TransientActuationError
from tests.modelkit import URL, MemoryS3, publish

REGISTRY = "s3://reg/models"
V6 = f"{REGISTRY}/fraud/versions/v6/model/"


class OneModel:
    """An AwsCaller whose endpoint `fraud` serves config `fraud-v6`, whose one variant (`variant`) names the model
    `model` (an exception: what describe_model raises)."""

    def __init__(self, model: dict[str, Any] | Exception,
                 variant: dict[str, Any] | None = None) -> None:
        self.model = model
        self.variant = variant if variant is not None else {"VariantName": "main", "ModelName": "fraud-v6"}

    async def call(self, service: str, operation: str, **kwargs: object) -> dict[str, Any]:
        """Answer the three describe calls the store makes."""
        if operation == "describe_endpoint":
            return {"EndpointStatus": "InService", "EndpointConfigName": "fraud-v6"}
        if operation == "describe_endpoint_config":
            return {"ProductionVariants": [self.variant]}
        if operation == "describe_model":
            if isinstance(self.model, Exception):
                raise self.model
            return self.model
        raise AssertionError(f"unexpected call {service}.{operation}")


def _v6() -> ModelVersion:
    return ModelVersion(model="fraud", version="v6", location=V6, signature=None, digest=None,
                        created=datetime(2026, 1, 6, tzinfo=UTC))


def _container(url: str) -> dict[str, Any]:
    return {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1", "ModelDataUrl": url}


def _source(url: str, **more: Any) -> dict[str, Any]:
    """A container loading `url` as an S3Prefix ModelDataSource, with more S3DataSource fields."""
    return {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1", "ModelDataSource": {
        "S3DataSource": {"S3Uri": url, "S3DataType": "S3Prefix", "CompressionType": "None", **more}}}


ELSEWHERE: dict[str, tuple[dict[str, Any], str]] = {  # the model, and what the reason names
    "second container": ({"Containers": [_container(V6), _container("s3://attacker/evil.tar.gz")]},
                         "container 2 loads s3://attacker/evil.tar.gz"),
    "second container without data": ({"Containers": [_container(V6), {"Image": "attacker/image"}]},
                                      "container 2 loads no model data"),
    "additional data source": ({"PrimaryContainer": {**_container(V6), "AdditionalModelDataSources": [
        {"ChannelName": "extra", "S3DataSource": {"S3Uri": "s3://attacker/extra/", "S3DataType": "S3Prefix"}}]}},
        "container 1 loads s3://attacker/extra/"),
    "primary and containers": ({"PrimaryContainer": _container(V6),
                                "Containers": [_container(f"{REGISTRY}/fraud/versions/v5/model/")]},
                               "container 2 loads s3://reg/models/fraud/versions/v5/model/"),
    "model without trailing slash": ({"PrimaryContainer": _container(V6[:-1])},
                                     f"container 1 loads {V6[:-1]}, not"),
    "prefix without trailing slash": ({"PrimaryContainer": _source(V6[:-1])}, f"container 1 loads {V6[:-1]}, not"),
    "the bundle beside the model": ({"PrimaryContainer": _container(V6[:-1] + ".sig")}, "model.sig, not"),
    "dot-dot segments": ({"PrimaryContainer": _container(V6 + "../../v5/model/m.tar.gz")}, "../../v5/model/m.tar.gz"),
    "empty segment": ({"PrimaryContainer": _container(V6 + "a//m.tar.gz")}, "a//m.tar.gz"),
    "manifest elsewhere": ({"PrimaryContainer": _source(V6, ManifestS3Uri="s3://attacker/manifest.csv")},
                           "container 1 names ModelDataSource.S3DataSource.ManifestS3Uri"),
    "hub content": ({"PrimaryContainer": _source(V6, HubAccessConfig={"HubContentArn": "arn:aws:sagemaker:x"})},
                    "container 1 names ModelDataSource.S3DataSource.HubAccessConfig"),
    "additional manifest": ({"PrimaryContainer": {**_container(V6), "AdditionalModelDataSources": [
        {"ChannelName": "x", "S3DataSource": {"S3Uri": V6, "S3DataType": "S3Prefix",
                                              "ManifestS3Uri": "s3://attacker/m.csv"}}]}},
        "container 1 names AdditionalModelDataSources.S3DataSource.ManifestS3Uri"),
    "model package": ({"Containers": [{**_container(V6), "ModelPackageName": "arn:aws:sagemaker:x:model-package/p"}]},
                      "container 1 names ModelPackageName"),
    "inference specification": ({"Containers": [{**_container(V6), "InferenceSpecificationName": "spec"}]},
                                "container 1 names InferenceSpecificationName"),
    "unknown container field": ({"PrimaryContainer": {**_container(V6), "ModelDataFromTheFuture": "s3://x/"}},
                                "container 1 names ModelDataFromTheFuture"),
}


@pytest.mark.parametrize("case", list(ELSEWHERE), ids=list(ELSEWHERE))
async def test_a_container_loading_other_data_is_not_deployable_nor_served(case):
    """A model where any container loads data outside v6's artifact is not_deployable and serves no version."""
    model, named = ELSEWHERE[case]
    store = SageMakerStore(OneModel(model), f"sagemaker+{REGISTRY}", poll_interval=0.0)
    problem = await store.deployable(_v6())
    assert problem is not None
    assert "fraud-v6" in problem
    assert named in problem, problem
    assert await store.serving("fraud") is None


async def test_a_pipeline_is_served_while_every_container_loads_the_version():
    """A two-container pipeline loading only v6's artifact is deployable and serves v6; not once one loads elsewhere."""
    caller = OneModel({"Containers": [_container(V6), _container(V6 + "post/")]})
    store = SageMakerStore(caller, f"sagemaker+{REGISTRY}", poll_interval=0.0)
    assert (await store.deployable(_v6()), await store.serving("fraud")) == (None, "v6")
    caller.model["Containers"][1]["ModelDataUrl"] = "s3://attacker/evil.tar.gz"
    assert (await store.deployable(_v6()) is None, await store.serving("fraud")) == (False, None)


async def test_the_fields_a_container_may_carry_besides_its_data_are_served():
    """Image, Environment, Mode, hostname, EULA acceptance, an uncompressed prefix under v6: deployable, serves v6."""
    container = {**_source(V6, ModelAccessConfig={"AcceptEula": True}), "ContainerHostname": "main",
                 "Mode": "SingleModel", "Environment": {"HF_TASK": "text-classification"},
                 "ImageConfig": {"RepositoryAccessMode": "Platform"}}
    store = SageMakerStore(OneModel({"PrimaryContainer": container}), f"sagemaker+{REGISTRY}", poll_interval=0.0)
    assert (await store.deployable(_v6()), await store.serving("fraud")) == (None, "v6")


GONE: dict[str, OneModel] = {
    "model deleted": OneModel(PermanentActuationError("ValidationException: Could not find model fraud-v6",
                                                      code="ValidationException")),
    "model not found": OneModel(PermanentActuationError("ResourceNotFound: fraud-v6", code="ResourceNotFound")),
    "inference components": OneModel({"PrimaryContainer": _container(V6)},
                                     {"VariantName": "main", "InstanceType": "ml.g5.xlarge"}),
}


@pytest.mark.parametrize("case", list(GONE), ids=list(GONE))
async def test_a_config_whose_model_cannot_be_read_is_not_deployable_nor_served(case):
    """A deleted model or a variant with no ModelName: deployable names why (not_deployable); serving is None."""
    store = SageMakerStore(GONE[case], f"sagemaker+{REGISTRY}", poll_interval=0.0)
    problem = await store.deployable(_v6())
    assert problem is not None
    assert "fraud-v6" in problem
    assert await store.serving("fraud") is None


async def test_a_throttled_describe_model_stays_transient():
    """Throttling is not a verdict on the version: deployable and serving raise it, for the step's retry policy."""
    store = SageMakerStore(OneModel(TransientActuationError("ThrottlingException: slow down",
                                                            code="ThrottlingException")),
                           f"sagemaker+{REGISTRY}", poll_interval=0.0)
    with pytest.raises(TransientActuationError):
        await store.deployable(_v6())
    with pytest.raises(TransientActuationError):
        await store.serving("fraud")


class Registry(MemoryS3):
    """The registry's bucket in memory, and SageMaker answering for configs named after their model (`models`: the
    model each describes, or what describe_model raises)."""

    def __init__(self, models: dict[str, dict[str, Any] | Exception]) -> None:
        super().__init__()
        self.models = models

    async def call(self, service: str, operation: str, **kwargs: object) -> dict[str, Any]:
        """S3 from memory; describe_endpoint_config and describe_model from `models`."""
        if service != "sagemaker":
            return await super().call(service, operation, **kwargs)
        if operation == "describe_endpoint_config":
            return {"ProductionVariants": [{"VariantName": "main", "ModelName": kwargs["EndpointConfigName"]}]}
        found = self.models[str(kwargs["ModelName"])]
        if isinstance(found, Exception):
            raise found
        return found


async def test_a_deleted_model_of_a_middle_version_is_walked_past(tmp_path, keys):
    """v3 served, v2's SageMaker model deleted: v2 is not_deployable and the walk reaches v1."""
    gone = PermanentActuationError("ValidationException: Could not find model fraud-v2", code="ValidationException")
    aws = Registry({"fraud-v2": gone, "fraud-v1": {"PrimaryContainer": _container(f"{URL}/fraud/versions/v1/model/")}})
    store = SageMakerStore(aws, f"sagemaker+{URL}", poll_interval=0.0)
    for version in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    picked = await select(store, "fraud", [keys.public], start="v3", serving="v3")
    assert (picked.chosen.version if picked.chosen else None) == "v1"
    assert [(r.version, r.reason) for r in picked.rejected] == [("v2", "not_deployable")]
    assert "Could not find model fraud-v2" in picked.rejected[0].detail
