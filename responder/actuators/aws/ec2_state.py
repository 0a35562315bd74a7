"""EC2 instance state: stop an instance (destructive, evidence in memory is lost) and start it again.

Both actuators share `_InstanceState`: read the state, call the operation only when the instance is not
already in (or on its way to) the wanted state, and report the state before and after. A terminated (or
shutting-down) instance fails the step (`IncorrectInstanceState`, as AWS answers), never a quiet success. Each is
the other's reverse. The after-state is recorded, and `observe()` reports the state (for undo's compare-and-set
only: `apply` reads the prior state itself), as where the instance is heading: `stopping` as `stopped`, `pending`
as `running`, so a stop that settled since its step still holds the after-state it recorded; an after-state an older
release recorded in transition is read the same way (`comparable`). The instance is named by `InstanceParams` and
read by `describe_instance` from `responder.actuators.aws.ec2`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from responder.actuators.aws.ec2 import InstanceParams, describe_instance, require_live
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, PlanPreview
from responder.actuators.partial import Partly
from responder.actuators.registry import register

HEADING = {"stopping": "stopped", "pending": "running"}
"""A state in transition, as the state it ends in (what a step's after-state and `observe()` say)."""


def heading(state: str) -> str:
    """Where an instance in `state` is heading: `stopping` is `stopped`, `pending` is `running`, others as they are."""
    return HEADING.get(state, state)


class _InstanceState(Actuator[InstanceParams]):
    params = InstanceParams
    destructive = False
    changes_in_turn = True  # the change, then a read of the state it left, which may fail
    observes_prior = False  # apply reads the state before; observe() is undo's
    operation = ""
    settled: tuple[str, ...] = ()

    def target(self, p: InstanceParams) -> str:
        return p.instance_id

    async def plan(self, p: InstanceParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.instance_id, summary=f"{self.operation.split('_')[0]} instance {p.instance_id}")

    async def apply(self, p: InstanceParams, ctx: ActuationContext) -> ActuationResult:
        state = str(require_live(await describe_instance(ctx, p.instance_id), p.instance_id)["State"]["Name"])
        changed = state not in self.settled
        wanted = heading(self.settled[0])
        with Partly(lambda: ({"state": state}, {"state": wanted})) as partly:  # the read after may fail
            if changed:
                await ctx.aws.call("ec2", self.operation, InstanceIds=[p.instance_id])
                partly.note(f"{self.operation} {p.instance_id} (it was {state})")
            after = heading(str((await describe_instance(ctx, p.instance_id))["State"]["Name"]))
        return ActuationResult(changed=changed, target=p.instance_id, prior={"state": state}, after={"state": after})

    async def verify(self, p: InstanceParams, ctx: ActuationContext) -> bool:
        return str((await describe_instance(ctx, p.instance_id))["State"]["Name"]) in self.settled

    async def observe(self, p: InstanceParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The instance's state (where it is heading), which the reverse changes: one started again by hand since a
        stop is not stopped by its undo without `--force`."""
        return {"state": heading(str((await describe_instance(ctx, p.instance_id))["State"]["Name"]))}

    def comparable(self, after: Mapping[str, Any]) -> dict[str, Any]:
        """Older releases recorded the state read right after the call (`stopping`, `pending`): where it heads."""
        state = after.get("state")
        return {**after, "state": heading(state)} if isinstance(state, str) else dict(after)

    def reverse_params(self, p: InstanceParams, result: ActuationResult) -> dict[str, Any] | None:
        return p.model_dump() if result.changed else None


@register
class StopInstance(_InstanceState):
    """Stop an instance (destructive: in-memory evidence is lost, so snapshot first and get approval).

    Example::

        - id: stop-host
          actuator: aws.ec2.stop_instance
          with:
            instance_id: ${event.resource.instance.id}
    """

    name = "aws.ec2.stop_instance"
    permissions = ("ec2:DescribeInstances", "ec2:StopInstances")
    destructive = True
    reverse = "aws.ec2.start_instance"
    operation = "stop_instances"
    settled = ("stopping", "stopped")


@register
class StartInstance(_InstanceState):
    """Start a stopped instance (the undo of stop_instance).

    Example::

        - id: start-host
          actuator: aws.ec2.start_instance
          with: {instance_id: i-0123456789abcdef0}
    """

    name = "aws.ec2.start_instance"
    permissions = ("ec2:DescribeInstances", "ec2:StartInstances")
    destructive = False
    reverse = "aws.ec2.stop_instance"
    operation = "start_instances"
    settled = ("pending", "running")
