"""Params shared by the model actuators, and the helpers that open a registry from them."""

from __future__ import annotations

from pydantic import Field

from responder.actuators.base import ActuationContext, Params
from responder.actuators.model.backends import context_config, open_store
from responder.actuators.model.versions import MODEL_NAME, REGISTRY_URL, VERSION_NAME, ModelStore
from responder.errors import PermanentActuationError


class ModelParams(Params):
    """A model in a registry (default: the `model_registry` setting)."""

    model: str = Field(pattern=MODEL_NAME, examples=["fraud-scorer"])
    registry: str | None = Field(default=None, pattern=REGISTRY_URL, examples=["s3://models/registry"])


class RollbackParams(ModelParams):
    """Walk back from `from_version` (default: the serving version)."""

    from_version: str | None = Field(default=None, pattern=VERSION_NAME, examples=["v7"])
    only_if_unverified: bool = Field(
        default=False, description="act only if the start version itself fails verification (corroborates the alert)"
    )


class VersionParams(ModelParams):
    """One version of a model."""

    version: str = Field(pattern=VERSION_NAME, examples=["v7"])
    reason: str = Field(default="", max_length=500, examples=["artifact tampered"])


def store_for(p: ModelParams, ctx: ActuationContext) -> ModelStore:
    """The registry backend these params name."""
    config = context_config(ctx)
    return open_store(p.registry or config.registry, ctx.aws, config)


async def read_back(store: ModelStore, model: str, expected: str) -> str | None:
    """The serving version read back after a switch; PermanentActuationError when it is not `expected`."""
    now = await store.serving(model)
    if now != expected:
        raise PermanentActuationError(f"{model} serves {now} after switching to {expected}", code="ReadBackMismatch")
    return now
