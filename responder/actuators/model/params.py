"""Params shared by the model actuators, and the helpers that open a registry from them."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import Field, JsonValue, model_validator

from responder.actuators.base import ActuationContext, Params
from responder.actuators.model.backends import context_config, open_store, registry_url
from responder.actuators.model.versions import MODEL_NAME, REGISTRY_URL, VERSION_NAME, ModelStore
from responder.errors import ActuationError, ConfigError, PermanentActuationError

START_CHOICES = ("from_version", "only_if_unverified")
NEEDS_START = ("name the version to roll back from: from_version (the version the alert names, e.g. "
               "${event.attributes.version}), or only_if_unverified: true (act only if the serving version fails "
               "verification); valid choices: from_version, only_if_unverified")


class ModelParams(Params):
    """A model in a registry (default: the `model_registry` setting)."""

    model: str = Field(pattern=MODEL_NAME, examples=["fraud-scorer"])
    registry: str | None = Field(default=None, pattern=REGISTRY_URL, examples=["s3://models/registry"])


class RollbackParams(ModelParams):
    """Walk back from `from_version`; without it (only with `only_if_unverified`), from the serving version.

    One of the two is required: with neither, `verify()` cannot tell a rollback this step made from a
    good version served all along, so a retry after a transient error would settle the step as done with
    the bad version still served. The loader rejects a runbook step that sets neither (`required_one_of`).
    """

    required_one_of: ClassVar[tuple[str, ...]] = START_CHOICES

    from_version: str | None = Field(default=None, pattern=VERSION_NAME, examples=["v7"])
    only_if_unverified: bool = Field(
        default=False, description="act only if the start version itself fails verification (corroborates the alert)"
    )

    @model_validator(mode="after")
    def _start_named(self) -> Self:
        """`from_version` or `only_if_unverified: true`: what makes the step's verify() mean "rolled back"."""
        if self.from_version is None and not self.only_if_unverified:
            raise ValueError(NEEDS_START)
        return self


async def pin_start(raw: dict[str, Any], ctx: ActuationContext) -> dict[str, Any]:
    """Rollback params as an operator gave them, with `from_version` set to the version served now when they name
    neither it nor `only_if_unverified` (`responder models rollback` without `--from`); ConfigError when the
    registry cannot say (nothing served, or not readable)."""
    if raw.get("from_version") is not None or raw.get("only_if_unverified") is True:
        return raw
    try:
        named = raw.get("registry")
        config = context_config(ctx)
        store = open_store(registry_url(str(named) if named else None, config), ctx.aws, config)
        serving = await store.serving(str(raw.get("model")))
    except ActuationError as exc:
        raise ConfigError(f"cannot read which version of {raw.get('model')} is served (name it with --from): "
                          f"{exc}") from exc
    if serving is None:
        raise ConfigError(f"no version of {raw.get('model')} is served: name the bad one with --from")
    return {**raw, "from_version": serving}


class VersionParams(ModelParams):
    """One version of a model."""

    version: str = Field(pattern=VERSION_NAME, examples=["v7"])
    reason: str = Field(default="", max_length=500, examples=["artifact tampered"])


def store_for(p: ModelParams, ctx: ActuationContext) -> ModelStore:
    """The registry backend these params name."""
    config = context_config(ctx)
    return open_store(registry_url(p.registry, config), ctx.aws, config)


async def serving_state(p: ModelParams, ctx: ActuationContext) -> dict[str, JsonValue]:
    """The serving pointer now, in the shape of a pointer step's `prior`/`after`: what a rollback's or a switch's
    `observe()` reports, so that `responder undo` compares it with the step's after-state (compare-and-set)."""
    return {"serving": await store_for(p, ctx).serving(p.model)}


async def read_back(store: ModelStore, model: str, expected: str) -> str | None:
    """The serving version read back after a switch; PermanentActuationError when it is not `expected`."""
    now = await store.serving(model)
    if now != expected:
        raise PermanentActuationError(f"{model} serves {now} after switching to {expected}", code="ReadBackMismatch")
    return now
