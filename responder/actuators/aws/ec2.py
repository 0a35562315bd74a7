"""EC2 containment: isolate an instance behind a rule-less quarantine group.

Restoring its groups (`aws.ec2.restore_instance_groups`) is in `responder.actuators.aws.ec2_restore`; stopping and
starting an instance (`aws.ec2.stop_instance`, `aws.ec2.start_instance`) are in `responder.actuators.aws.ec2_state`,
which uses this module's `InstanceParams` and `describe_instance`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.partial import Partly
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

INSTANCE_ID = r"^i-[0-9a-f]{8,17}$"
ENI_ID = r"^eni-[0-9a-f]{8,17}$"
SG_ID = r"^sg-[0-9a-f]{8,17}$"
QUARANTINE_GROUP = "responder-quarantine"
TAG_QUARANTINED = "responder:quarantined"
GONE = ("shutting-down", "terminated")


class InstanceParams(Params):
    """One EC2 instance, by id."""

    instance_id: str = Field(pattern=INSTANCE_ID, examples=["i-0123456789abcdef0"])


async def describe_instance(ctx: ActuationContext, instance_id: str) -> dict[str, Any]:
    """The instance as DescribeInstances reports it; PermanentActuationError when it does not exist."""
    out = await ctx.aws.call("ec2", "describe_instances", InstanceIds=[instance_id])
    for reservation in out.get("Reservations", []):
        for inst in reservation.get("Instances", []):
            return dict(inst)
    raise PermanentActuationError(f"instance {instance_id} not found", code="InvalidInstanceID.NotFound")


def require_live(inst: dict[str, Any], instance_id: str) -> dict[str, Any]:
    """The instance, unless it is terminated or shutting down (PermanentActuationError, as AWS's IncorrectInstanceState:
    it can be neither isolated, stopped nor started, and a human should know the step did nothing)."""
    state = inst.get("State", {}).get("Name")
    if state in GONE:
        raise PermanentActuationError(f"instance {instance_id} is {state}: it cannot be contained or restarted "
                                      "any more", code="IncorrectInstanceState")
    return inst


async def eni_groups(ctx: ActuationContext, instance_id: str) -> dict[str, list[str]]:
    """Security group ids of every network interface attached to the instance, by ENI id."""
    out = await ctx.aws.call(
        "ec2", "describe_network_interfaces", Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )
    return {
        str(eni["NetworkInterfaceId"]): sorted(str(g["GroupId"]) for g in eni.get("Groups", []))
        for eni in out.get("NetworkInterfaces", [])
    }


async def _named_quarantine_group(ctx: ActuationContext, vpc_id: str) -> dict[str, Any] | None:
    found = await ctx.aws.call(
        "ec2", "describe_security_groups",
        Filters=[{"Name": "group-name", "Values": [QUARANTINE_GROUP]}, {"Name": "vpc-id", "Values": [vpc_id]}],
    )
    groups = found.get("SecurityGroups", [])
    return dict(groups[0]) if groups else None


async def quarantine_group(ctx: ActuationContext, vpc_id: str, *, create: bool) -> str | None:
    """The VPC's quarantine group id, stripped of every rule (create=True); None when missing or not rule-less."""
    group = await _named_quarantine_group(ctx, vpc_id)
    if group is not None:
        group_id = str(group["GroupId"])
    elif not create:
        return None
    else:
        try:
            created = await ctx.aws.call(
                "ec2", "create_security_group", GroupName=QUARANTINE_GROUP, VpcId=vpc_id,
                Description="responder quarantine: no inbound, no outbound",
                TagSpecifications=[{"ResourceType": "security-group",
                                    "Tags": [{"Key": "responder:purpose", "Value": "quarantine"}]}],
            )
            group_id = str(created["GroupId"])
            group = (await ctx.aws.call("ec2", "describe_security_groups", GroupIds=[group_id]))["SecurityGroups"][0]
        except PermanentActuationError as exc:  # a concurrent isolation in this VPC created it first
            if exc.code != "InvalidGroup.Duplicate" or (group := await _named_quarantine_group(ctx, vpc_id)) is None:
                raise
            group_id = str(group["GroupId"])
    if create:  # a rule someone added to the quarantine group since is removed again
        if group.get("IpPermissionsEgress"):
            await ctx.aws.call("ec2", "revoke_security_group_egress", GroupId=group_id,
                               IpPermissions=group["IpPermissionsEgress"])
        if group.get("IpPermissions"):
            await ctx.aws.call("ec2", "revoke_security_group_ingress", GroupId=group_id,
                               IpPermissions=group["IpPermissions"])
    elif group.get("IpPermissions") or group.get("IpPermissionsEgress"):
        return None
    return group_id


async def set_groups(ctx: ActuationContext, instance_id: str, groups_by_eni: dict[str, list[str]],
                     partly: Partly, moved: list[str]) -> None:
    """Set each ENI's groups; with one ENI also the instance attribute, so both views agree on every platform. Each
    ENI set is noted in `partly` and appended to `moved`, so a failure part-way names them."""
    for eni, groups in groups_by_eni.items():
        await ctx.aws.call("ec2", "modify_network_interface_attribute", NetworkInterfaceId=eni, Groups=groups)
        moved.append(eni)
        partly.note(f"set the groups of {eni} to {', '.join(groups)}")
    if len(groups_by_eni) == 1:
        (groups,) = groups_by_eni.values()
        await ctx.aws.call("ec2", "modify_instance_attribute", InstanceId=instance_id, Groups=groups)


@register
class IsolateInstance(Actuator[InstanceParams]):
    """Put every network interface of an instance behind a quarantine group with no rules, and tag it.

    The group (`responder-quarantine`, one per VPC) is created when missing and its default egress rule
    is revoked, so the instance can neither receive nor send. The previous groups of each ENI are the
    prior state; `aws.ec2.restore_instance_groups` puts them back. Existing connections tracked by the
    old groups may survive the swap on AWS; snapshot and stop the instance if that matters.

    Example::

        - id: isolate-host
          actuator: aws.ec2.isolate_instance
          with:
            instance_id: ${event.resource.instance.id}
    """

    name = "aws.ec2.isolate_instance"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"quarantine_group": "sg-0123456789abcdef0"}
    params = InstanceParams
    permissions = ("ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                   "ec2:CreateSecurityGroup", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
                   "ec2:ModifyNetworkInterfaceAttribute",
                   "ec2:ModifyInstanceAttribute", "ec2:CreateTags")
    destructive = False
    changes_in_turn = True  # one call per network interface, then the tag
    reverse = "aws.ec2.restore_instance_groups"

    def target(self, p: InstanceParams) -> str:
        return p.instance_id

    async def plan(self, p: InstanceParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.instance_id,
                           summary=f"swap every ENI of {p.instance_id} to the {QUARANTINE_GROUP} group and tag it")

    async def apply(self, p: InstanceParams, ctx: ActuationContext) -> ActuationResult:
        inst = require_live(await describe_instance(ctx, p.instance_id), p.instance_id)
        group = await quarantine_group(ctx, str(inst["VpcId"]), create=True)
        if group is None:  # create=True always returns one; a failure raises from quarantine_group
            raise PermanentActuationError(f"no quarantine group in {inst['VpcId']}", code="QuarantineGroup")
        before = await eni_groups(ctx, p.instance_id)
        pending = {eni: [group] for eni, groups in before.items() if groups != [group]}
        moved: list[str] = []
        prior: dict[str, Any] = {"groups_by_eni": {k: list(v) for k, v in before.items()}}
        with Partly(lambda: (prior, {"groups_by_eni": {eni: [group] if eni in moved else list(groups)
                                                      for eni, groups in before.items()}})) as partly:
            if pending:
                await set_groups(ctx, p.instance_id, {eni: [group] for eni in before}, partly, moved)
            await ctx.aws.call("ec2", "create_tags", Resources=[p.instance_id],
                               Tags=[{"Key": TAG_QUARANTINED, "Value": ctx.incident or "manual"}])
        return ActuationResult(
            changed=bool(pending), target=p.instance_id, prior=prior,
            after={"groups_by_eni": {eni: [group] for eni in before}},
            outputs={"quarantine_group": group},
        )

    async def verify(self, p: InstanceParams, ctx: ActuationContext) -> bool:
        inst = await describe_instance(ctx, p.instance_id)
        if inst.get("State", {}).get("Name") in GONE:
            return False
        group = await quarantine_group(ctx, str(inst["VpcId"]), create=False)
        current = await eni_groups(ctx, p.instance_id)
        return group is not None and bool(current) and all(g == [group] for g in current.values())

    async def outputs_now(self, p: InstanceParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The quarantine group of the instance's VPC, when there is one."""
        inst = await describe_instance(ctx, p.instance_id)
        group = await quarantine_group(ctx, str(inst["VpcId"]), create=False)
        return {"quarantine_group": group} if group is not None else None

    async def observe(self, p: InstanceParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """Each ENI's groups, read before the first attempt: a retry after a lost reply (or after some ENIs
        were swapped) still records the groups from before the isolation, which undo puts back."""
        return {"groups_by_eni": {k: list(v) for k, v in (await eni_groups(ctx, p.instance_id)).items()}}

    def reverse_params(self, p: InstanceParams, result: ActuationResult) -> dict[str, Any] | None:
        prior = result.prior.get("groups_by_eni")
        return {"instance_id": p.instance_id, "groups_by_eni": prior} if result.changed and prior else None
