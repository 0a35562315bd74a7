"""The SageMaker registry: versions live in S3 (as in `s3.py`); serving = the endpoint's config.

Conventions: the endpoint is named after the model; the endpoint config that serves version V is
named `<model>-<V with . and _ as ->`, has one production variant, and every container of that
variant's model (the primary container, or each container of an inference pipeline) must load all its
data (`ModelDataUrl`, `ModelDataSource`, `AdditionalModelDataSources`) from under that version's
artifact prefix `…/versions/V/model/`, and carry no field that could load data from elsewhere
(containers.py: an allow-list). A config or model that no longer exists, or a variant with no model
(inference components), makes V not deployable and the endpoint serve no version. Which version an
endpoint serves is read from the live endpoint (endpoint → config → model → containers' data), never
from a label, so a config that points somewhere else, even in one container of several, is caught
before and after the switch.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from responder.actuators.base import AwsCaller
from responder.actuators.model.containers import data_urls, unchecked_field, version_under
from responder.actuators.model.s3 import S3Store
from responder.actuators.model.versions import ModelVersion
from responder.errors import PermanentActuationError, TransientActuationError

log = structlog.get_logger(__name__)

SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
MOVING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
GONE = frozenset({"ValidationException", "ResourceNotFound", "ResourceNotFoundException"})  # SageMaker: no such thing


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


class SageMakerStore(S3Store):
    """Versions in S3; the serving pointer is the SageMaker endpoint's EndpointConfigName."""

    kind = "sagemaker"

    def __init__(self, aws: AwsCaller, url: str, *, poll_interval: float = 5.0, deploy_timeout: float = 600.0) -> None:
        super().__init__(aws, url.removeprefix("sagemaker+"))
        self.poll_interval = poll_interval
        self.deploy_timeout = deploy_timeout

    async def _config_model(self, config: str) -> list[Mapping[str, Any]] | str:
        """The containers of `config`'s one production variant's model, or why there are none to check (logged).

        A config or model SageMaker says does not exist (ValidationException, ResourceNotFound) and a variant with
        no model (inference components) are such a why; a transient error (throttling, a timeout) is raised, so the
        step's retry policy retries it, and so is any other permanent one (AccessDenied)."""
        why = await self._read_config(config)
        if isinstance(why, str):
            log.warning("model_sagemaker_config_unusable", config=config, reason=why)
        return why

    async def _read_config(self, config: str) -> list[Mapping[str, Any]] | str:
        try:
            desc = await self.aws.call("sagemaker", "describe_endpoint_config", EndpointConfigName=config)
        except PermanentActuationError as exc:
            if exc.code in GONE:
                return f"no endpoint config {config} with one production variant"
            raise
        variants: list[dict[str, Any]] = desc.get("ProductionVariants", [])
        if len(variants) != 1:
            return f"no endpoint config {config} with one production variant"
        name = variants[0].get("ModelName")
        if not name:
            return f"endpoint config {config}'s production variant names no model (inference components)"
        try:
            model = await self.aws.call("sagemaker", "describe_model", ModelName=str(name))
        except PermanentActuationError as exc:
            if exc.code in GONE:
                return f"endpoint config {config}'s model {name} cannot be read: {exc}"
            raise
        primary = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else []
        containers: list[Mapping[str, Any]] = [*primary, *(model.get("Containers") or [])]
        return containers or f"endpoint config {config}'s model has no container"

    def loaded_version(self, model: str, containers: Sequence[Mapping[str, Any]]) -> str | None:
        """The one registry version every container loads all its data from (and nothing unchecked), or None."""
        if not containers or any(unchecked_field(c) for c in containers):
            return None
        urls = [data_urls(c) for c in containers]
        found = {self.version_of(model, url) for each in urls for url in each}
        if not all(urls) or len(found) != 1:
            return None
        return found.pop()

    def version_of(self, model: str, data_url: str | None) -> str | None:
        """The registry version V when `data_url` is `…/versions/V/model/` or a safe relative path under it, or None."""
        return version_under(self.url(self._key(model, "versions")) + "/", data_url)

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
        containers = await self._config_model(str(desc.get("EndpointConfigName", "")))
        return None if isinstance(containers, str) else self.loaded_version(model, containers)

    async def deployable(self, version: ModelVersion) -> str | None:
        config = config_name(version.model, version.version)
        containers = await self._config_model(config)
        if isinstance(containers, str):
            return containers
        for n, container in enumerate(containers, 1):
            field = unchecked_field(container)
            if field is not None:
                return f"endpoint config {config}: container {n} names {field}, which responder does not check"
            urls = data_urls(container)
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
