"""IAM actuators: act on the exact access key a finding names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

IAM_NAME = r"^[\w+=,.@-]{1,64}$"
PRINCIPAL_READS = ("iam:GetUser", "iam:GetRole")  # the protected-id guard reads a named principal's id and path
ACCESS_KEY_ID = r"^(AKIA|ASIA)[A-Z0-9]{12,124}$"
TEMPORARY_KEY_PREFIX = "ASIA"


def long_term_key(value: str) -> str:
    """`value` unless it is a temporary (STS) key id, which no IAM access-key call can act on."""
    if value.startswith(TEMPORARY_KEY_PREFIX):
        raise ValueError(
            f"{value} is a temporary (STS) access key: IAM cannot deactivate, rotate or delete it "
            "(UpdateAccessKey and DeleteAccessKey only know an IAM user's long-term AKIA… keys). Revoke the sessions "
            "of the role or user that issued it instead (aws.iam.revoke_sessions, the console's \"Revoke active "
            "sessions\"), and guard access-key steps with `op: regex, value: \"^AKIA\"`")
    return value


LongTermKeyId = Annotated[str, Field(pattern=ACCESS_KEY_ID, examples=["AKIAIOSFODNN7EXAMPLE"]),
                          AfterValidator(long_term_key)]


class AccessKeyParams(Params):
    """One long-term access key (AKIA…) of one IAM user; a temporary ASIA… key is refused at validation."""

    user_name: str = Field(pattern=IAM_NAME, examples=["ml-training"])
    access_key_id: LongTermKeyId


async def key_status(ctx: ActuationContext, p: AccessKeyParams) -> str:
    """Current Status of the key, read from IAM."""
    listed = await ctx.aws.call("iam", "list_access_keys", UserName=p.user_name)
    for meta in listed.get("AccessKeyMetadata", []):
        if meta["AccessKeyId"] == p.access_key_id:
            return str(meta["Status"])
    raise PermanentActuationError(
        f"access key {p.access_key_id} not found for user {p.user_name}", code="NoSuchEntity"
    )


class _SetKeyStatus(Actuator[AccessKeyParams]):
    params = AccessKeyParams
    permissions = ("iam:ListAccessKeys", "iam:UpdateAccessKey", *PRINCIPAL_READS)
    destructive = False
    desired: str = "Inactive"

    def target(self, p: AccessKeyParams) -> str:
        return p.access_key_id

    async def plan(self, p: AccessKeyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(
            target=p.access_key_id, summary=f"set access key {p.access_key_id} of {p.user_name} {self.desired}"
        )

    async def apply(self, p: AccessKeyParams, ctx: ActuationContext) -> ActuationResult:
        before = await key_status(ctx, p)
        if before != self.desired:
            await ctx.aws.call(
                "iam", "update_access_key", UserName=p.user_name, AccessKeyId=p.access_key_id, Status=self.desired
            )
        return ActuationResult(
            changed=before != self.desired,
            target=p.access_key_id,
            prior={"status": before},
            after={"status": self.desired},
        )

    async def verify(self, p: AccessKeyParams, ctx: ActuationContext) -> bool:
        return await key_status(ctx, p) == self.desired

    async def observe(self, p: AccessKeyParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        return {"status": await key_status(ctx, p)}

    def reverse_params(self, p: AccessKeyParams, result: ActuationResult) -> dict[str, Any] | None:
        return p.model_dump() if result.changed else None


@register
class DeactivateAccessKey(_SetKeyStatus):
    """Set an IAM access key to Inactive (reversible; the key is not deleted).

    Example::

        - id: deactivate-key
          actuator: aws.iam.deactivate_access_key
          with:
            user_name: ${event.resource.access_key.attributes.user_name}
            access_key_id: ${event.resource.access_key.id}
    """

    name = "aws.iam.deactivate_access_key"
    desired = "Inactive"
    reverse = "aws.iam.activate_access_key"


@register
class ActivateAccessKey(_SetKeyStatus):
    """Set an IAM access key back to Active (the undo of deactivate).

    Example::

        - id: reactivate-key
          actuator: aws.iam.activate_access_key
          with: {user_name: alice, access_key_id: AKIAIOSFODNN7EXAMPLE}
    """

    name = "aws.iam.activate_access_key"
    desired = "Active"
    reverse = "aws.iam.deactivate_access_key"
