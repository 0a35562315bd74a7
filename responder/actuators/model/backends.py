"""Choose the registry backend from its URL, and the model settings from the context or settings."""

from __future__ import annotations

from pathlib import Path

import structlog

from responder.actuators.base import ActuationContext, AwsCaller, ModelConfig
from responder.actuators.model.local import LocalStore
from responder.actuators.model.s3 import S3Store
from responder.actuators.model.sagemaker import SageMakerStore
from responder.actuators.model.versions import ModelStore
from responder.settings import Settings

log = structlog.get_logger(__name__)


def config_from(settings: Settings) -> ModelConfig:
    """The registry URL and trusted keys from settings."""
    return ModelConfig(
        registry=settings.model_registry,
        trusted_keys=tuple(settings.model_trusted_keys),
        ssm_prefix=settings.model_ssm_prefix,
        poll_interval=settings.model_deploy_poll_s,
        deploy_timeout=settings.model_deploy_timeout_s,
        accept_legacy=settings.model_accept_legacy_signatures,
        refuse_legacy=settings.model_refuse_legacy_signatures,
        drill=settings.drill,
    )


def registry_url(named: str | None, config: ModelConfig) -> str:
    """The registry a model step acts on: the one its params name, else the `model_registry` setting. In a tabletop
    drill (`config.drill`) a local directory a step names (a runbook's literal `registry:`) is the drill's sandbox
    registry instead, so a drill never changes a directory outside its sandbox; S3 and SageMaker are the sandbox's
    moto server there already."""
    if named is None or named == config.registry:
        return config.registry
    if config.drill and not named.startswith(("s3://", "sagemaker+s3://")):
        log.warning("model_registry_redirected_to_drill", named=named, registry=config.registry)
        return config.registry
    return named


def context_config(ctx: ActuationContext) -> ModelConfig:
    """`ctx.models` when the caller passes one (the service, the CLI, tests), else read from settings."""
    return ctx.models if ctx.models is not None else config_from(Settings())


def open_store(url: str, aws: AwsCaller, config: ModelConfig) -> ModelStore:
    """A local directory (a path or file://), `s3://BUCKET/PREFIX` (+SSM pointer) or `sagemaker+s3://…`."""
    if url.startswith("sagemaker+s3://"):
        return SageMakerStore(aws, url, poll_interval=config.poll_interval, deploy_timeout=config.deploy_timeout)
    if url.startswith("s3://"):
        return S3Store(aws, url, config.ssm_prefix)
    return LocalStore(Path(url.removeprefix("file://")))
