"""S3: turn on all four Block Public Access settings of a bucket, and put the previous ones back."""

from __future__ import annotations

from typing import Any

from pydantic import Field, JsonValue

from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import register
from responder.errors import PermanentActuationError

BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALL_ON = dict.fromkeys(SETTINGS, True)


class BucketParams(Params):
    """One S3 bucket, by name."""

    bucket: str = Field(pattern=BUCKET, examples=["training-data-prod"])


async def public_access_block(ctx: ActuationContext, bucket: str) -> dict[str, bool] | None:
    """The bucket's Block Public Access configuration, or None when it has none."""
    try:
        got = await ctx.aws.call("s3", "get_public_access_block", Bucket=bucket)
    except PermanentActuationError as exc:
        if exc.code == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise
    conf = got.get("PublicAccessBlockConfiguration") or {}
    return {k: bool(conf.get(k, False)) for k in SETTINGS}


@register
class BlockPublicAccess(Actuator[BucketParams]):
    """Turn on all four S3 Block Public Access settings of a bucket: public ACLs and policies stop applying.

    Objects, ACLs and the bucket policy are left as they are (evidence); only their public effect stops.
    The previous configuration, or its absence, is the prior state that undo restores.

    Example::

        - id: block-public-access
          actuator: aws.s3.block_public_access
          with:
            bucket: ${event.resource.bucket.id}
    """

    name = "aws.s3.block_public_access"
    params = BucketParams
    permissions = ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock", "s3:GetBucketTagging")
    destructive = False
    reverse = "aws.s3.restore_public_access_block"

    def target(self, p: BucketParams) -> str:
        return p.bucket

    async def plan(self, p: BucketParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.bucket, summary=f"turn on every Block Public Access setting of s3://{p.bucket}")

    async def apply(self, p: BucketParams, ctx: ActuationContext) -> ActuationResult:
        before = await public_access_block(ctx, p.bucket)
        changed = before != ALL_ON
        if changed:
            await ctx.aws.call("s3", "put_public_access_block", Bucket=p.bucket,
                               PublicAccessBlockConfiguration=dict(ALL_ON))
        return ActuationResult(changed=changed, target=p.bucket, prior={"configuration": before},
                               after={"configuration": dict(ALL_ON)})

    async def verify(self, p: BucketParams, ctx: ActuationContext) -> bool:
        return await public_access_block(ctx, p.bucket) == ALL_ON

    async def observe(self, p: BucketParams, ctx: ActuationContext) -> dict[str, JsonValue] | None:
        """The configuration before the first attempt: after a lost reply undo still restores it, not deletes it."""
        conf = await public_access_block(ctx, p.bucket)
        configuration: JsonValue = None if conf is None else {**conf}
        return {"configuration": configuration}

    def reverse_params(self, p: BucketParams, result: ActuationResult) -> dict[str, Any] | None:
        if not result.changed:
            return None
        return {"bucket": p.bucket, "configuration": result.prior.get("configuration")}


class RestoreBlockParams(BucketParams):
    """The configuration to restore; None deletes the bucket's Block Public Access configuration."""

    configuration: dict[str, bool] | None = None


@register
class RestorePublicAccessBlock(Actuator[RestoreBlockParams]):
    """Put a bucket's Block Public Access configuration back as it was (the undo of block_public_access).

    Example::

        - id: restore-public-access-block
          actuator: aws.s3.restore_public_access_block
          with: {bucket: training-data-prod, configuration: null}
    """

    name = "aws.s3.restore_public_access_block"
    params = RestoreBlockParams
    permissions = ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock", "s3:GetBucketTagging")
    destructive = False
    reverse = None
    irreversible = "it is itself an undo; block again with aws.s3.block_public_access"

    def target(self, p: RestoreBlockParams) -> str:
        return p.bucket

    async def plan(self, p: RestoreBlockParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.bucket, summary=f"restore Block Public Access of s3://{p.bucket}")

    def _wanted(self, p: RestoreBlockParams) -> dict[str, bool] | None:
        return None if p.configuration is None else {k: bool(p.configuration.get(k, False)) for k in SETTINGS}

    async def apply(self, p: RestoreBlockParams, ctx: ActuationContext) -> ActuationResult:
        before = await public_access_block(ctx, p.bucket)
        wanted = self._wanted(p)
        changed = before != wanted
        if changed and wanted is None:
            await ctx.aws.call("s3", "delete_public_access_block", Bucket=p.bucket)
        elif changed:
            await ctx.aws.call("s3", "put_public_access_block", Bucket=p.bucket,
                               PublicAccessBlockConfiguration=wanted)
        return ActuationResult(changed=changed, target=p.bucket, prior={"configuration": before},
                               after={"configuration": wanted})

    async def verify(self, p: RestoreBlockParams, ctx: ActuationContext) -> bool:
        return await public_access_block(ctx, p.bucket) == self._wanted(p)
