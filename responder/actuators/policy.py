"""The least-privilege IAM policy for a set of runbooks: exact actions, scoped resources, self-protection.

Allow statements list only the exact actions of the actuators used, one statement per actuator and
service, with resources scoped to what that service's actuators can touch (IAM users and roles, KMS
keys, secrets, functions, SSM parameters under the model prefix, the model registry's bucket for the model
actuators) in the configured account and region. Services whose targets are only known at run time (EC2, API
Gateway, SageMaker, the S3 buckets `aws.s3.*` blocks public access on) keep `*`, as do actions IAM scopes to no
resource (`kms:ListAliases`, which the protected-id guard reads a KMS key's aliases with), in a statement of their
own.

Deny statements then protect responder itself, whatever the allows say: its own role or user (and
so its access keys) and the policies attached to it, its timeline archive bucket (no delete, no
policy, ACL, lock or lifecycle change; writing new segments stays allowed) and its KMS keys.

Every ARN an Allow statement writes names the partition of the configured region (`aws`, `aws-cn`, `aws-us-gov`, the
`aws-iso*` ones…, from botocore's partition data), or `*` when the region is not known (`*` or a region botocore
does not know). Every ARN a Deny statement writes (the timeline bucket's) has `*` as its partition whatever the
region (since 2026-12-07): a Deny grants nothing, so it matches wherever responder runs, even when the region
setting was left at its default (`us-east-1`) for a GovCloud or China deployment. The ARNs given in settings
(`self_principal_arns`, `self_policy_arns`, `self_kms_key_arns`) are written as given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.loaders

from responder.actuators.registry import Registry
from responder.models.runbook import Runbook

UNSCOPED = frozenset({"kms:ListAliases"})
"""Actions IAM authorises on no resource (`*` only): each actuator's get a statement of their own."""
SELF_IAM_DENY = ["iam:Put*", "iam:Delete*", "iam:Update*", "iam:Attach*", "iam:Detach*", "iam:Create*",
                 "iam:Tag*", "iam:Untag*", "iam:Remove*", "iam:Add*", "iam:SetDefaultPolicyVersion"]
SELF_BUCKET_DENY = ["s3:DeleteBucket*", "s3:DeleteObject*", "s3:PutBucket*", "s3:PutLifecycleConfiguration",
                    "s3:PutEncryptionConfiguration", "s3:PutObjectAcl", "s3:PutObjectRetention",
                    "s3:PutObjectLegalHold", "s3:BypassGovernanceRetention", "s3:PutReplicationConfiguration"]
SELF_KMS_DENY = ["kms:Disable*", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:CreateGrant",
                 "kms:RevokeGrant", "kms:RetireGrant", "kms:UpdateKeyDescription", "kms:CancelKeyDeletion",
                 "kms:DeleteImportedKeyMaterial", "kms:Update*"]


@cache
def _partitions() -> tuple[tuple[str, frozenset[str], re.Pattern[str]], ...]:
    data = botocore.loaders.create_loader().load_data("partitions")
    return tuple((p["id"], frozenset(p.get("regions", {})), re.compile(p["regionRegex"])) for p in data["partitions"])


def partition_of(region: str) -> str:
    """The ARN partition of `region` (`us-gov-west-1` → `aws-us-gov`, `cn-north-1` → `aws-cn`), from botocore's
    partition data: a region a partition lists, else the one whose region pattern it matches; `*` (any partition)
    for `*` or a region no partition claims."""
    known = _partitions()
    for pid, regions, _ in known:
        if region in regions:
            return pid
    return next((pid for pid, _, pattern in known if pattern.match(region)), "*")


@dataclass(frozen=True)
class PolicyScope:
    """What the generated policy knows about the deployment (from settings; `*` where unknown)."""

    account: str = "*"
    region: str = "*"
    ssm_prefix: str = "/responder/models"
    model_bucket: str | None = None
    model_prefix: str = ""
    self_principals: Sequence[str] = ()
    self_policies: Sequence[str] = ()
    timeline_bucket: str | None = None
    self_kms_keys: Sequence[str] = ()

    def resources(self, service: str, actuator: str = "") -> list[str]:
        """The resources `actuator`'s actions on `service` may touch; `*` when only the event can say (an `aws.s3.*`
        step's bucket: only a model actuator's S3 actions are the model registry's bucket's)."""
        a, r, p = self.account, self.region, self.partition
        scoped = {
            "iam": [f"arn:{p}:iam::{a}:user/*", f"arn:{p}:iam::{a}:role/*"],
            "kms": [f"arn:{p}:kms:{r}:{a}:key/*"],
            "secretsmanager": [f"arn:{p}:secretsmanager:{r}:{a}:secret:*"],
            "lambda": [f"arn:{p}:lambda:{r}:{a}:function:*"],
            "ssm": [f"arn:{p}:ssm:{r}:{a}:parameter/{self.ssm_prefix.strip('/')}/*"],
        }
        if service == "s3" and self.model_bucket and actuator.startswith("model."):
            return [f"arn:{p}:s3:::{self.model_bucket}", f"arn:{p}:s3:::{self.model_bucket}/{self.model_prefix}*"]
        return scoped.get(service, ["*"])

    @property
    def partition(self) -> str:
        """The ARN partition of `region` (`*` while it is unknown)."""
        return partition_of(self.region)


def actuators_used(runbooks: Iterable[Runbook], registry: Registry, *, with_reverse: bool = True) -> list[str]:
    """Names of the actuators the runbooks call (and, for undo, their reverse actuators), sorted."""
    names = {step.actuator for rb in runbooks for step in rb.steps}
    if with_reverse:
        names |= {r for n in list(names) if (r := registry.get(n).reverse) is not None}
    return sorted(names)


def _sid(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", ".").replace("-", ".").split("."))


def _allows(names: Iterable[str], registry: Registry, scope: PolicyScope) -> list[dict[str, Any]]:
    statements = []
    for name in sorted(set(names)):
        actions = sorted(set(registry.get(name).permissions))
        if any("*" in a for a in actions):
            raise ValueError(f"{name} declares a wildcard action: {actions}")
        services = sorted({a.split(":", 1)[0] for a in actions})
        for service in services:
            mine = [a for a in actions if a.startswith(f"{service}:") and a not in UNSCOPED]
            sid = _sid(name) if len(services) == 1 else _sid(name) + _sid(service)
            resources = scope.resources(service, name)
            if mine:  # an Allow with no action is no IAM policy
                statements.append({"Sid": sid, "Effect": "Allow", "Action": mine,
                                   "Resource": resources[0] if resources == ["*"] else resources})
            if anywhere := [a for a in actions if a.startswith(f"{service}:") and a in UNSCOPED]:
                statements.append({"Sid": f"{sid}Unscoped", "Effect": "Allow", "Action": anywhere, "Resource": "*"})
    return statements


def _denies(scope: PolicyScope) -> list[dict[str, Any]]:
    statements = []
    iam = [*scope.self_principals, *scope.self_policies]
    if iam:
        statements.append({"Sid": "DenyResponderSelfIam", "Effect": "Deny", "Action": SELF_IAM_DENY,
                           "Resource": sorted(iam)})
    if scope.timeline_bucket:
        bucket = f"arn:*:s3:::{scope.timeline_bucket}"  # any partition: a Deny grants nothing
        statements.append({"Sid": "DenyResponderTimelineBucket", "Effect": "Deny", "Action": SELF_BUCKET_DENY,
                           "Resource": [bucket, f"{bucket}/*"]})
    if scope.self_kms_keys:
        statements.append({"Sid": "DenyResponderKmsKeys", "Effect": "Deny", "Action": SELF_KMS_DENY,
                           "Resource": sorted(scope.self_kms_keys)})
    return statements


def minimal_policy(names: Iterable[str], registry: Registry, scope: PolicyScope | None = None) -> dict[str, Any]:
    """An IAM policy document: exact allowed actions per actuator and service, then the self-protection denies.

    Actuators that need no AWS permission (notify.*) add no statement.
    """
    scope = scope or PolicyScope()
    return {"Version": "2012-10-17", "Statement": [*_allows(names, registry, scope), *_denies(scope)]}
