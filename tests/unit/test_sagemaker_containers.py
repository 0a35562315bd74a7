"""SageMaker: every container of the endpoint config's model must load its data from the version's own artifact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from responder.actuators.model.sagemaker import SageMakerStore
from responder.actuators.model.versions import ModelVersion

REGISTRY = "s3://reg/models"
V6 = f"{REGISTRY}/fraud/versions/v6/model/"


class OneModel:
    """An AwsCaller whose endpoint `fraud` serves config `fraud-v6`, whose one variant's model is `model`."""

    def __init__(self, model: dict[str, Any]) -> None:
        self.model = model

    async def call(self, service: str, operation: str, **kwargs: object) -> dict[str, Any]:
        """Answer the three describe calls the store makes."""
        if operation == "describe_endpoint":
            return {"EndpointStatus": "InService", "EndpointConfigName": "fraud-v6"}
        if operation == "describe_endpoint_config":
            return {"ProductionVariants": [{"VariantName": "main", "ModelName": "fraud-v6"}]}
        if operation == "describe_model":
            return self.model
        raise AssertionError(f"unexpected call {service}.{operation}")


def _v6() -> ModelVersion:
    return ModelVersion(model="fraud", version="v6", location=V6, signature=None, digest=None,
                        created=datetime(2026, 1, 6, tzinfo=UTC))


def _container(url: str) -> dict[str, Any]:
    return {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1", "ModelDataUrl": url}


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
