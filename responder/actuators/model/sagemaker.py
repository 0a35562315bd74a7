"""The SageMaker registry: versions live in S3 (as in `s3.py`); serving = the endpoint's config.

Conventions: the endpoint is named after the model; the endpoint config that serves version V is
named `<model>-<V with . and _ as ->`, has one production variant, and every container of that
variant's model (the primary container, or each container of an inference pipeline) must load all its
data (`ModelDataUrl`, `ModelDataSource`, `AdditionalModelDataSources`) from under that version's
artifact prefix. Which version an endpoint serves is read from the live endpoint (endpoint → config
→ model → containers' data), never from a label, so a config that points somewhere else, even in one
container of several, is caught before and after the switch.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from responder.actuators.base import AwsCaller
from responder.actuators.model.s3 import S3Store
from responder.actuators.model.versions import ARTIFACT_DIR, VERSION_NAME, ModelVersion
from responder.errors import PermanentActuationError, TransientActuationError

SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
MOVING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def endpoint_name(model: str) -> str:
    """The endpoint serving `model` (SageMaker's naming rule applies)."""
    if not re.fullmatch(SAGEMAKER_NAME, model):
        raise PermanentActuationError(f"model name {model!r} is not a SageMaker endpoint name", code="InvalidName")
    return model


def config_name(model: str, version: str) -> str:
    """The endpoint config that serves `version`."""
    name = f"{model}-{re.sub(r'[._]+', '-', version)}"
    if not re.fullmatch(SAGEMAKER_NAME, name):
        raise PermanentActuationError(f"no valid endpoint config name for {model} {version}", code="InvalidName")
    return name


def data_urls(container: Mapping[str, Any]) -> list[str]:
    """Every S3 location one container definition loads model data from."""
    sources = [container.get("ModelDataSource"), *(container.get("AdditionalModelDataSources") or [])]
    urls = [container.get("ModelDataUrl"), *((s or {}).get("S3DataSource", {}).get("S3Uri") for s in sources)]
    return [str(u) for u in urls if u]


class SageMakerStore(S3Store):
    """Versions in S3; the serving pointer is the SageMaker endpoint's EndpointConfigName."""

    kind = "sagemaker"

    def __init__(self, aws: AwsCaller, url: str, *, poll_interval: float = 5.0, deploy_timeout: float = 600.0) -> None:
        super().__init__(aws, url.removeprefix("sagemaker+"))
        self.poll_interval = poll_interval
        self.deploy_timeout = deploy_timeout

    async def _config_containers(self, config: str) -> list[list[str]] | None:
        """The data URLs each container of `config`'s one production variant's model loads; None without that."""
        try:
            desc = await self.aws.call("sagemaker", "describe_endpoint_config", EndpointConfigName=config)
        except PermanentActuationError as exc:
            if exc.code == "ValidationException":
                return None
            raise
        variants: list[dict[str, Any]] = desc.get("ProductionVariants", [])
        if len(variants) != 1:
            return None
        model = await self.aws.call("sagemaker", "describe_model", ModelName=variants[0]["ModelName"])
        primary = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else []
        return [data_urls(c) for c in [*primary, *(model.get("Containers") or [])]]

    def loaded_version(self, model: str, containers: Sequence[Sequence[str]]) -> str | None:
        """The one registry version every container loads all its data from, or None."""
        found = {self.version_of(model, url) for urls in containers for url in urls}
        if not containers or not all(containers) or len(found) != 1:
            return None
        return found.pop()

    def version_of(self, model: str, data_url: str | None) -> str | None:
        """The registry version whose artifact prefix `data_url` lies under, or None."""
        base = self.url(self._key(model, "versions")) + "/"
        if not data_url or not data_url.startswith(base):
            return None
        version, _, rest = data_url[len(base):].partition("/")
        if not re.fullmatch(VERSION_NAME, version) or not (rest == ARTIFACT_DIR or rest.startswith(ARTIFACT_DIR + "/")):
            return None
        return version

    async def endpoint(self, model: str) -> dict[str, Any]:
        """describe_endpoint of the model's endpoint."""
        return await self.aws.call("sagemaker", "describe_endpoint", EndpointName=endpoint_name(model))

    async def settled(self, model: str) -> dict[str, Any]:
        """describe_endpoint once the endpoint is not mid-deployment (CloudTrail reports UpdateEndpoint
        while it is still Updating, and the config it shows then is the one being replaced)."""
        deadline = time.monotonic() + self.deploy_timeout
        while True:
            desc = await self.endpoint(model)
            if desc.get("EndpointStatus") not in MOVING or time.monotonic() > deadline:
                return desc
            await asyncio.sleep(self.poll_interval)

    async def serving(self, model: str) -> str | None:
        desc = await self.settled(model)
        return self.loaded_version(model, await self._config_containers(str(desc["EndpointConfigName"])) or [])

    async def deployable(self, version: ModelVersion) -> str | None:
        config = config_name(version.model, version.version)
        containers = await self._config_containers(config)
        if containers is None:
            return f"no endpoint config {config} with one production variant"
        if not containers:
            return f"endpoint config {config}'s model has no container"
        for n, urls in enumerate(containers, 1):
            if not urls:
                return f"endpoint config {config}: container {n} loads no model data (not {version.location})"
            for url in urls:
                if self.version_of(version.model, url) != version.version:
                    return f"endpoint config {config}: container {n} loads {url}, not {version.location}"
        return None

    async def set_serving(self, model: str, version: ModelVersion) -> None:
        config = config_name(model, version.version)
        desc = await self.endpoint(model)
        if desc.get("EndpointConfigName") != config:
            await self.aws.call("sagemaker", "update_endpoint", EndpointName=endpoint_name(model),
                                EndpointConfigName=config)
        deadline = time.monotonic() + self.deploy_timeout
        while True:
            desc = await self.endpoint(model)
            status = desc.get("EndpointStatus")
            if status == "InService" and desc.get("EndpointConfigName") == config:
                return
            # not InService and not moving (Failed, UpdateRollbackFailed, OutOfService, Deleting) will not get there
            if status not in MOVING and (status != "InService" or desc.get("FailureReason")):
                raise PermanentActuationError(
                    f"endpoint {model} is {status} on {desc.get('EndpointConfigName')}, not {config}: "
                    f"{desc.get('FailureReason', '')}", code="DeployFailed")
            if time.monotonic() > deadline:
                raise TransientActuationError(f"endpoint {model} still {status} after {self.deploy_timeout}s",
                                              code="Timeout")
            await asyncio.sleep(self.poll_interval)
