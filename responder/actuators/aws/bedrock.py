"""Deny a principal's Amazon Bedrock access with an inline IAM deny policy (the LLMjacking containment).

Tested against the moto server (moto implements the IAM inline-policy calls; Bedrock itself is not called).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from responder.actuators.aws.iam_policies import INLINE_DENY, InlineDeny, PrincipalParams
from responder.actuators.base import ActuationContext, ActuationResult, PlanPreview
from responder.actuators.registry import register

BEDROCK_POLICY = "responder-deny-bedrock"
BEDROCK_ACTION = r"^bedrock:[A-Za-z*]{1,64}$"


class DenyBedrockParams(PrincipalParams):
    """The user or role, and the Bedrock actions to deny (default: all of them)."""

    actions: list[Annotated[str, Field(pattern=BEDROCK_ACTION)]] = Field(default_factory=lambda: ["bedrock:*"],
                                                                        min_length=1,
                               examples=[["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]])


def bedrock_deny(actions: list[str]) -> dict[str, Any]:
    """The policy document: one Deny statement on the actions, every resource."""
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "ResponderDenyBedrock", "Effect": "Deny", "Action": sorted(set(actions)),
                           "Resource": "*"}]}


@register
class DenyBedrockAccess(InlineDeny):
    """Attach an inline policy denying `bedrock:*` (or the listed Bedrock actions) to a user or role.

    An explicit deny beats every allow, so model access the stolen credential enabled (PutUseCaseForModelAccess,
    CreateFoundationModelAgreement) can no longer be used by that principal through any key or session. Undo
    restores the policy that was there before (none, usually) with aws.iam.restore_inline_policy.

    Example::

        - id: deny-bedrock
          actuator: aws.iam.deny_bedrock_access
          with:
            principal_type: user
            principal_name: ${event.resource.iam_user.name}
            actions: ["bedrock:*"]
    """

    name = "aws.iam.deny_bedrock_access"
    params = DenyBedrockParams
    permissions = INLINE_DENY
    literal_params = ("actions",)
    not_identifiers = ("actions",)  # the Bedrock actions the policy denies: no resource
    policy = BEDROCK_POLICY

    async def plan(self, p: DenyBedrockParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.target(p),
                           summary=f"deny {', '.join(p.actions)} to {self.target(p)} ({self.policy})")

    async def apply(self, p: DenyBedrockParams, ctx: ActuationContext) -> ActuationResult:
        return await self.ensure(p, ctx, bedrock_deny(p.actions))

    async def verify(self, p: DenyBedrockParams, ctx: ActuationContext) -> bool:
        return await self.holds(p, ctx, bedrock_deny(p.actions))
