"""IAM deny policies on a user or role: revoke its sessions, quarantine it, and put back what was there.

The inline-policy calls they make (and the deny-all document) are in `responder.actuators.aws.iam_inline`; the undo
that puts a policy back, `aws.iam.restore_inline_policy`, is in `responder.actuators.aws.iam_restore`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, JsonValue

from responder.actuators.aws.iam import IAM_NAME, PRINCIPAL_READS
from responder.actuators.aws.iam_inline import deny_document, get_inline, put_inline
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register
from responder.models.event import utc_now

PrincipalType = Literal["user", "role"]
REVOKE_POLICY = "responder-revoke-older-sessions"
INLINE_DENY = ("iam:GetUserPolicy", "iam:PutUserPolicy", "iam:GetRolePolicy", "iam:PutRolePolicy", *PRINCIPAL_READS)
QUARANTINE_POLICY = "responder-quarantine"
RESPONDER_POLICY = r"^responder-[\w+=,.@-]{1,100}$"
ASKED_KEPT = 4096  # steps whose asked-for cutoff a process remembers for its read-backs (oldest forgotten first)


class PrincipalParams(Params):
    """An IAM user or role, by name."""

    principal_type: PrincipalType = Field(examples=["user"])
    principal_name: str = Field(pattern=IAM_NAME, examples=["ml-training"])


class RevokeParams(PrincipalParams):
    """Deny credentials issued before `issued_before` (default: the moment of the first apply)."""

    issued_before: AwareDatetime | None = None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cutoff(doc: dict[str, Any] | None) -> str | None:
    for st in (doc or {}).get("Statement", []):
        found = st.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        if found:
            return str(found)
    return None


class InlineDeny(Actuator[Any]):
    """Base of the actuators that own one `responder-…` inline policy on a user or role."""

    destructive = False
    reverse = "aws.iam.restore_inline_policy"
    policy = ""

    def target(self, p: PrincipalParams) -> str:
        return f"{p.principal_type}/{p.principal_name}"

    def reverse_params(self, p: PrincipalParams, result: ActuationResult) -> dict[str, Any] | None:
        if not result.changed:
            return None
        return {"principal_type": p.principal_type, "principal_name": p.principal_name,
                "policy_name": self.policy, "document": result.prior.get("document")}

    async def ensure(self, p: PrincipalParams, ctx: ActuationContext, wanted: dict[str, Any]) -> ActuationResult:
        """Make the principal's policy exactly `wanted` (desired state), recording what was there."""
        before = await get_inline(ctx, p.principal_type, p.principal_name, self.policy)
        changed = before != wanted
        if changed:
            await put_inline(ctx, p.principal_type, p.principal_name, self.policy, wanted)
        return ActuationResult(changed=changed, target=self.target(p), prior={"document": before},
                               after={"document": wanted})

    async def holds(self, p: PrincipalParams, ctx: ActuationContext, wanted: dict[str, Any]) -> bool:
        """Whether the principal's policy is `wanted` now."""
        return await get_inline(ctx, p.principal_type, p.principal_name, self.policy) == wanted

    async def observe(self, p: PrincipalParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The policy document now (None: no such policy), read before the first attempt: a step settled by
        verify after a lost reply still records the document undo must put back."""
        return {"document": await get_inline(ctx, p.principal_type, p.principal_name, self.policy)}


@register
class RevokeSessions(InlineDeny):
    """Revoke every temporary credential of a user or role issued so far: deny-all on `aws:TokenIssueTime`.

    This is the inline policy AWS's console "Revoke active sessions" writes. Long-term access keys carry
    no `aws:TokenIssueTime` and are not affected (deactivate them separately). Re-applying with the same
    idempotency key keeps the first cutoff; a later incident moves the cutoff forward, never back.
    Note: moto ignores policy conditions, so its sandbox cannot show which sessions are denied.

    The policy names one step (its Sid), the last that moved the cutoff. A step whose moment another incident's
    cutoff already covers (the same second, or later) writes nothing, and a later incident's step replaces the Sid:
    this process remembers the cutoff each of its steps asked for, so their read-backs (and the drift check of the
    incident's next event) verify by `cutoff >= asked`, remembered only once its apply ended with the cutoff in place
    (read back, or put): a step whose put failed, or this process did not apply (an open intent after a restart),
    verifies only under its own Sid, as before: another incident's cutoff is no proof it acted.

    Example::

        - id: revoke-sessions
          actuator: aws.iam.revoke_sessions
          with:
            principal_type: user
            principal_name: ${event.resource.iam_user.name}
    """

    name = "aws.iam.revoke_sessions"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"cutoff": "2026-01-01T00:00:00Z"}
    params = RevokeParams
    not_identifiers = ("issued_before",)  # the cutoff: a time, no resource
    permissions = INLINE_DENY
    policy = REVOKE_POLICY

    def __init__(self) -> None:
        self._asked: OrderedDict[str, str] = OrderedDict()  # idempotency key -> the cutoff its apply asked for

    def _remember(self, key: str, cutoff: str) -> None:
        self._asked[key] = cutoff
        self._asked.move_to_end(key)
        while len(self._asked) > ASKED_KEPT:
            self._asked.popitem(last=False)

    async def plan(self, p: RevokeParams, ctx: ActuationContext) -> PlanPreview:
        when = p.issued_before.isoformat() if p.issued_before else "now"
        return PlanPreview(target=self.target(p),
                           summary=f"deny all to {self.target(p)}'s credentials issued before {when}")

    def _sid(self, ctx: ActuationContext) -> str:
        return "ResponderRevoke" + "".join(c for c in ctx.key if c.isalnum())[:32]

    async def apply(self, p: RevokeParams, ctx: ActuationContext) -> ActuationResult:
        remembers = p.issued_before is None and bool(ctx.key)
        if remembers:  # this attempt proves nothing yet: a put that fails must not verify by another's cutoff
            self._asked.pop(ctx.key, None)
        before = await get_inline(ctx, p.principal_type, p.principal_name, self.policy)
        old = _cutoff(before)
        same_key = bool(before) and before["Statement"][0].get("Sid") == self._sid(ctx)  # type: ignore[index]
        requested = _iso(p.issued_before or utc_now())
        keep = bool(same_key and old and p.issued_before is None)
        wanted = old if keep else max(old or "", requested)
        changed = wanted != old
        doc = before
        if changed:
            doc = deny_document(self._sid(ctx), {"DateLessThan": {"aws:TokenIssueTime": wanted}})
            await put_inline(ctx, p.principal_type, p.principal_name, self.policy, doc)
        if remembers:  # only once the cutoff is in place: read back as held, or written by this put
            self._remember(ctx.key, old if keep and old else requested)
        return ActuationResult(changed=changed, target=self.target(p), prior={"document": before, "cutoff": old},
                               after={"document": doc, "cutoff": wanted}, outputs={"cutoff": wanted})

    async def outputs_now(self, p: RevokeParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The cutoff in force (one a later incident moved forward since is the one that holds)."""
        cutoff = _cutoff(await get_inline(ctx, p.principal_type, p.principal_name, self.policy))
        return {"cutoff": cutoff} if cutoff is not None else None

    async def observe(self, p: PrincipalParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The document and its cutoff now: the shape of `prior` and `after`."""
        doc = await get_inline(ctx, p.principal_type, p.principal_name, self.policy)
        return {"document": doc, "cutoff": _cutoff(doc)}

    async def verify(self, p: RevokeParams, ctx: ActuationContext) -> bool:
        doc = await get_inline(ctx, p.principal_type, p.principal_name, self.policy)
        cutoff = _cutoff(doc)
        if cutoff is None:
            return False
        if p.issued_before is None:  # "now" of this step: a cutoff this step wrote, or one at or after what it asked
            asked = self._asked.get(ctx.key) if ctx.key else None
            mine = bool(doc) and doc["Statement"][0].get("Sid") == self._sid(ctx)  # type: ignore[index]
            return mine or (asked is not None and cutoff >= asked)
        return cutoff >= _iso(p.issued_before)


@register
class QuarantinePrincipal(InlineDeny):
    """Attach an explicit deny-all inline policy to a user or role: nothing it calls is allowed any more.

    An inline policy (rather than the AWS-managed AWSDenyAll) needs no managed-policy ARN per partition,
    works the same for users and roles, and is removed by name on undo.

    Example::

        - id: quarantine-role
          actuator: aws.iam.quarantine_principal
          with:
            principal_type: role
            principal_name: ${event.resource.iam_role.name}
    """

    name = "aws.iam.quarantine_principal"
    params = PrincipalParams
    permissions = INLINE_DENY
    policy = QUARANTINE_POLICY

    async def plan(self, p: PrincipalParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=self.target(p), summary=f"attach deny-all policy {self.policy} to {self.target(p)}")

    async def apply(self, p: PrincipalParams, ctx: ActuationContext) -> ActuationResult:
        return await self.ensure(p, ctx, deny_document("ResponderQuarantine"))

    async def verify(self, p: PrincipalParams, ctx: ActuationContext) -> bool:
        return await self.holds(p, ctx, deny_document("ResponderQuarantine"))
