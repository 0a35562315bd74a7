"""IAM access-key lifecycle beyond deactivation: delete (destructive) and rotate into Secrets Manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from pydantic import Field, JsonValue

from responder.actuators.aws.iam import IAM_NAME, PRINCIPAL_READS, AccessKeyParams, LongTermKeyId
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.partial import Partly
from responder.actuators.registry import register
from responder.errors import ActuationError, PermanentActuationError

SECRET_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105  # nosec B105 # a pattern, not a password


async def list_keys(ctx: ActuationContext, user_name: str) -> dict[str, str]:
    """Status of each access key of the user, by key id."""
    listed = await ctx.aws.call("iam", "list_access_keys", UserName=user_name)
    return {str(k["AccessKeyId"]): str(k["Status"]) for k in listed.get("AccessKeyMetadata", [])}


@register
class DeleteAccessKey(Actuator[AccessKeyParams]):
    """Delete an IAM access key for good (destructive: prefer aws.iam.deactivate_access_key on an alert).

    Example::

        - id: delete-key
          actuator: aws.iam.delete_access_key
          with:
            user_name: ${event.resource.access_key.attributes.user_name}
            access_key_id: ${event.resource.access_key.id}
    """

    name = "aws.iam.delete_access_key"
    params = AccessKeyParams
    permissions = ("iam:ListAccessKeys", "iam:DeleteAccessKey", *PRINCIPAL_READS)
    destructive = True
    reverse = None
    irreversible = "a deleted access key cannot be recovered; issue a new one with aws.iam.rotate_access_key"

    def target(self, p: AccessKeyParams) -> str:
        return p.access_key_id

    async def plan(self, p: AccessKeyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.access_key_id, summary=f"DELETE access key {p.access_key_id} of {p.user_name}")

    async def apply(self, p: AccessKeyParams, ctx: ActuationContext) -> ActuationResult:
        keys = await list_keys(ctx, p.user_name)
        status = keys.get(p.access_key_id)
        if status is not None:
            await ctx.aws.call("iam", "delete_access_key", UserName=p.user_name, AccessKeyId=p.access_key_id)
        return ActuationResult(changed=status is not None, target=p.access_key_id,
                               prior={"status": status}, after={"status": None})

    async def verify(self, p: AccessKeyParams, ctx: ActuationContext) -> bool:
        return p.access_key_id not in await list_keys(ctx, p.user_name)


class RotateKeyParams(Params):
    """The key to replace, and the secret that receives its successor."""

    user_name: str = Field(pattern=IAM_NAME, examples=["ml-training"])
    access_key_id: LongTermKeyId
    secret_name: str = Field(pattern=SECRET_NAME, examples=["responder/iam/ml-training"])
    delete_inactive_spare: bool = False


async def stored_rotation(ctx: ActuationContext, secret_name: str) -> dict[str, Any] | None:
    """The rotation record in the secret (never logged), or None when the secret does not exist."""
    try:
        got = await ctx.aws.call("secretsmanager", "get_secret_value", SecretId=secret_name)
    except PermanentActuationError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    try:
        value = orjson.loads(str(got.get("SecretString") or "{}"))
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


ROTATING_TAG = "responder:rotating"  # on the user while a rotation is between CreateAccessKey and the secret


@register
class RotateAccessKey(Actuator[RotateKeyParams]):
    """Issue a new access key, store it in Secrets Manager, then deactivate the old key.

    IAM allows two keys per user. When the user already has another key, the rotation stops with
    `LimitExceeded` unless that other key is Inactive and `delete_inactive_spare: true`. The secret holds
    `{"access_key_id", "secret_access_key", "replaces"}`; a second apply finds `replaces` equal to the old
    key and issues nothing new. If storing the new key fails, the new key is deleted before the error is
    raised, so a retry starts clean. Before CreateAccessKey the user is tagged `responder:rotating` with
    the old key and the keys that existed; if the reply is lost, the retry finds the tag, deletes the
    key it does not know (its secret is gone with the reply) and issues exactly one new key. The tag is
    removed once the secret holds the new key. Undo re-activates the old key; the new key stays. Undo is
    compare-and-set on what `observe()` reports (read for undo only: `apply` reads the keys before itself): the old
    key's status and the new key the secret names as its successor, while that key exists and is Active.

    Example::

        - id: rotate-key
          actuator: aws.iam.rotate_access_key
          with:
            user_name: ${event.resource.access_key.attributes.user_name}
            access_key_id: ${event.resource.access_key.id}
            secret_name: responder/iam/ml-training
    """

    name = "aws.iam.rotate_access_key"
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {
        "new_access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_name": "prod/app/aws-key",  # nosec B105 # an example secret name
    }
    params = RotateKeyParams
    permissions = ("iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey",
                   "iam:ListUserTags", "iam:TagUser", "iam:UntagUser", "secretsmanager:GetSecretValue",
                   "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:TagResource",
                   "secretsmanager:DescribeSecret", *PRINCIPAL_READS)
    destructive = False
    changes_in_turn = True  # a spare key deleted, the user tagged, a key issued, then the old one deactivated
    reverse = "aws.iam.activate_access_key"
    observes_prior = False  # apply reads the keys before; observe() is undo's

    def target(self, p: RotateKeyParams) -> str:
        return p.access_key_id

    async def plan(self, p: RotateKeyParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.access_key_id, summary=(
            f"create a new key for {p.user_name} into secret {p.secret_name}, deactivate {p.access_key_id}"))

    async def apply(self, p: RotateKeyParams, ctx: ActuationContext) -> ActuationResult:
        keys = await list_keys(ctx, p.user_name)
        if p.access_key_id not in keys:
            raise PermanentActuationError(f"access key {p.access_key_id} not found for {p.user_name}",
                                          code="NoSuchEntity")
        record = await stored_rotation(ctx, p.secret_name)
        new_id = str(record.get("access_key_id", "")) if record else ""
        done = bool(record) and record.get("replaces") == p.access_key_id and new_id in keys  # type: ignore[union-attr]
        changed = not done
        pending = await self._pending(p, ctx)
        with Partly() as partly:  # the old key is deactivated last: a failure before leaves nothing for undo
            if pending is not None and not done:
                for orphan in [k for k in keys if k not in pending and k != p.access_key_id]:
                    # created by an earlier attempt whose reply was lost: nobody holds its secret
                    await ctx.aws.call("iam", "delete_access_key", UserName=p.user_name, AccessKeyId=orphan)
                    keys.pop(orphan)
                    partly.note(f"deleted access key {orphan}, left by an earlier attempt whose reply was lost")
            if not done:
                new_id = await self._issue(p, ctx, keys, partly, secret_exists=record is not None)
            if pending is not None or not done:
                await ctx.aws.call("iam", "untag_user", UserName=p.user_name, TagKeys=[ROTATING_TAG])
            if keys[p.access_key_id] != "Inactive":
                await ctx.aws.call("iam", "update_access_key", UserName=p.user_name, AccessKeyId=p.access_key_id,
                                   Status="Inactive")
                changed = True
        return ActuationResult(
            changed=changed, target=p.access_key_id,
            prior={"status": keys[p.access_key_id], "keys": sorted(keys)},
            after={"status": "Inactive", "new_access_key_id": new_id},
            outputs={"new_access_key_id": new_id, "secret_name": p.secret_name},
        )

    async def _issue(self, p: RotateKeyParams, ctx: ActuationContext, keys: dict[str, str], partly: Partly, *,
                     secret_exists: bool) -> str:
        others = {k: s for k, s in keys.items() if k != p.access_key_id}
        for other, status in others.items():
            if status != "Inactive" or not p.delete_inactive_spare:
                raise PermanentActuationError(
                    f"{p.user_name} already has two keys ({other} is {status}); IAM allows two. Set "
                    "delete_inactive_spare: true to delete an Inactive spare, or remove it by hand",
                    code="LimitExceeded")
            await ctx.aws.call("iam", "delete_access_key", UserName=p.user_name, AccessKeyId=other)
            partly.note(f"deleted the Inactive spare key {other} of {p.user_name} (undo cannot bring it back)")
        existing = ",".join(sorted(set(keys) - set(others)))  # every other key was deleted or we raised
        await ctx.aws.call("iam", "tag_user", UserName=p.user_name,
                           Tags=[{"Key": ROTATING_TAG, "Value": f"{p.access_key_id}|{existing}"}])
        partly.note(f"tagged {p.user_name} {ROTATING_TAG}")
        created = (await ctx.aws.call("iam", "create_access_key", UserName=p.user_name))["AccessKey"]
        value = orjson.dumps({"access_key_id": created["AccessKeyId"],
                              "secret_access_key": created["SecretAccessKey"],
                              "replaces": p.access_key_id, "incident": ctx.incident}).decode()
        try:
            if secret_exists:
                await ctx.aws.call("secretsmanager", "put_secret_value", SecretId=p.secret_name, SecretString=value)
            else:
                await ctx.aws.call("secretsmanager", "create_secret", Name=p.secret_name, SecretString=value,
                                   Tags=[{"Key": "responder:incident", "Value": ctx.incident or "manual"}])
        except ActuationError:
            # never leave a key nobody can read: drop it, so a retry starts clean within the two-key limit
            await ctx.aws.call("iam", "delete_access_key", UserName=p.user_name, AccessKeyId=created["AccessKeyId"])
            partly.note(f"issued access key {created['AccessKeyId']} and deleted it again: its secret was not stored")
            raise
        partly.note(f"issued access key {created['AccessKeyId']} into secret {p.secret_name}")
        return str(created["AccessKeyId"])

    async def _pending(self, p: RotateKeyParams, ctx: ActuationContext) -> set[str] | None:
        """The keys that existed before an unfinished rotation of this key created one, or None."""
        tags = (await ctx.aws.call("iam", "list_user_tags", UserName=p.user_name)).get("Tags", [])
        value = next((str(t.get("Value", "")) for t in tags if t.get("Key") == ROTATING_TAG), None)
        if value is None:
            return None
        replaces, _, existing = value.partition("|")
        return set(filter(None, existing.split(","))) if replaces == p.access_key_id else None

    async def verify(self, p: RotateKeyParams, ctx: ActuationContext) -> bool:
        keys = await list_keys(ctx, p.user_name)
        record = await stored_rotation(ctx, p.secret_name) or {}
        new_id = str(record.get("access_key_id", ""))
        return (keys.get(p.access_key_id) == "Inactive" and record.get("replaces") == p.access_key_id
                and keys.get(new_id) == "Active")

    async def outputs_now(self, p: RotateKeyParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The new key the secret records as replacing the old one."""
        record = await stored_rotation(ctx, p.secret_name) or {}
        new_id = record.get("access_key_id")
        if record.get("replaces") != p.access_key_id or not isinstance(new_id, str) or not new_id:
            return None
        return {"new_access_key_id": new_id, "secret_name": p.secret_name}

    async def observe(self, p: RotateKeyParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The old key's status (None: deleted), which the reverse sets Active again, and the key the secret records
        as replacing it while that key exists and is Active (None: none, or deleted or deactivated since), in
        `apply`'s after-state shape."""
        keys = await list_keys(ctx, p.user_name)
        record = await stored_rotation(ctx, p.secret_name) or {}
        new_id = record.get("access_key_id") if record.get("replaces") == p.access_key_id else None
        live = isinstance(new_id, str) and keys.get(new_id) == "Active"
        return {"status": keys.get(p.access_key_id), "new_access_key_id": new_id if live else None}

    def reverse_params(self, p: RotateKeyParams, result: ActuationResult) -> dict[str, Any] | None:
        if result.prior.get("status") != "Active":
            return None
        return {"user_name": p.user_name, "access_key_id": p.access_key_id}
