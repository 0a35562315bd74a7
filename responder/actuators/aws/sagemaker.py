"""SageMaker endpoint isolation: deny InvokeEndpoint on that endpoint's ARN to the roles that call it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import Field, JsonValue, StringConstraints

from responder.actuators.aws.iam import IAM_NAME
from responder.actuators.aws.iam_inline import delete_inline, get_inline, put_inline
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.partial import Partly
from responder.actuators.registry import register

ENDPOINT = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
RoleName = Annotated[str, StringConstraints(pattern=IAM_NAME)]
INVOKE_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync",
                  "sagemaker:InvokeEndpointWithResponseStream")


class EndpointParams(Params):
    """An endpoint and the IAM roles that invoke it."""

    endpoint_name: str = Field(pattern=ENDPOINT, examples=["fraud-scoring-prod"])
    role_names: list[RoleName] = Field(min_length=1, max_length=50, examples=[["inference-gateway"]])


def policy_name(endpoint_name: str) -> str:
    """The inline policy responder writes on each invoking role (one per endpoint)."""
    return f"responder-isolate-endpoint-{endpoint_name}"[:128]


def deny_invoke(endpoint_arn: str) -> dict[str, Any]:
    """Deny every invoke action on exactly this endpoint."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ResponderIsolateEndpoint", "Effect": "Deny", "Action": list(INVOKE_ACTIONS),
        "Resource": endpoint_arn}]}


async def endpoint_arn(ctx: ActuationContext, endpoint_name: str) -> str:
    """The endpoint's ARN, from DescribeEndpoint (also proves the endpoint exists)."""
    return str((await ctx.aws.call("sagemaker", "describe_endpoint", EndpointName=endpoint_name))["EndpointArn"])


@register
class IsolateEndpoint(Actuator[EndpointParams]):
    """Stop the named roles from invoking one SageMaker endpoint: an inline Deny on the endpoint's ARN.

    Why this and not a change to the endpoint: SageMaker endpoints have no resource policy, deleting the
    endpoint destroys the model deployment and its evidence, and `UpdateEndpoint` to an empty config is
    not possible (moto does not implement it either). An explicit Deny on each invoking role's identity
    policy wins over any Allow, takes effect on the next call, leaves the endpoint running for forensics,
    and is removed by name on undo. Callers using other roles are not affected: list every role that
    fronts the endpoint (gateway, Lambda proxy, application role).

    Example::

        - id: isolate-endpoint
          actuator: aws.sagemaker.isolate_endpoint
          with:
            endpoint_name: ${event.resource.endpoint.id}
            role_names: [inference-gateway]
    """

    name = "aws.sagemaker.isolate_endpoint"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"roles": ["inference-role"]}
    params = EndpointParams
    permissions = ("sagemaker:DescribeEndpoint", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:GetRole",
                   "sagemaker:ListTags")
    destructive = False
    changes_in_turn = True  # one deny per role: a role that fails leaves those before it denied
    reverse = "aws.sagemaker.release_endpoint"

    def target(self, p: EndpointParams) -> str:
        return p.endpoint_name

    async def plan(self, p: EndpointParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.endpoint_name, summary=(
            f"deny InvokeEndpoint on {p.endpoint_name} to role(s) {', '.join(p.role_names)}"))

    async def apply(self, p: EndpointParams, ctx: ActuationContext) -> ActuationResult:
        doc = deny_invoke(await endpoint_arn(ctx, p.endpoint_name))
        added: list[str] = []
        denied: list[str] = []  # added, and those that had it already

        def state() -> tuple[dict[str, Any], dict[str, Any]]:  # undo releases the roles denied before the failure
            return ({"roles_without_deny": list(added)},
                    {"roles_without_deny": [r for r in p.role_names if r not in denied]})

        with Partly(state) as partly:
            for role in p.role_names:
                if await get_inline(ctx, "role", role, policy_name(p.endpoint_name)) != doc:
                    await put_inline(ctx, "role", role, policy_name(p.endpoint_name), doc)
                    added.append(role)
                    partly.note(f"put the invoke deny of {p.endpoint_name} on role {role}")
                denied.append(role)
        return ActuationResult(changed=bool(added), target=p.endpoint_name,
                               prior={"roles_without_deny": added}, after={"roles_without_deny": []},
                               outputs={"roles": list(p.role_names)})

    async def _without_deny(self, p: EndpointParams, ctx: ActuationContext) -> list[str]:
        doc = deny_invoke(await endpoint_arn(ctx, p.endpoint_name))
        return [role for role in p.role_names
                if await get_inline(ctx, "role", role, policy_name(p.endpoint_name)) != doc]

    async def verify(self, p: EndpointParams, ctx: ActuationContext) -> bool:
        return not await self._without_deny(p, ctx)

    async def outputs_now(self, p: EndpointParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The roles denied, when every one of them carries the deny."""
        return None if await self._without_deny(p, ctx) else {"roles": list(p.role_names)}

    async def observe(self, p: EndpointParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The roles still without the deny, read before the first attempt: a retry after a lost reply (or a
        partial first attempt) records them all, so undo releases every role this step denied."""
        return {"roles_without_deny": list(await self._without_deny(p, ctx))}

    def reverse_params(self, p: EndpointParams, result: ActuationResult) -> dict[str, Any] | None:
        added = result.prior.get("roles_without_deny")
        return {"endpoint_name": p.endpoint_name, "role_names": added} if added else None


@register
class ReleaseEndpoint(Actuator[EndpointParams]):
    """Remove responder's invoke deny for an endpoint from the named roles (the undo of isolate_endpoint).

    Example::

        - id: release-endpoint
          actuator: aws.sagemaker.release_endpoint
          with: {endpoint_name: fraud-scoring-prod, role_names: [inference-gateway]}
    """

    name = "aws.sagemaker.release_endpoint"
    params = EndpointParams
    permissions = ("iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:GetRole", "sagemaker:DescribeEndpoint",
                   "sagemaker:ListTags")
    destructive = False
    changes_in_turn = True  # one delete per role
    reverse = None
    irreversible = "it is itself an undo; isolate again with aws.sagemaker.isolate_endpoint"

    def target(self, p: EndpointParams) -> str:
        return p.endpoint_name

    async def plan(self, p: EndpointParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.endpoint_name, summary=f"remove the invoke deny on {p.endpoint_name}")

    async def apply(self, p: EndpointParams, ctx: ActuationContext) -> ActuationResult:
        removed: list[str] = []
        with Partly(lambda: ({"roles_with_deny": list(removed)}, {})) as partly:
            for role in p.role_names:
                if await get_inline(ctx, "role", role, policy_name(p.endpoint_name)) is not None:
                    await delete_inline(ctx, "role", role, policy_name(p.endpoint_name))
                    removed.append(role)
                    partly.note(f"removed the invoke deny of {p.endpoint_name} from role {role}")
        return ActuationResult(changed=bool(removed), target=p.endpoint_name,
                               prior={"roles_with_deny": removed}, after={})

    async def verify(self, p: EndpointParams, ctx: ActuationContext) -> bool:
        for role in p.role_names:
            if await get_inline(ctx, "role", role, policy_name(p.endpoint_name)) is not None:
                return False
        return True
