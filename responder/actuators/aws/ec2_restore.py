"""Restore an isolated EC2 instance's security groups (the undo of `aws.ec2.isolate_instance`, in
`responder.actuators.aws.ec2`)."""

from __future__ import annotations

import re

from pydantic import Field, JsonValue, field_validator

from responder.actuators.aws.ec2 import (
    ENI_ID,
    INSTANCE_ID,
    SG_ID,
    TAG_QUARANTINED,
    describe_instance,
    eni_groups,
    set_groups,
)
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.partial import Partly
from responder.actuators.registry import register
from responder.errors import PermanentActuationError


class RestoreGroupsParams(Params):
    """The groups each ENI of an instance had before isolation."""

    instance_id: str = Field(pattern=INSTANCE_ID, examples=["i-0123456789abcdef0"])
    groups_by_eni: dict[str, list[str]] = Field(min_length=1)

    @field_validator("groups_by_eni")
    @classmethod
    def _ids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """Every key is an ENI id and every value a non-empty list of group ids."""
        for eni, groups in value.items():
            if not re.match(ENI_ID, eni) or not groups or not all(re.match(SG_ID, g) for g in groups):
                raise ValueError(f"bad entry {eni!r}: {groups!r}")
        return value


@register
class RestoreInstanceGroups(Actuator[RestoreGroupsParams]):
    """Give each ENI of an instance back the groups it had before isolation and drop the quarantine tag.

    An ENI no longer attached is skipped (named in `after.not_attached`, and `verify()` is false: a human restores
    it); when none of them is (or the instance does not exist) the step fails (`InvalidNetworkInterfaceID.NotFound`,
    `InvalidInstanceID.NotFound`) for a human: nothing was restored.

    Example::

        - id: release-host
          actuator: aws.ec2.restore_instance_groups
          with:
            instance_id: i-0123456789abcdef0
            groups_by_eni: {eni-0123456789abcdef0: [sg-0123456789abcdef0]}
    """

    name = "aws.ec2.restore_instance_groups"
    params = RestoreGroupsParams
    permissions = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeInstances", "ec2:ModifyNetworkInterfaceAttribute",
                   "ec2:ModifyInstanceAttribute", "ec2:DeleteTags")
    destructive = False
    changes_in_turn = True  # one call per network interface, then the tag
    reverse = "aws.ec2.isolate_instance"

    def target(self, p: RestoreGroupsParams) -> str:
        return p.instance_id

    async def plan(self, p: RestoreGroupsParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.instance_id, summary=f"restore the security groups of {p.instance_id}")

    async def apply(self, p: RestoreGroupsParams, ctx: ActuationContext) -> ActuationResult:
        before = await eni_groups(ctx, p.instance_id)
        wanted = {eni: sorted(groups) for eni, groups in p.groups_by_eni.items() if eni in before}
        if not wanted:  # nothing to restore is a failure for a human, never a quiet ok
            await describe_instance(ctx, p.instance_id)  # an unknown instance: InvalidInstanceID.NotFound
            raise PermanentActuationError(
                f"none of the network interfaces {', '.join(sorted(p.groups_by_eni))} is attached to "
                f"{p.instance_id} any more: restore its security groups by hand",
                code="InvalidNetworkInterfaceID.NotFound")
        changed = any(before[eni] != groups for eni, groups in wanted.items())
        moved: list[str] = []
        with Partly(lambda: ({"groups_by_eni": {e: before[e] for e in moved}}, {})) as partly:
            if changed:
                await set_groups(ctx, p.instance_id, wanted, partly, moved)
            await ctx.aws.call("ec2", "delete_tags", Resources=[p.instance_id], Tags=[{"Key": TAG_QUARANTINED}])
        gone: list[JsonValue] = [eni for eni in sorted(p.groups_by_eni) if eni not in wanted]
        return ActuationResult(changed=changed, target=p.instance_id, prior={"groups_by_eni": before},
                               after={"groups_by_eni": wanted, **({"not_attached": gone} if gone else {})})

    async def verify(self, p: RestoreGroupsParams, ctx: ActuationContext) -> bool:
        current = await eni_groups(ctx, p.instance_id)
        # every recorded ENI attached with its groups back: one detached since (or no instance) is not done
        return all(current.get(eni) == sorted(groups) for eni, groups in p.groups_by_eni.items())
