"""`model.switch_version`: serve one named version; the (approved) undo of a rollback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from pydantic import JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview
from responder.actuators.model.backends import context_config
from responder.actuators.model.params import VersionParams, read_back, serving_state, store_for
from responder.actuators.model.selection import check
from responder.actuators.model.signing import NeedsSigning, Reason
from responder.actuators.partial import Partly
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

log = structlog.get_logger(__name__)


@register
class SwitchVersion(NeedsSigning, Actuator[VersionParams]):
    """Point a model's serving pointer at one named version; the undo of a rollback.

    The version must not be quarantined (by name or by its artifact digest) and is re-verified
    against the trusted keys first, exactly as a rollback candidate is: an artifact changed since
    it was signed, unsigned or signed by an untrusted key is refused.

    Destructive: it may put back a version that was rolled away from, so it needs approval. Its own
    reverse is a switch back to the version served before.

    Example::

        - id: switch-back
          actuator: model.switch_version
          with: {model: fraud-scorer, version: v7}
    """

    name = "model.switch_version"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {
        "model": "fraud-scorer", "backend": "local", "from": "v6", "to": "v7",
    }
    params = VersionParams
    literal_params = ("registry",)
    not_identifiers = ("reason",)  # free text, which a runbook may take from the alert
    reverse = "model.switch_version"
    permissions = ("s3:ListBucket", "s3:GetObject", "ssm:GetParameter", "ssm:PutParameter",
                   "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                   "sagemaker:UpdateEndpoint", "sagemaker:ListTags", "ssm:ListTagsForResource")  # tags: the guard's
    destructive = True
    changes_in_turn = True  # the pointer moved, then read back, which may fail

    def target(self, p: VersionParams) -> str:
        return f"model/{p.model}"

    async def plan(self, p: VersionParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.target(p), summary=f"serve {p.model} version {p.version}")

    async def apply(self, p: VersionParams, ctx: ActuationContext) -> ActuationResult:
        store = store_for(p, ctx)
        versions = {v.version: v for v in await store.versions(p.model)}
        if p.version not in versions:
            raise PermanentActuationError(f"{p.model} has no version {p.version}", code="NotFound")
        config = context_config(ctx)
        verdict = await check(store, versions[p.version], config.trusted_keys, await store.quarantined(p.model),
                              legacy=config.accept_legacy, migrated=config.refuse_legacy)
        if verdict.reason is Reason.QUARANTINED:
            raise PermanentActuationError(f"{p.model} {p.version} is quarantined: {verdict.detail}", code="Quarantined")
        if not verdict.ok:
            why = verdict.reason.value if verdict.reason else "rejected"
            raise PermanentActuationError(f"{p.model} {p.version} does not verify: {why} {verdict.detail}"[:1000],
                                          code="NotVerified")
        before = await store.serving(p.model)
        with Partly(lambda: ({"serving": before}, {"serving": p.version})) as partly:  # the read-back may fail
            if before != p.version:
                await store.set_serving(p.model, versions[p.version])
                partly.note(f"pointed {p.model} at {p.version} (it served {before})")
            now = await read_back(store, p.model, p.version)
        log.info("model_version_switched", model=p.model, from_version=before, to_version=now)
        return ActuationResult(changed=before != p.version, target=self.target(p), prior={"serving": before},
                               after={"serving": now},
                               outputs={"model": p.model, "backend": store.kind, "from": before, "to": now})

    async def verify(self, p: VersionParams, ctx: ActuationContext) -> bool:
        return await store_for(p, ctx).serving(p.model) == p.version

    async def observe(self, p: VersionParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The version served now: read before the step (its prior state) and by undo's compare-and-set, which skips
        (without --force) once another version is served than the one the step left."""
        return await serving_state(p, ctx)

    async def outputs_now(self, p: VersionParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The version served now; `from` (what was served before the switch) no read can give: it is lost."""
        store = store_for(p, ctx)
        now = await store.serving(p.model)
        return {"model": p.model, "backend": store.kind, "to": now} if now == p.version else None

    def reverse_params(self, p: VersionParams, result: ActuationResult) -> dict[str, Any] | None:
        prior = result.prior.get("serving")
        if not result.changed or not isinstance(prior, str):
            return None
        return {"model": p.model, "registry": p.registry, "version": prior, "reason": "undo switch"}
