"""The generated IAM policy names the partition of the configured region in every ARN an Allow writes, and any
partition (`arn:*:`) in every ARN a Deny writes (since 2026-12-07: before, `arn:aws:` everywhere, so in GovCloud or
China the timeline-bucket Deny never matched)."""

from __future__ import annotations

import pytest

from responder.actuators import registry
from responder.actuators.policy import PolicyScope, minimal_policy

ACTUATORS = ["aws.iam.revoke_sessions", "aws.kms.disable_key", "aws.secretsmanager.rotate_secret",
             "aws.lambda.throttle_function", "model.rollback_to_last_signed", "aws.s3.block_public_access"]
REGIONS = [("us-east-1", "aws"), ("eu-west-3", "aws"), ("us-gov-west-1", "aws-us-gov"), ("us-gov-east-1", "aws-us-gov"),
           ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"), ("us-iso-east-1", "aws-iso"),
           ("us-isob-east-1", "aws-iso-b"), ("eu-isoe-west-1", "aws-iso-e"), ("us-isof-south-1", "aws-iso-f")]


def _arns(region: str, effect: str = "Allow") -> list[str]:
    scope = PolicyScope(account="123456789012", region=region, model_bucket="models", timeline_bucket="tl")
    doc = minimal_policy(ACTUATORS, registry, scope)
    return [r for st in doc["Statement"] if st["Effect"] == effect
            for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]) if r != "*"]


@pytest.mark.parametrize(("region", "partition"), REGIONS)
def test_every_allowed_arn_of_the_policy_names_the_regions_partition(region, partition):
    """Scoped Allows all start with `arn:<the region's partition>:`."""
    arns = _arns(region)
    assert {a.split(":")[1] for a in arns} == {partition}
    assert f"arn:{partition}:s3:::models" in arns
    assert f"arn:{partition}:iam::123456789012:role/*" in arns


@pytest.mark.parametrize("region", ["us-east-1", "us-gov-west-1", "cn-north-1", "*"])
def test_every_denied_arn_of_the_policy_names_any_partition(region):
    """The timeline-bucket Deny is `arn:*:s3:::tl` whatever the region: a default us-east-1 still denies in GovCloud."""
    assert _arns(region, "Deny") == ["arn:*:s3:::tl", "arn:*:s3:::tl/*"]


@pytest.mark.parametrize("region", ["*", "xx-nowhere-1"])
def test_an_unknown_region_leaves_the_partition_open(region):
    """Where the region is unknown (`*`, or one botocore has no partition for), every ARN's partition is `*`."""
    assert {a.split(":")[1] for a in _arns(region)} == {"*"}
