"""Secrets Manager: emergency rotation to a new random value, and moving AWSCURRENT back on undo."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

# patterns, not passwords (S105/B105): a secret's ARN (its partition and account in ASCII) or name
_SECRET_ARN = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:"  # noqa: S105  # nosec B105
SECRET_ID = rf"^({_SECRET_ARN}[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{{1,512}})$"  # nosec B105
VERSION_ID = r"^[A-Za-z0-9-]{32,64}$"


class RotateSecretParams(Params):
    """The secret to rotate; with `json_key`, only that field of a JSON secret gets the new value."""

    secret_id: str = Field(pattern=SECRET_ID, examples=["prod/inference/db-password"])
    length: int = Field(default=40, ge=16, le=4096)
    json_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,128}$")


async def stages(ctx: ActuationContext, secret_id: str) -> dict[str, list[str]]:
    """Staging labels by version id (DescribeSecret; never reads a value)."""
    desc = await ctx.aws.call("secretsmanager", "describe_secret", SecretId=secret_id)
    return {str(k): [str(s) for s in v] for k, v in (desc.get("VersionIdsToStages") or {}).items()}


def current_version(by_version: dict[str, list[str]], label: str = "AWSCURRENT") -> str | None:
    """The version that carries `label`."""
    return next((v for v, labels in by_version.items() if label in labels), None)


def rotation_token(ctx: ActuationContext, secret_id: str) -> str:
    """The version id this rotation writes: derived from the idempotency key, so a retry reuses it."""
    seed = ctx.key or f"manual:{secret_id}:{uuid.uuid4()}"
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


@register
class RotateSecret(Actuator[RotateSecretParams]):
    """Write a new random value as AWSCURRENT; Secrets Manager keeps the previous one as AWSPREVIOUS.

    For an emergency rotation after anomalous reads: no rotation Lambda is involved (moto's
    `rotate_secret` without a Lambda leaves AWSCURRENT with no value, and AWS would need one). The new
    version id is derived from the step's idempotency key and passed as ClientRequestToken, so a retry
    or a redelivery finds the version and writes nothing; if AWSCURRENT was moved off it since, it is
    moved back. Consumers of the secret must re-read it.

    Example::

        - id: rotate-secret
          actuator: aws.secretsmanager.rotate_secret
          with:
            secret_id: ${event.resource.secret.id}
    """

    name = "aws.secretsmanager.rotate_secret"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"version_id": "0d3c2b1a-0000-4000-8000-000000000000"}
    params = RotateSecretParams
    not_identifiers = ("json_key",)  # a field of the secret's JSON value, not a resource
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                   "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage")
    destructive = False
    reverse = "aws.secretsmanager.restore_secret_version"

    def target(self, p: RotateSecretParams) -> str:
        return p.secret_id

    async def plan(self, p: RotateSecretParams, ctx: ActuationContext) -> PlanPreview:
        field = f" (field {p.json_key})" if p.json_key else ""
        return PlanPreview(target=p.secret_id, summary=f"put a new random value{field} as AWSCURRENT of {p.secret_id}")

    async def apply(self, p: RotateSecretParams, ctx: ActuationContext) -> ActuationResult:
        token = rotation_token(ctx, p.secret_id)
        before = await stages(ctx, p.secret_id)
        prior_current = current_version(before)
        changed = prior_current != token
        if token in before and changed:
            await ctx.aws.call("secretsmanager", "update_secret_version_stage", SecretId=p.secret_id,
                               VersionStage="AWSCURRENT", MoveToVersionId=token,
                               **({"RemoveFromVersionId": prior_current} if prior_current else {}))
        elif changed:
            value = secrets.token_urlsafe(p.length)[: p.length]
            if p.json_key:
                value = await self._merged(ctx, p, value)
            elif prior_current:
                await self._refuse_json(ctx, p)
            await ctx.aws.call("secretsmanager", "put_secret_value", SecretId=p.secret_id, SecretString=value,
                               ClientRequestToken=token)
        return ActuationResult(changed=changed, target=p.secret_id,
                               prior={"current_version": prior_current},
                               after={"current_version": token}, outputs={"version_id": token})

    async def _merged(self, ctx: ActuationContext, p: RotateSecretParams, value: str) -> str:
        got = await ctx.aws.call("secretsmanager", "get_secret_value", SecretId=p.secret_id)
        try:
            doc = orjson.loads(str(got.get("SecretString") or "{}"))
        except orjson.JSONDecodeError as exc:
            raise PermanentActuationError(f"{p.secret_id} is not a JSON secret; drop json_key",
                                          code="NotJson") from exc
        if not isinstance(doc, dict):
            raise PermanentActuationError(f"{p.secret_id} is not a JSON object", code="NotJson")
        doc[p.json_key] = value
        return orjson.dumps(doc).decode()

    async def _refuse_json(self, ctx: ActuationContext, p: RotateSecretParams) -> None:
        """A JSON object secret (e.g. {username, password, host}) must not be replaced by a bare token."""
        got = await ctx.aws.call("secretsmanager", "get_secret_value", SecretId=p.secret_id)
        try:
            doc = orjson.loads(str(got.get("SecretString") or ""))
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            raise PermanentActuationError(f"{p.secret_id} holds a JSON object; set json_key to rotate one field",
                                          code="JsonSecret")

    async def verify(self, p: RotateSecretParams, ctx: ActuationContext) -> bool:
        return current_version(await stages(ctx, p.secret_id)) == rotation_token(ctx, p.secret_id)

    async def outputs_now(self, p: RotateSecretParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The step's own version (its token) while it carries AWSCURRENT."""
        token = rotation_token(ctx, p.secret_id)
        return {"version_id": token} if current_version(await stages(ctx, p.secret_id)) == token else None

    async def observe(self, p: RotateSecretParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The AWSCURRENT version before the first attempt: after a lost reply undo can still move the label back."""
        return {"current_version": current_version(await stages(ctx, p.secret_id))}

    def reverse_params(self, p: RotateSecretParams, result: ActuationResult) -> dict[str, Any] | None:
        prior = result.prior.get("current_version")
        if not result.changed or not prior:
            return None
        return {"secret_id": p.secret_id, "version_id": prior}


class RestoreVersionParams(Params):
    """The version that should carry AWSCURRENT again."""

    secret_id: str = Field(pattern=SECRET_ID, examples=["prod/inference/db-password"])
    version_id: str = Field(pattern=VERSION_ID, examples=["0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"])


@register
class RestoreSecretVersion(Actuator[RestoreVersionParams]):
    """Move AWSCURRENT back to an earlier version (the undo of rotate_secret); the rotated one becomes AWSPREVIOUS.

    moto caveat: after UpdateSecretVersionStage, moto's `get_secret_value()` without a VersionId still
    returns the old value although DescribeSecret shows the labels moved; `verify` reads the labels.

    Example::

        - id: restore-secret
          actuator: aws.secretsmanager.restore_secret_version
          with: {secret_id: prod/inference/db-password, version_id: 0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9}
    """

    name = "aws.secretsmanager.restore_secret_version"
    params = RestoreVersionParams
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:UpdateSecretVersionStage")
    destructive = False
    reverse = None
    irreversible = "it is itself an undo; rotate again to replace the value"

    def target(self, p: RestoreVersionParams) -> str:
        return p.secret_id

    async def plan(self, p: RestoreVersionParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.secret_id, summary=f"move AWSCURRENT of {p.secret_id} to {p.version_id}")

    async def apply(self, p: RestoreVersionParams, ctx: ActuationContext) -> ActuationResult:
        before = await stages(ctx, p.secret_id)
        if p.version_id not in before:
            raise PermanentActuationError(f"{p.secret_id} has no version {p.version_id}", code="NoSuchVersion")
        current = current_version(before)
        changed = current != p.version_id
        if changed:
            await ctx.aws.call("secretsmanager", "update_secret_version_stage", SecretId=p.secret_id,
                               VersionStage="AWSCURRENT", MoveToVersionId=p.version_id,
                               **({"RemoveFromVersionId": current} if current else {}))
        return ActuationResult(changed=changed, target=p.secret_id, prior={"current_version": current},
                               after={"current_version": p.version_id})

    async def verify(self, p: RestoreVersionParams, ctx: ActuationContext) -> bool:
        return current_version(await stages(ctx, p.secret_id)) == p.version_id
