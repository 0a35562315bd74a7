"""EC2 forensics: snapshot every volume of an instance, tagged with the incident, once per idempotency key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import JsonValue

from responder.actuators.aws.ec2 import InstanceParams, describe_instance
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview
from responder.actuators.partial import Partly
from responder.actuators.registry import register

TAG_INCIDENT = "responder:incident"
TAG_KEY = "responder:key"


async def attached_volumes(ctx: ActuationContext, instance_id: str) -> list[str]:
    """Ids of the EBS volumes attached to the instance, sorted."""
    out = await ctx.aws.call(
        "ec2", "describe_volumes", Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )
    return sorted(str(v["VolumeId"]) for v in out.get("Volumes", []))


async def snapshots_for(ctx: ActuationContext, instance_id: str) -> dict[str, str]:
    """Snapshots already taken for this idempotency key, by volume id (pending ones count)."""
    out = await ctx.aws.call(
        "ec2", "describe_snapshots", OwnerIds=["self"],
        Filters=[{"Name": f"tag:{TAG_KEY}", "Values": [_key(ctx, instance_id)]}],
    )
    return {
        str(s["VolumeId"]): str(s["SnapshotId"])
        for s in out.get("Snapshots", [])
        if s.get("State") in ("pending", "completed")
    }


def _key(ctx: ActuationContext, instance_id: str) -> str:
    return ctx.key or f"manual:{instance_id}"


@register
class SnapshotVolumes(Actuator[InstanceParams]):
    """Take a forensic snapshot of every EBS volume attached to an instance, tagged with the incident.

    Snapshots carry `responder:incident` and `responder:key` (the step's idempotency key), so a retry or
    a redelivered event finds them and takes no second copy. On AWS a snapshot starts `pending`; it is
    point-in-time from the call, so a pending snapshot counts as taken. An instance with no EBS volume
    attached has nothing to snapshot: the step succeeds with no snapshot (`snapshot_ids: []`), and is
    verified only when the instance is alive and instance-store-backed (a terminated instance, or an
    EBS-backed one whose volumes were detached, stays unverified for a human). An instance that does
    not exist fails the step (`InvalidInstanceID.NotFound`), like every other EC2 actuator.

    Example::

        - id: snapshot-disks
          actuator: aws.ec2.snapshot_volumes
          with:
            instance_id: ${event.resource.instance.id}
    """

    name = "aws.ec2.snapshot_volumes"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"snapshot_ids": ["snap-0123456789abcdef0"]}
    params = InstanceParams
    permissions = ("ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:CreateSnapshot", "ec2:CreateTags",
                   "ec2:DescribeInstances")
    destructive = False
    changes_in_turn = True  # one snapshot per volume
    reverse = None
    irreversible = "snapshots are evidence: deleting them is a separate, deliberate act, never an undo"

    def target(self, p: InstanceParams) -> str:
        return p.instance_id

    async def plan(self, p: InstanceParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.instance_id, summary=f"snapshot every EBS volume attached to {p.instance_id}")

    async def apply(self, p: InstanceParams, ctx: ActuationContext) -> ActuationResult:
        volumes = await attached_volumes(ctx, p.instance_id)
        taken = await snapshots_for(ctx, p.instance_id)
        if not volumes and not taken:
            await describe_instance(ctx, p.instance_id)  # an unknown instance is a not-found failure, not "none"
        before = dict(taken)
        with Partly(lambda: ({"snapshots": dict(before)}, {"snapshots": dict(taken)})) as partly:
            for volume in volumes:
                if volume in taken:
                    continue
                tags = [
                    {"Key": TAG_INCIDENT, "Value": ctx.incident or "manual"},
                    {"Key": TAG_KEY, "Value": _key(ctx, p.instance_id)},
                    {"Key": "responder:instance", "Value": p.instance_id},
                ]
                created = await ctx.aws.call(
                    "ec2", "create_snapshot", VolumeId=volume,
                    Description=f"responder forensic snapshot of {volume} ({p.instance_id})",
                    TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
                )
                taken[volume] = str(created["SnapshotId"])
                partly.note(f"snapshot {taken[volume]} of {volume}")
        return ActuationResult(
            changed=taken != before, target=p.instance_id,
            prior={"snapshots": dict(before)}, after={"snapshots": dict(taken)},
            outputs={"snapshot_ids": sorted(taken.values())},
        )

    async def verify(self, p: InstanceParams, ctx: ActuationContext) -> bool:
        volumes = await attached_volumes(ctx, p.instance_id)
        taken = await snapshots_for(ctx, p.instance_id)
        if volumes:
            return all(v in taken for v in volumes)
        # no EBS volume attached: done only for a live instance-store-backed instance, which has none to take; an
        # unknown or terminated instance, or an EBS-backed one whose volumes were detached, is not (a human looks)
        inst = await describe_instance(ctx, p.instance_id)
        alive = inst.get("State", {}).get("Name") not in ("shutting-down", "terminated")
        return alive and inst.get("RootDeviceType") == "instance-store"

    async def outputs_now(self, p: InstanceParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The snapshots taken under the step's key (its tag), as `apply` lists them."""
        taken = await snapshots_for(ctx, p.instance_id)
        return {"snapshot_ids": [*sorted(taken.values())]}

    def reverse_params(self, p: InstanceParams, result: ActuationResult) -> dict[str, Any] | None:
        return None
