"""Typed resources from the identifiers sources use (ARNs, AWS resource types, IPs), and the incident key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from responder.models.event import Resource, ResourceKind
from responder.normalise.fields import text, valid_ip
from responder.normalise.trusted import resource

K = ResourceKind

# ASFF / OCSF-on-AWS resource types → kind
AWS_TYPES: dict[str, ResourceKind] = {
    "AwsIamAccessKey": K.ACCESS_KEY,
    "AwsIamUser": K.IAM_USER,
    "AwsIamRole": K.IAM_ROLE,
    "AwsEc2Instance": K.INSTANCE,
    "AwsS3Bucket": K.BUCKET,
    "AwsSecretsManagerSecret": K.SECRET,
    "AwsKmsKey": K.KMS_KEY,
    "AwsLambdaFunction": K.FUNCTION,
    "AwsSageMakerModel": K.MODEL,
    "AwsSageMakerEndpoint": K.ENDPOINT,
    "AwsEksCluster": K.OTHER,
    "AwsEcsContainer": K.CONTAINER,
    "Container": K.CONTAINER,
    "AwsAccount": K.ACCOUNT,
    "AwsApiGatewayApiKey": K.API_KEY,
}
# Security Hub's OCSF (`Findings Imported V2`) CloudFormation resource types whose bare `uid` is the resource's id
# (a bucket's name, an instance id); any other type is typed only from an ARN (`uid`, else `uid_alt`)
CFN_TYPES: dict[str, ResourceKind] = {
    "AWS::S3::Bucket": K.BUCKET,
    "AWS::EC2::Instance": K.INSTANCE,
}

# arn:aws:<service>:<region>:<account>:<resource> → kind, by (service, resource-type prefix)
_ARN_KINDS: dict[tuple[str, str], ResourceKind] = {
    ("iam", "user"): K.IAM_USER,
    ("iam", "role"): K.IAM_ROLE,
    ("sts", "assumed-role"): K.IAM_ROLE,
    ("ec2", "instance"): K.INSTANCE,
    ("s3", ""): K.BUCKET,
    ("secretsmanager", "secret"): K.SECRET,
    ("kms", "key"): K.KMS_KEY,
    ("lambda", "function"): K.FUNCTION,
    ("sagemaker", "model"): K.MODEL,
    ("sagemaker", "model-package"): K.MODEL_VERSION,
    ("sagemaker", "endpoint"): K.ENDPOINT,
    ("apigateway", "apikeys"): K.API_KEY,
}


def _clean(attrs: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attrs or {}).items() if v is not None and v != ""}


def res(kind: ResourceKind, rid: Any, *, name: Any = None, arn: Any = None, **attrs: Any) -> Resource | None:
    """A resource, or None when the id is empty."""
    if rid is None:
        return None
    ident = rid.strip() if isinstance(rid, str) else text(rid)
    if not ident:
        return None
    return resource(kind, ident[:2048], None if name is None else text(name), None if arn is None else text(arn),
                    _clean(attrs) if attrs else {})


def ip_resource(value: Any, **attrs: Any) -> Resource | None:
    """An ip resource for a valid address; None for anything else (anonymised `075.050.255.67` included)."""
    ip = valid_ip(value)
    return resource(K.IP, ip, attributes=_clean(attrs)) if ip else None


def from_arn(arn: Any, **attrs: Any) -> Resource | None:
    """A typed resource from an AWS ARN (user, role, instance, bucket, secret, key, function, model…);
    arn:aws:iam::<account>:root is the `account`, with `root_identity` true; an S3 ARN with a region or account (an
    access point, a Batch Operations job, Storage Lens) is `other`, never a bucket."""
    value = text(arn)
    if value is None or not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) < 6:
        return None
    service, tail = parts[2], parts[5]
    cut = min((i for i in (tail.find("/"), tail.find(":")) if i >= 0), default=len(tail))
    rtype, rest = tail[:cut], tail[cut + 1:]
    if service == "s3" and not parts[3] and not parts[4]:  # a bucket's or object's ARN names no region or account
        return res(K.BUCKET, tail.split("/", 1)[0], arn=value, **attrs)
    if service == "iam" and tail == "root":  # the account's root identity: never an IAM user (one may be named root)
        return res(K.ACCOUNT, parts[4], arn=value, root_identity=True, **attrs)
    kind = _ARN_KINDS.get((service, rtype))
    if kind is None:
        return res(K.OTHER, value, arn=value, service=service, **attrs)
    if kind is K.IAM_ROLE and service == "sts":
        role, _, session = rest.partition("/")
        return res(K.IAM_ROLE, role, arn=value, session=session or None, **attrs)
    name = rest.rsplit("/", 1)[-1] if rest else tail
    if kind in (K.SECRET, K.MODEL_VERSION):
        name = rest
    return res(kind, name, arn=value, **attrs)


# AWS access key id prefixes: ASIA… are temporary (STS) credentials, AKIA… an IAM user's long-term key
KEY_PREFIXES = {"ASIA": "temporary", "AKIA": "long_term"}


def credential_kind(key_id: Any) -> str | None:
    """`temporary` for an ASIA… key id, `long_term` for AKIA…, None otherwise."""
    value = text(key_id)
    return KEY_PREFIXES.get(value[:4]) if value else None


def access_key(key_id: Any, user_name: Any = None, *, user_type: Any = None, **attrs: Any) -> Resource | None:
    """An access key, with the owning user's name, its principal's `user_type` (GuardDuty's word: IAMUser,
    AssumedRole, Root…; taken from `principal_type` when the source calls it that) and `credential`
    (temporary / long_term, from the key id's prefix) in attributes when known: every source sets the same
    names, so one runbook condition serves them all."""
    kind = text(user_type) or text(attrs.get("principal_type"))
    return res(K.ACCESS_KEY, key_id, user_name=text(user_name), user_type=kind, credential=credential_kind(key_id),
               **attrs)


# a principal's type (GuardDuty `userType`, ASFF `PrincipalType`, OCSF `actor.user.type`, Splunk `user_type`) →
# the resource its user name names. Only these two: Root is the account, not an IAM user; a FederatedUser's
# user name is the session name whoever called sts:GetFederationToken chose (it may spell a real IAM user's
# name); AWSService, a missing or an unknown type say nothing either. Those keep only the access key, whose
# `user_name` and `user_type` attributes still show them.
PRINCIPAL_KINDS: dict[str, ResourceKind] = {"IAMUser": K.IAM_USER, "AssumedRole": K.IAM_ROLE}


def principal_kind(user_type: Any) -> ResourceKind | None:
    """`iam_user` for exactly IAMUser, `iam_role` for exactly AssumedRole, None for any other type or none."""
    return PRINCIPAL_KINDS.get(user_type) if type(user_type) is str else None


def principal(user_type: Any, rid: Any, *, name: Any, **attrs: Any) -> Resource | None:
    """The IAM user or role a principal's user name names, only when its type is IAMUser or AssumedRole."""
    kind = principal_kind(user_type)
    return res(kind, rid, name=name, **attrs) if kind is not None else None


def compact(items: Iterable[Resource | None]) -> tuple[Resource, ...]:
    """Drop Nones and exact duplicates, keeping the first occurrence order."""
    seen: set[tuple[str, str]] = set()
    out: list[Resource] = []
    for item in items:
        if item is None or (item.kind, item.id) in seen:
            continue
        seen.add((item.kind, item.id))
        out.append(item)
    return tuple(out)


_IP = K.IP


def incident_key(account: str | None, resources: tuple[Resource, ...], fallback: str) -> str:
    """account + the primary resource (the first that is not an IP); `fallback` names the subject otherwise."""
    for primary in resources:
        if primary.kind is not _IP:
            break
    else:
        if not resources:
            return f"{account or '-'}:{fallback}"
        primary = resources[0]
    return f"{account or '-'}:{primary.kind._value_}:{primary.id}"
