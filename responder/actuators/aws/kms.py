"""KMS: disable a customer managed key (destructive: everything it protects becomes unreadable) and enable it."""

from __future__ import annotations

from typing import Any

from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register

KEY_ID = (r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/)?"
          r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$")


class KmsKeyParams(Params):
    """One KMS key, by key id or key ARN (aliases are refused: act on the exact key)."""

    key_id: str = Field(pattern=KEY_ID, examples=["1234abcd-12ab-34cd-56ef-1234567890ab"])


async def key_state(ctx: ActuationContext, key_id: str) -> str:
    """KeyState from DescribeKey (Enabled, Disabled, PendingDeletion, …)."""
    meta = (await ctx.aws.call("kms", "describe_key", KeyId=key_id))["KeyMetadata"]
    return str(meta["KeyState"])


class _SetKeyState(Actuator[KmsKeyParams]):
    params = KmsKeyParams
    desired = ""
    operation = ""

    def target(self, p: KmsKeyParams) -> str:
        return p.key_id

    async def plan(self, p: KmsKeyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.key_id, summary=f"set KMS key {p.key_id} {self.desired}")

    async def apply(self, p: KmsKeyParams, ctx: ActuationContext) -> ActuationResult:
        before = await key_state(ctx, p.key_id)
        changed = before != self.desired
        if changed:
            await ctx.aws.call("kms", self.operation, KeyId=p.key_id)
        return ActuationResult(changed=changed, target=p.key_id, prior={"state": before},
                               after={"state": self.desired})

    async def verify(self, p: KmsKeyParams, ctx: ActuationContext) -> bool:
        return await key_state(ctx, p.key_id) == self.desired

    async def observe(self, p: KmsKeyParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        return {"state": await key_state(ctx, p.key_id)}

    def reverse_params(self, p: KmsKeyParams, result: ActuationResult) -> dict[str, Any] | None:
        return p.model_dump() if result.changed else None


@register
class DisableKey(_SetKeyState):
    """Disable a KMS key so nothing can encrypt or decrypt with it (destructive: needs approval).

    Use when key material or a grant is abused; every dependent service fails until it is re-enabled.
    moto caveat: moto still encrypts with a disabled key, so only the key state is verifiable there.

    Example::

        - id: disable-kms-key
          actuator: aws.kms.disable_key
          with:
            key_id: ${event.resource.kms_key.id}
    """

    name = "aws.kms.disable_key"
    permissions = ("kms:DescribeKey", "kms:DisableKey", "kms:ListAliases", "kms:ListResourceTags")  # the guard's
    destructive = True
    reverse = "aws.kms.enable_key"
    desired = "Disabled"
    operation = "disable_key"


@register
class EnableKey(_SetKeyState):
    """Enable a disabled KMS key (the undo of disable_key).

    Example::

        - id: enable-kms-key
          actuator: aws.kms.enable_key
          with: {key_id: 1234abcd-12ab-34cd-56ef-1234567890ab}
    """

    name = "aws.kms.enable_key"
    permissions = ("kms:DescribeKey", "kms:EnableKey", "kms:ListAliases", "kms:ListResourceTags")
    destructive = False
    reverse = "aws.kms.disable_key"
    desired = "Enabled"
    operation = "enable_key"
