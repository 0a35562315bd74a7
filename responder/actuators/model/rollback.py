"""Model actuators: roll back to the last signed version, switch back (its reverse), quarantine a version."""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import Field

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.model.backends import context_config, open_store
from responder.actuators.model.selection import check, select
from responder.actuators.model.versions import MODEL_NAME, REGISTRY_URL, VERSION_NAME, ModelConfig, ModelStore
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)


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


@register
class RollbackToLastSigned(Actuator[RollbackParams]):
    """Serve the newest version older than the bad one whose signature verifies against a trusted key.

    Candidates that are unsigned, signed by an untrusted key, changed since signing, quarantined
    or not deployable are walked past and listed in `outputs.rejected`. When none qualifies
    nothing is switched and the step fails permanently (code NoSignedVersion): follow it with a
    notify step `when: [{field: steps.<id>.result.to, op: exists, value: false}]` and
    `on_failure: continue` on this step. The reverse (`model.switch_version`) needs approval.

    With `only_if_unverified: true` (integrity alerts) it refuses with NotCorroborated when the
    version the alert names verifies after all: an alert alone cannot make it switch a good model.

    Pass `from_version` (the version the alert names) in runbooks: then a redelivered alert, a
    retry or crash recovery changes nothing once `from_version` is no longer served and the
    serving version verifies, and a newer good deployment is never rolled back by a stale alert.

    Example::

        - id: roll-back
          actuator: model.rollback_to_last_signed
          with:
            model: fraud-scorer
            from_version: v7
    """

    name = "model.rollback_to_last_signed"
    params = RollbackParams
    permissions = ("s3:ListBucket", "s3:GetObject", "ssm:GetParameter", "ssm:PutParameter",
                   "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                   "sagemaker:UpdateEndpoint")
    reverse = "model.switch_version"

    def target(self, p: RollbackParams) -> str:
        return f"model/{p.model}"

    async def plan(self, p: RollbackParams, ctx: ActuationContext) -> PlanPreview:
        start = p.from_version or "the serving version"
        return PlanPreview(target=self.target(p), summary=f"serve the newest version of {p.model} older than "
                           f"{start} that verifies against a trusted key; refuse if there is none")

    async def apply(self, p: RollbackParams, ctx: ActuationContext) -> ActuationResult:
        config = context_config(ctx)
        store = store_for(p, ctx)
        serving = await store.serving(p.model)
        if p.from_version and serving not in (None, p.from_version) and await self._good(store, p, config, serving):
            log.info("model_rollback_not_needed", model=p.model, serving=serving, from_version=p.from_version)
            return ActuationResult(
                changed=False, target=self.target(p), prior={"serving": serving}, after={"serving": serving},
                outputs={"model": p.model, "backend": store.kind, "from": serving, "to": serving,
                         "start": p.from_version, "rejected": [],
                         "note": f"{p.from_version} is no longer served and {serving} verifies"},
            )
        if p.only_if_unverified:
            await self._corroborate(store, p, config, p.from_version or serving)
        sel = await select(store, p.model, config.trusted_keys, p.from_version, serving)
        rejected = [r.view() for r in sel.rejected]
        if sel.chosen is None or sel.verdict is None:
            log.warning("model_rollback_refused", model=p.model, start=sel.start, rejected=len(rejected))
            raise PermanentActuationError(sel.refusal(), code="NoSignedVersion")
        chosen = sel.chosen
        changed = sel.serving != chosen.version
        if changed:
            await store.set_serving(p.model, chosen)
        now = await read_back(store, p.model, chosen.version)
        log.info("model_rolled_back", model=p.model, from_version=sel.serving, to_version=now, changed=changed)
        return ActuationResult(
            changed=changed,
            target=self.target(p),
            prior={"serving": sel.serving},
            after={"serving": now},
            outputs={"model": p.model, "backend": store.kind, "from": sel.serving, "to": now, "start": sel.start,
                     "digest": sel.verdict.digest, "key": sel.verdict.key, "location": chosen.location,
                     "rejected": rejected},
        )

    async def _corroborate(self, store: ModelStore, p: RollbackParams, config: ModelConfig, start: str | None) -> None:
        """Refuse (NotCorroborated) when the version the alert is about verifies after all."""
        found = [v for v in await store.versions(p.model) if v.version == start]
        if not found:
            return
        verdict = await check(store, found[0], config.trusted_keys, await store.quarantined(p.model))
        if verdict.ok:
            log.warning("model_rollback_not_corroborated", model=p.model, version=start)
            raise PermanentActuationError(
                f"{p.model} {start} verifies against a trusted key ({verdict.digest}); the alert is not corroborated "
                "by the registry, so nothing was switched", code="NotCorroborated")

    async def verify(self, p: RollbackParams, ctx: ActuationContext) -> bool:
        """Done when the serving version is not `from_version` and itself passes every check."""
        store = store_for(p, ctx)
        return await self._good(store, p, context_config(ctx), await store.serving(p.model))

    async def _good(self, store: ModelStore, p: RollbackParams, config: ModelConfig, serving: str | None) -> bool:
        if serving is None or serving == p.from_version:
            return False
        versions = {v.version: v for v in await store.versions(p.model)}
        if serving not in versions:
            return False
        return (await check(store, versions[serving], config.trusted_keys, await store.quarantined(p.model))).ok

    def reverse_params(self, p: RollbackParams, result: ActuationResult) -> dict[str, Any] | None:
        prior = result.prior.get("serving")
        if not result.changed or not isinstance(prior, str):
            return None
        return {"model": p.model, "registry": p.registry, "version": prior, "reason": "undo rollback"}


@register
class SwitchVersion(Actuator[VersionParams]):
    """Point a model's serving pointer at one named version (not quarantined); the undo of a rollback.

    Destructive: it may put back a version that was rolled away from, so it needs approval. Its own
    reverse is a switch back to the version served before.

    Example::

        - id: switch-back
          actuator: model.switch_version
          with: {model: fraud-scorer, version: v7}
    """

    name = "model.switch_version"
    params = VersionParams
    reverse = "model.switch_version"
    permissions = ("s3:ListBucket", "s3:GetObject", "ssm:GetParameter", "ssm:PutParameter",
                   "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                   "sagemaker:UpdateEndpoint")
    destructive = True

    def target(self, p: VersionParams) -> str:
        return f"model/{p.model}"

    async def plan(self, p: VersionParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.target(p), summary=f"serve {p.model} version {p.version}")

    async def apply(self, p: VersionParams, ctx: ActuationContext) -> ActuationResult:
        store = store_for(p, ctx)
        versions = {v.version: v for v in await store.versions(p.model)}
        if p.version not in versions:
            raise PermanentActuationError(f"{p.model} has no version {p.version}", code="NotFound")
        if p.version in await store.quarantined(p.model):
            raise PermanentActuationError(f"{p.model} {p.version} is quarantined", code="Quarantined")
        before = await store.serving(p.model)
        if before != p.version:
            await store.set_serving(p.model, versions[p.version])
        now = await read_back(store, p.model, p.version)
        log.info("model_version_switched", model=p.model, from_version=before, to_version=now)
        return ActuationResult(changed=before != p.version, target=self.target(p), prior={"serving": before},
                               after={"serving": now},
                               outputs={"model": p.model, "backend": store.kind, "from": before, "to": now})

    async def verify(self, p: VersionParams, ctx: ActuationContext) -> bool:
        return await store_for(p, ctx).serving(p.model) == p.version

    def reverse_params(self, p: VersionParams, result: ActuationResult) -> dict[str, Any] | None:
        prior = result.prior.get("serving")
        if not result.changed or not isinstance(prior, str):
            return None
        return {"model": p.model, "registry": p.registry, "version": prior, "reason": "undo switch"}


@register
class QuarantineVersion(Actuator[VersionParams]):
    """Mark a model version never to be served again (idempotent; lifting it is a manual act).

    Example::

        - id: quarantine
          actuator: model.quarantine_version
          with: {model: fraud-scorer, version: v7, reason: artifact tampered}
    """

    name = "model.quarantine_version"
    params = VersionParams
    permissions = ("s3:ListBucket", "s3:PutObject")
    irreversible = "lifting a quarantine is a deliberate manual act: delete the mark (see README, Model rollback)"

    def target(self, p: VersionParams) -> str:
        return f"model/{p.model}/{p.version}"

    async def plan(self, p: VersionParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.target(p), summary=f"quarantine {p.model} version {p.version}")

    async def apply(self, p: VersionParams, ctx: ActuationContext) -> ActuationResult:
        changed = await store_for(p, ctx).quarantine(p.model, p.version, p.reason)
        log.info("model_version_quarantined", model=p.model, version=p.version, changed=changed)
        return ActuationResult(changed=changed, target=self.target(p), prior={"quarantined": not changed},
                               after={"quarantined": True},
                               outputs={"model": p.model, "version": p.version, "reason": p.reason})

    async def verify(self, p: VersionParams, ctx: ActuationContext) -> bool:
        return p.version in await store_for(p, ctx).quarantined(p.model)
