"""The undo of IAM deny policies: put a responder-owned inline policy of a user or role back as it was
(`aws.iam.restore_inline_policy`, the `reverse` of `responder.actuators.aws.iam_policies`' actuators)."""

from __future__ import annotations

from pydantic import Field, JsonValue, field_validator

from responder.actuators.aws.iam_inline import delete_inline, get_inline, put_inline, require_principal
from responder.actuators.aws.iam_policies import QUARANTINE_POLICY, RESPONDER_POLICY, PrincipalParams
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview
from responder.actuators.registry import register


class RestoreInlineParams(PrincipalParams):
    """A responder-owned inline policy and the document it should have (None: no such policy)."""

    policy_name: str = Field(pattern=RESPONDER_POLICY, examples=[QUARANTINE_POLICY])
    document: dict[str, JsonValue] | None = None

    @field_validator("document")
    @classmethod
    def _deny_only(cls, document: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        """Every policy responder writes only denies, so a restore puts back only a deny: a document that could
        grant anything (alert data a runbook binds here) would widen the principal's access under responder's name."""
        if document is None:
            return None
        given = document.get("Statement")
        statements = [given] if isinstance(given, dict) else given if isinstance(given, list) else []
        if not statements or not all(isinstance(st, dict) and st.get("Effect") == "Deny" for st in statements):
            raise ValueError("a restore puts back only a deny policy: every statement's Effect must be \"Deny\"")
        return document


@register
class RestoreInlinePolicy(Actuator[RestoreInlineParams]):
    """Put a responder-owned inline policy back as it was (delete it when there was none): the undo of deny policies.

    Only policies named `responder-…` can be touched, so an undo can never remove a policy it did not write.

    Example::

        - id: lift-quarantine
          actuator: aws.iam.restore_inline_policy
          with: {principal_type: role, principal_name: inference, policy_name: responder-quarantine}
    """

    name = "aws.iam.restore_inline_policy"
    params = RestoreInlineParams
    # the policy is always one of responder's own (`responder-…`) on the principal, the document what it should hold:
    # neither is a resource it acts on (a protected `responder-*` or a bucket a prior document names refused every
    # restore); the principal is read, and the policy name still checked as an IAM name
    not_identifiers = ("policy_name", "document")
    # what is put back is written in the runbook, never taken from an alert (an undo passes what it recorded)
    literal_params = ("policy_name", "document")
    permissions = ("iam:GetUserPolicy", "iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:GetRolePolicy",
                   "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:GetUser", "iam:GetRole")
    destructive = False
    reverse = None
    irreversible = "it is itself an undo; re-run the original step to contain again"

    def target(self, p: RestoreInlineParams) -> str:
        """The role or user (`role/NAME`); its policy is no path part (`role/NAME/POLICY` reads as a role POLICY)."""
        return f"{p.principal_type}/{p.principal_name}"

    async def plan(self, p: RestoreInlineParams, ctx: ActuationContext) -> PlanPreview:
        what = "delete" if p.document is None else "restore"
        return PlanPreview(target=self.target(p), summary=f"{what} inline policy {p.policy_name} of {self.target(p)}")

    async def apply(self, p: RestoreInlineParams, ctx: ActuationContext) -> ActuationResult:
        before = await get_inline(ctx, p.principal_type, p.principal_name, p.policy_name)
        if before is None:  # no policy, or no principal at all: an undo on a missing user must not report ok
            await require_principal(ctx, p.principal_type, p.principal_name)
        changed = before != p.document
        if changed and p.document is None:
            await delete_inline(ctx, p.principal_type, p.principal_name, p.policy_name)
        elif changed:
            await put_inline(ctx, p.principal_type, p.principal_name, p.policy_name, dict(p.document or {}))
        return ActuationResult(changed=changed, target=self.target(p), prior={"document": before},
                               after={"document": p.document})

    async def verify(self, p: RestoreInlineParams, ctx: ActuationContext) -> bool:
        now = await get_inline(ctx, p.principal_type, p.principal_name, p.policy_name)
        if now is None:  # "no policy" of a principal that does not exist is not a restored state: not found
            await require_principal(ctx, p.principal_type, p.principal_name)
        return now == p.document
