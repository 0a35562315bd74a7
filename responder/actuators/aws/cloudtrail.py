"""CloudTrail: turn a stopped trail's logging back on (the answer to `StopLogging`, ATT&CK T1562.008).

Tested against the moto server (moto implements StartLogging, StopLogging and GetTrailStatus).
"""

from __future__ import annotations

from pydantic import Field

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register

# a trail name (3-128 of letters, digits, . _ -) or its ARN, as StopLogging's `name` parameter carries it
TRAIL = r"^(arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:[0-9]{12}:trail/)?[A-Za-z0-9][A-Za-z0-9._-]{2,127}$"


class TrailParams(Params):
    """One trail, by name or ARN."""

    trail: str = Field(pattern=TRAIL, examples=["management-events"])


async def is_logging(ctx: ActuationContext, trail: str) -> bool:
    """Whether the trail records events now."""
    status = await ctx.aws.call("cloudtrail", "get_trail_status", Name=trail)
    return bool(status.get("IsLogging"))


@register
class StartLogging(Actuator[TrailParams]):
    """Start logging on a CloudTrail trail someone stopped (desired state: IsLogging true).

    Never undone automatically: stopping audit logging again is what the attacker did, so the reverse is a
    human decision (`aws cloudtrail stop-logging`), not an undo.

    Example::

        - id: restart-logging
          actuator: aws.cloudtrail.start_logging
          with:
            trail: ${event.resource.trail.id}
    """

    name = "aws.cloudtrail.start_logging"
    params = TrailParams
    permissions = ("cloudtrail:GetTrailStatus", "cloudtrail:StartLogging", "cloudtrail:GetTrail",
                   "cloudtrail:ListTags")
    destructive = False
    reverse = None
    irreversible = "re-enabled audit logging is never stopped by an undo; stop it by hand if it must be"

    def target(self, p: TrailParams) -> str:
        return p.trail

    async def plan(self, p: TrailParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.trail, summary=f"start logging on CloudTrail trail {p.trail}")

    async def apply(self, p: TrailParams, ctx: ActuationContext) -> ActuationResult:
        before = await is_logging(ctx, p.trail)
        if not before:
            await ctx.aws.call("cloudtrail", "start_logging", Name=p.trail)
        return ActuationResult(changed=not before, target=p.trail, prior={"is_logging": before},
                               after={"is_logging": True})

    async def verify(self, p: TrailParams, ctx: ActuationContext) -> bool:
        return await is_logging(ctx, p.trail)
