"""`model.rollback_to_last_signed`: serve the newest older version that verifies against a trusted key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from pydantic import JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, ModelConfig, PlanPreview
from responder.actuators.model.backends import context_config
from responder.actuators.model.params import RollbackParams, pin_start, read_back, serving_state, store_for
from responder.actuators.model.selection import check, select
from responder.actuators.model.signing import NeedsSigning
from responder.actuators.model.versions import ModelStore
from responder.actuators.partial import Partly
from responder.actuators.registry import register
from responder.errors import ActuationError, PermanentActuationError

log = structlog.get_logger(__name__)


@register
class RollbackToLastSigned(NeedsSigning, Actuator[RollbackParams]):
    """Serve the newest version older than the bad one whose signature verifies against a trusted key.

    Candidates that are unsigned, signed by an untrusted key, changed since signing, quarantined
    or not deployable are walked past and listed in `outputs.rejected`. When none qualifies
    nothing is switched and the step fails permanently (code NoSignedVersion): follow it with a
    notify step `when: [{field: steps.<id>.result.to, op: exists, value: false}]` and
    `on_failure: continue` on this step. The reverse (`model.switch_version`) needs approval.

    With `only_if_unverified: true` (integrity alerts) it switches nothing when the version the
    alert names verifies after all (`outputs.corroborated: false`): an alert alone cannot make it
    replace a good model.

    Set `from_version` (the version the alert names) or `only_if_unverified: true`; a step with
    neither is rejected at load. With `from_version` a redelivered alert, a retry or crash recovery
    changes nothing once `from_version` is no longer served and the serving version verifies, and
    a newer good deployment is never rolled back by a stale alert.

    Example::

        - id: roll-back
          actuator: model.rollback_to_last_signed
          with:
            model: fraud-scorer
            from_version: v7
    """

    name = "model.rollback_to_last_signed"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {
        "model": "fraud-scorer", "backend": "local", "from": "v7", "to": "v6", "start": "v7",
        "digest": "sha256:0", "key": "release", "location": "models/fraud-scorer/v6", "rejected": [],
        "corroborated": True, "note": "",
    }
    params = RollbackParams
    literal_params = ("registry",)
    permissions = ("s3:ListBucket", "s3:GetObject", "ssm:GetParameter", "ssm:PutParameter",
                   "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                   "sagemaker:UpdateEndpoint", "sagemaker:ListTags", "ssm:ListTagsForResource")  # tags: the guard's
    destructive = False
    changes_in_turn = True  # the pointer moved, then read back, which may fail
    reverse = "model.switch_version"

    def target(self, p: RollbackParams) -> str:
        return f"model/{p.model}"

    async def operator_params(self, raw: dict[str, Any], ctx: ActuationContext) -> dict[str, Any]:
        """Without `from_version` (nor `only_if_unverified`): from the version served now, so verify() can tell."""
        return await pin_start(raw, ctx)

    async def plan(self, p: RollbackParams, ctx: ActuationContext) -> PlanPreview:
        """The walk is read-only, so the preview says which version would be served and what is skipped."""
        start = p.from_version or "the serving version"
        summary = (f"serve the newest version of {p.model} older than {start} that verifies against a trusted key; "
                   "refuse if there is none")
        try:
            config = context_config(ctx)
            sel = await select(store_for(p, ctx), p.model, config.trusted_keys, p.from_version,
                               legacy=config.accept_legacy, migrated=config.refuse_legacy)
        except ActuationError as exc:
            return PlanPreview(target=self.target(p), summary=f"{summary} (registry not readable now: {exc})")
        skipped = ", ".join(f"{r.version} ({r.reason})" for r in sel.rejected) or "none"
        found = f"would serve {sel.chosen.version}" if sel.chosen else "would refuse: no version qualifies"
        return PlanPreview(target=self.target(p), summary=f"{summary}: {found} instead of {sel.serving}; "
                           f"skipped {skipped}")

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
        if p.only_if_unverified and not await self._corroborated(store, p, config, p.from_version or serving):
            log.warning("model_rollback_not_corroborated", model=p.model, version=p.from_version or serving)
            return ActuationResult(
                changed=False, target=self.target(p), prior={"serving": serving}, after={"serving": serving},
                outputs={"model": p.model, "backend": store.kind, "from": serving, "to": serving,
                         "start": p.from_version or serving, "rejected": [], "corroborated": False,
                         "note": f"{p.from_version or serving} verifies against a trusted key; nothing switched"},
            )
        sel = await select(store, p.model, config.trusted_keys, p.from_version, serving, legacy=config.accept_legacy,
                           migrated=config.refuse_legacy)
        rejected = [r.view() for r in sel.rejected]
        if sel.chosen is None or sel.verdict is None:
            log.warning("model_rollback_refused", model=p.model, start=sel.start, rejected=len(rejected))
            raise PermanentActuationError(sel.refusal(), code="NoSignedVersion")
        chosen = sel.chosen
        changed = sel.serving != chosen.version
        with Partly(lambda: ({"serving": sel.serving}, {"serving": chosen.version})) as partly:  # the read-back
            if changed:
                await store.set_serving(p.model, chosen)
                partly.note(f"pointed {p.model} at {chosen.version} (it served {sel.serving})")
            now = await read_back(store, p.model, chosen.version)
        log.info("model_rolled_back", model=p.model, from_version=sel.serving, to_version=now, changed=changed)
        return ActuationResult(
            changed=changed,
            target=self.target(p),
            prior={"serving": sel.serving},
            after={"serving": now},
            outputs={"model": p.model, "backend": store.kind, "from": sel.serving, "to": now, "start": sel.start,
                     "digest": sel.verdict.digest, "key": sel.verdict.key, "location": chosen.location,
                     "rejected": rejected, "corroborated": True, "note": sel.verdict.detail},
        )

    async def _corroborated(self, store: ModelStore, p: RollbackParams, config: ModelConfig, start: str | None) -> bool:
        """False when the version the alert is about is registered and verifies after all.

        A legacy signature (no release statement) counts as verifying here: its files are intact under a
        trusted key, which is what an integrity alert claims is not so; it is still never a rollback target. With
        `model_refuse_legacy_signatures` (the migration is over) a legacy signature corroborates the alert.
        """
        found = [v for v in await store.versions(p.model) if v.version == start]
        if not found:
            return True
        return not (await check(store, found[0], config.trusted_keys, await store.quarantined(p.model),
                                legacy=not config.refuse_legacy, migrated=config.refuse_legacy)).ok

    async def verify(self, p: RollbackParams, ctx: ActuationContext) -> bool:
        """Done when the serving version is not `from_version` and itself passes every check; with
        `only_if_unverified`, also when the version the alert is about is still served and the alert is not
        corroborated (what `apply` leaves as it is, by design: the runbook tells a human, not an escalation)."""
        store, config = store_for(p, ctx), context_config(ctx)
        serving = await store.serving(p.model)
        if await self._good(store, p, config, serving):
            return True
        start = p.from_version or serving
        return (p.only_if_unverified and serving is not None and serving == start
                and not await self._corroborated(store, p, config, start))

    async def observe(self, p: RollbackParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The version served now: read before the step (its prior state) and by undo's compare-and-set, which skips
        (without --force) once another version is served than the one the step left."""
        return await serving_state(p, ctx)

    async def outputs_now(self, p: RollbackParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """Only the version served now (`to`): what was served before the change (`from`, `start`), the walk
        (`rejected`, `digest`, `key`, `location`, `note`) and whether the alert was corroborated (`corroborated`,
        judged against the version served at apply time) no read after the change can give, so they are lost and a
        later step reading one fails and escalates (a `when` on `corroborated` is never read as not set)."""
        store = store_for(p, ctx)
        now = await store.serving(p.model)
        return {"model": p.model, "backend": store.kind, "to": now} if now is not None else None

    async def _good(self, store: ModelStore, p: RollbackParams, config: ModelConfig, serving: str | None) -> bool:
        if serving is None or serving == p.from_version:
            return False
        versions = {v.version: v for v in await store.versions(p.model)}
        if serving not in versions:
            return False
        bad = versions[p.from_version].digest if p.from_version in versions else None
        if bad and versions[serving].digest == bad:  # the bad artifact under another version name
            return False
        return (await check(store, versions[serving], config.trusted_keys, await store.quarantined(p.model),
                            legacy=config.accept_legacy, migrated=config.refuse_legacy)).ok

    def reverse_params(self, p: RollbackParams, result: ActuationResult) -> dict[str, Any] | None:
        """Serve the recorded prior version again, only when the recorded after-state is the version this rollback
        chose and switched to (its walk's `digest` and `to`): a result settled by a read-back after a transient error,
        or a "not needed" one, may record as its after-state a release someone else deployed meanwhile, and serving
        the prior version over it would bring back what was rolled away from."""
        prior, after, out = result.prior.get("serving"), result.after.get("serving"), result.outputs
        if not result.changed or not isinstance(prior, str):
            return None
        if not out.get("digest") or out.get("to") != after or out.get("from") == after:
            return None
        return {"model": p.model, "registry": p.registry, "version": prior, "reason": "undo rollback"}
