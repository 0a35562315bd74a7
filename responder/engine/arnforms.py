"""The names an AWS ARN outside IAM carries, and the ARN, in any region and account, a bare name implies.

The actuators take a Lambda function, a KMS key, a secret or a trail by name or ARN and a bucket by name, so
a protected id must match whichever is given: `arn:aws:lambda:us-east-1:123456789012:function:NAME:live`
expands to `NAME` (and the ARN itself), and the name `NAME` given to `function_name` to
`arn:aws:lambda:*:*:function:NAME`, whose `*` region and account match any a protected ARN pattern names
(responder acts only in its own credentials' account, so over-protecting the same name elsewhere is safe).
A secret's ARN ends in `-` and 6 random characters AWS adds to its name: it expands both with and without
them, and a protected secret ARN pattern ending in `-??????`, `-*` or 6 such characters also matches
without them. A bare name pattern is never derived from an ARN pattern (`…:function:*` must not protect
every target of every kind).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from responder.models.event import ResourceKind

# the parameter that names a resource by name or ARN → its service (a notify actuator's `key_id` is a
# signing key id, not a KMS key: `identifier_forms` leaves it out)
NAME_PARAMS = {"function_name": "lambda", "key_id": "kms", "secret_id": "secretsmanager",
               "secret_name": "secretsmanager", "bucket": "s3", "trail": "cloudtrail"}
KIND_SERVICE = {ResourceKind.FUNCTION: "lambda", ResourceKind.KMS_KEY: "kms", ResourceKind.SECRET: "secretsmanager",
                ResourceKind.TRAIL: "cloudtrail", ResourceKind.BUCKET: "s3"}
_ARN_OF = {"lambda": "arn:aws:lambda:*:*:function:{}", "kms": "arn:aws:kms:*:*:key/{}",
           "secretsmanager": "arn:aws:secretsmanager:*:*:secret:{}", "cloudtrail": "arn:aws:cloudtrail:*:*:trail/{}",
           "s3": "arn:aws:s3:::{}"}
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
_SECRET_PATTERN_SUFFIX = re.compile(r"-(?:[A-Za-z0-9]{6}|\?{6}|\*)$")


def any_arn(service: str, name: str) -> str:
    """The ARN of resource `name` of `service` in any region and account (`*`)."""
    if service == "kms" and name.casefold().startswith("alias/"):
        return f"arn:aws:kms:*:*:{name}"
    return _ARN_OF[service].format(name)


def _names(service: str, resource: str) -> list[str]:
    """The names an ARN's resource part carries (`function:NAME:qualifier` → NAME); none for other services."""
    kind, _, rest = resource.partition("/" if service in ("kms", "cloudtrail") else ":")
    if service == "lambda" and kind == "function" and rest:
        return [rest.split(":", 1)[0]]
    if service == "kms" and kind in ("key", "alias") and rest:
        return [rest if kind == "key" else resource]
    if service == "secretsmanager" and kind == "secret" and rest:
        return [rest, _SECRET_SUFFIX.sub("", rest)]
    if service == "cloudtrail" and kind == "trail" and rest:
        return [rest]
    if service == "s3" and resource:
        return [resource.split("/", 1)[0]]  # `bucket/key` (an object) → its bucket
    return []


def arn_forms(service: str, resource: str) -> Iterator[str]:
    """Each name a (non-IAM) ARN carries, with its ARN in any region and account."""
    for name in _names(service, resource):
        yield name
        yield any_arn(service, name)


def name_forms(service: str, value: str) -> Iterator[str]:
    """The any-region, any-account ARN of a resource given by name (an ARN is expanded as such)."""
    if value and not value.startswith("arn:"):
        yield any_arn(service, value)


def pattern_variants(pattern: str) -> list[str]:
    """`pattern` (lower-cased), and for a secret ARN pattern the same without the suffix AWS adds to a name."""
    parts = pattern.split(":", 6)
    if len(parts) == 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[5] == "secret":
        bare = _SECRET_PATTERN_SUFFIX.sub("", pattern)
        if bare != pattern and not bare.endswith(":"):
            return [pattern, bare]
    return [pattern]
