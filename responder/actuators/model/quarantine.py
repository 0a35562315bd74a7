"""`model.quarantine_version`: mark a version, and its artifact digest, never to be served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import structlog
from pydantic import JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview
from responder.actuators.model.backends import context_config
from responder.actuators.model.params import VersionParams, store_for
from responder.actuators.model.selection import attested
from responder.actuators.model.versions import ModelStore, ModelVersion, digest_mark, digest_shaped
from responder.actuators.partial import Partly
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)


@register
class QuarantineVersion(Actuator[VersionParams]):
    """Mark a model version never to be served again (idempotent; lifting it is a manual act).

    The version need not be registered (an unregistered version being served is what `model-unsigned-deployed`
    quarantines), but the model must be: one with no version registered and none served fails `NotFound`. A version
    name with the form of a digest's mark (`sha256.` and 57 hex digits) fails `InvalidName`: its mark would quarantine
    another version's artifact.

    Example::

        - id: quarantine
          actuator: model.quarantine_version
          with: {model: fraud-scorer, version: v7, reason: artifact tampered}
    """

    name = "model.quarantine_version"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {
        "model": "fraud-scorer", "version": "v7", "reason": "artifact tampered",
    }
    params = VersionParams
    literal_params = ("registry",)
    not_identifiers = ("reason",)  # free text, which a runbook may take from the alert
    permissions = ("s3:ListBucket", "s3:GetObject", "s3:PutObject")  # GetObject: versions() reads digests
    destructive = False
    changes_in_turn = True  # a mark for the version, then one for its artifact's digest
    irreversible = "lifting a quarantine is a deliberate manual act: delete the mark (see docs/models.md)"

    def target(self, p: VersionParams) -> str:
        return f"model/{p.model}/{p.version}"

    async def plan(self, p: VersionParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.target(p), summary=f"quarantine {p.model} version {p.version}")

    async def apply(self, p: VersionParams, ctx: ActuationContext) -> ActuationResult:
        if digest_shaped(p.version):  # the served version's name is whatever its deployer chose
            raise PermanentActuationError(
                f"version name {p.version!r} has the form of an artifact digest's quarantine mark: a mark by that name "
                "would quarantine the artifact with that digest, another version's (quarantine that version instead)",
                code="InvalidName")
        store = store_for(p, ctx)
        versions = await store.versions(p.model)
        if not versions and await store.serving(p.model) is None:  # a misspelt model: a mark would protect nothing
            raise PermanentActuationError(
                f"model {p.model} is not in the registry (no version registered, none served): check the model name",
                code="NotFound")
        with Partly() as partly:
            changed = await store.quarantine(p.model, p.version, p.reason)
            if changed:
                partly.note(f"marked {p.model} {p.version} quarantined")
            digest = await self._signed_digest(store, p, ctx, versions)
            if digest:  # the same signed artifact under another name stays quarantined
                changed = await store.quarantine(p.model, digest_mark(digest), f"{p.version}: {p.reason}") or changed
        log.info("model_version_quarantined", model=p.model, version=p.version, changed=changed)
        return ActuationResult(changed=changed, target=self.target(p), prior={"quarantined": not changed},
                               after={"quarantined": True},
                               outputs={"model": p.model, "version": p.version, "reason": p.reason})

    @staticmethod
    async def _signed_digest(store: ModelStore, p: VersionParams, ctx: ActuationContext,
                             versions: Sequence[ModelVersion]) -> str | None:
        """The artifact digest to mark with the version: only one its files match and its bundle signs, by a trusted
        key, as this very version (`attested`). A bundle copied from another version, or any unverified one, names a
        digest that is only a claim, and marking it would quarantine that other version's artifact."""
        found = next((v for v in versions if v.version == p.version), None)
        if found is None or not found.digest:
            return None
        config = context_config(ctx)
        verdict = await attested(store, found, config.trusted_keys, legacy=config.accept_legacy,
                                 migrated=config.refuse_legacy)
        if not verdict.ok or verdict.digest != found.digest:
            log.warning("model_quarantine_digest_unverified", model=p.model, version=p.version,
                        reason=verdict.reason.value if verdict.reason else "digest_differs")
            return None
        return verdict.digest

    async def verify(self, p: VersionParams, ctx: ActuationContext) -> bool:
        return p.version in await store_for(p, ctx).quarantined(p.model)

    async def outputs_now(self, p: VersionParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """What `apply` returns (its params), once the version is marked."""
        if p.version not in await store_for(p, ctx).quarantined(p.model):
            return None
        return {"model": p.model, "version": p.version, "reason": p.reason}
