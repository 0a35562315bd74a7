"""Inference front doors: disable an API Gateway key, throttle a Lambda to zero, and put both back."""

from __future__ import annotations

from typing import Any

from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register

API_KEY_ID = r"^[A-Za-z0-9]{8,32}$"
FUNCTION = r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[A-Za-z0-9_-]{1,64}$"


class ApiKeyParams(Params):
    """One API Gateway API key, by id (not by value)."""

    api_key_id: str = Field(pattern=API_KEY_ID, examples=["a1b2c3d4e5"])


async def api_key_enabled(ctx: ActuationContext, api_key_id: str) -> bool:
    """Whether the API key is enabled."""
    return bool((await ctx.aws.call("apigateway", "get_api_key", apiKey=api_key_id))["enabled"])


class _SetApiKey(Actuator[ApiKeyParams]):
    params = ApiKeyParams
    permissions = ("apigateway:GET", "apigateway:PATCH")
    destructive = False
    enabled = False

    def target(self, p: ApiKeyParams) -> str:
        return p.api_key_id

    async def plan(self, p: ApiKeyParams, ctx: ActuationContext) -> PlanPreview:
        verb = "enable" if self.enabled else "disable"
        return PlanPreview(target=p.api_key_id, summary=f"{verb} API Gateway key {p.api_key_id}")

    async def apply(self, p: ApiKeyParams, ctx: ActuationContext) -> ActuationResult:
        before = await api_key_enabled(ctx, p.api_key_id)
        changed = before != self.enabled
        if changed:
            await ctx.aws.call("apigateway", "update_api_key", apiKey=p.api_key_id, patchOperations=[
                {"op": "replace", "path": "/enabled", "value": "true" if self.enabled else "false"}])
        return ActuationResult(changed=changed, target=p.api_key_id, prior={"enabled": before},
                               after={"enabled": self.enabled})

    async def verify(self, p: ApiKeyParams, ctx: ActuationContext) -> bool:
        return await api_key_enabled(ctx, p.api_key_id) == self.enabled

    async def observe(self, p: ApiKeyParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        return {"enabled": await api_key_enabled(ctx, p.api_key_id)}

    def reverse_params(self, p: ApiKeyParams, result: ActuationResult) -> dict[str, Any] | None:
        return p.model_dump() if result.changed else None


@register
class DisableApiKey(_SetApiKey):
    """Disable the API Gateway key a model-extraction prober uses; its requests get 403 from then on.

    API Gateway's IAM actions are per HTTP verb on the resource (`apigateway:GET`, `apigateway:PATCH`).

    Example::

        - id: disable-api-key
          actuator: aws.apigateway.disable_api_key
          with:
            api_key_id: ${event.resource.api_key.id}
    """

    name = "aws.apigateway.disable_api_key"
    reverse = "aws.apigateway.enable_api_key"
    enabled = False


@register
class EnableApiKey(_SetApiKey):
    """Enable an API Gateway key again (the undo of disable_api_key).

    Example::

        - id: enable-api-key
          actuator: aws.apigateway.enable_api_key
          with: {api_key_id: a1b2c3d4e5}
    """

    name = "aws.apigateway.enable_api_key"
    reverse = "aws.apigateway.disable_api_key"
    enabled = True


class FunctionParams(Params):
    """One Lambda function, by name or ARN."""

    function_name: str = Field(pattern=FUNCTION, examples=["inference-proxy"])


async def reserved(ctx: ActuationContext, function_name: str) -> int | None:
    """The function's reserved concurrency, or None when none is reserved."""
    got = await ctx.aws.call("lambda", "get_function_concurrency", FunctionName=function_name)
    value = got.get("ReservedConcurrentExecutions")
    return None if value is None else int(value)


@register
class ThrottleFunction(Actuator[FunctionParams]):
    """Set a Lambda function's reserved concurrency to 0: every invocation is throttled, the code is kept.

    The previous reservation (or its absence) is the prior state that undo restores.
    moto caveat: moto records the 0 but still runs invocations; on AWS they fail with a throttle.

    Example::

        - id: throttle-inference
          actuator: aws.lambda.throttle_function
          with:
            function_name: ${event.resource.function.id}
    """

    name = "aws.lambda.throttle_function"
    params = FunctionParams
    permissions = ("lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency", "lambda:GetFunction",
                   "lambda:ListTags")
    destructive = False
    reverse = "aws.lambda.restore_function_concurrency"

    def target(self, p: FunctionParams) -> str:
        return p.function_name

    async def plan(self, p: FunctionParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.function_name, summary=f"set reserved concurrency of {p.function_name} to 0")

    async def apply(self, p: FunctionParams, ctx: ActuationContext) -> ActuationResult:
        before = await reserved(ctx, p.function_name)
        changed = before != 0
        if changed:
            await ctx.aws.call("lambda", "put_function_concurrency", FunctionName=p.function_name,
                               ReservedConcurrentExecutions=0)
        return ActuationResult(changed=changed, target=p.function_name, prior={"reserved": before},
                               after={"reserved": 0})

    async def verify(self, p: FunctionParams, ctx: ActuationContext) -> bool:
        return await reserved(ctx, p.function_name) == 0

    async def observe(self, p: FunctionParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The reservation before the first attempt: after a lost reply undo still restores it, not removes it."""
        return {"reserved": await reserved(ctx, p.function_name)}

    def reverse_params(self, p: FunctionParams, result: ActuationResult) -> dict[str, Any] | None:
        if not result.changed:
            return None
        return {"function_name": p.function_name, "reserved": result.prior.get("reserved")}


class ConcurrencyParams(FunctionParams):
    """The reservation to restore; None removes the reservation."""

    reserved: int | None = Field(default=None, ge=0, le=100_000)


@register
class RestoreFunctionConcurrency(Actuator[ConcurrencyParams]):
    """Put a function's reserved concurrency back as it was (the undo of throttle_function).

    Example::

        - id: unthrottle-inference
          actuator: aws.lambda.restore_function_concurrency
          with: {function_name: inference-proxy, reserved: null}
    """

    name = "aws.lambda.restore_function_concurrency"
    params = ConcurrencyParams
    permissions = ("lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency",
                   "lambda:DeleteFunctionConcurrency", "lambda:GetFunction", "lambda:ListTags")
    destructive = False
    reverse = None
    irreversible = "it is itself an undo; throttle again with aws.lambda.throttle_function"

    def target(self, p: ConcurrencyParams) -> str:
        return p.function_name

    async def plan(self, p: ConcurrencyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.function_name,
                           summary=f"set reserved concurrency of {p.function_name} to {p.reserved}")

    async def apply(self, p: ConcurrencyParams, ctx: ActuationContext) -> ActuationResult:
        before = await reserved(ctx, p.function_name)
        changed = before != p.reserved
        if changed and p.reserved is None:
            await ctx.aws.call("lambda", "delete_function_concurrency", FunctionName=p.function_name)
        elif changed:
            await ctx.aws.call("lambda", "put_function_concurrency", FunctionName=p.function_name,
                               ReservedConcurrentExecutions=p.reserved)
        return ActuationResult(changed=changed, target=p.function_name, prior={"reserved": before},
                               after={"reserved": p.reserved})

    async def verify(self, p: ConcurrencyParams, ctx: ActuationContext) -> bool:
        return await reserved(ctx, p.function_name) == p.reserved
