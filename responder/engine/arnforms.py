"""The names an AWS ARN outside IAM carries, and the ARN a bare name implies where responder acts (`Home`).

The actuators take a Lambda function, a KMS key, a secret or a trail by name or ARN, a bucket by name, an EC2
instance by id (`arn:…:ec2:REGION:ACCOUNT:instance/ID` where responder acts) and a SageMaker endpoint by name, so
a protected id must match whichever is given: `arn:aws:lambda:us-east-1:123456789012:function:NAME:live`
expands to `NAME` (and the ARN itself), and the name `NAME` given to `function_name` to
`arn:*:lambda:REGION:ACCOUNT:function:NAME` in responder's own region and account (`aws_region`,
`aws_account_id`; `*` where unknown), whose `*` parts match whatever a protected ARN pattern names there. An ARN
given with its own region and account keeps them: its names are protected by name, its ARN by the patterns it
matches. A secret's ARN ends in `-` and 6 random characters AWS adds to its name: it expands both with and without
them, and a protected secret ARN pattern ending in `-??????`, `-*` or 6 such characters also matches without them
a secret whose suffix is not known (named by name or partial ARN, which a complete-looking ARN may also be: a name
may end in `-` and 6 characters), not a complete ARN with another suffix read as complete; a
pattern written as a partial ARN (`…:secret:prod`) matches the complete ARN (`…:secret:prod-XyZ123`) too.
A bare name pattern is never derived from an ARN pattern (`…:function:*` must not protect every target of every
kind).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from responder.models.event import ResourceKind

# the parameter that names a resource by name or ARN → its service (a notify actuator's `key_id` is a
# signing key id, not a KMS key: `identifier_forms` leaves it out)
SECRETS = "secretsmanager"  # nosec B105 - the AWS service's name, not a password
NAME_PARAMS = {"function_name": "lambda", "key_id": "kms", "secret_id": SECRETS, "secret_name": SECRETS,
               "bucket": "s3", "trail": "cloudtrail", "instance_id": "ec2", "endpoint_name": "sagemaker"}
KIND_SERVICE = {ResourceKind.FUNCTION: "lambda", ResourceKind.KMS_KEY: "kms", ResourceKind.SECRET: "secretsmanager",
                ResourceKind.TRAIL: "cloudtrail", ResourceKind.BUCKET: "s3", ResourceKind.INSTANCE: "ec2",
                ResourceKind.ENDPOINT: "sagemaker"}
_ARN_OF = {"lambda": "function:{}", "kms": "key/{}", "secretsmanager": "secret:{}", "cloudtrail": "trail/{}",
           "ec2": "instance/{}", "sagemaker": "endpoint/{}"}
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
_SECRET_PATTERN_SUFFIX = re.compile(r"-(?:[A-Za-z0-9]{6}|\?{6}|\*)$")
IAM_PATH_PATTERN = re.compile(r"(user|role|group|policy|instance-profile)/[^:]+/([^/*?\[\]]+)")  # exact name
UNIQUE_PREFIX = {"role": "aroa", "user": "aida"}  # what IAM starts a role's and a user's unique id with
_UNIQUE_ID = re.compile(r"a[a-z]{3}[a-z0-9]{12,}")  # AROA…, AIDA…, AKIA…, ASIA…, lower-cased


WILDCARD = re.compile(r"[*?\[]")


def may_start(glob: str, prefix: str) -> bool:
    """Whether `glob` may match a string starting with `prefix`: it starts with it, or its text before a wildcard is
    the start of it (a glob without one matches only itself)."""
    literal, *wild = WILDCARD.split(glob, 1)
    return literal.startswith(prefix) or (bool(wild) and prefix.startswith(literal))


def session_head(pattern: str) -> str | None:
    """The unique id part of a (lower-cased) pattern in the form of a session's principal id, `<id>:<session>`
    (`aroa…:*`, `aroa…:alice`, `aroa3x*:*`), or None: its part before the first `:` when that is a unique id or a glob
    written from the start like a role's or user's (`aroa*`, `aida3x*`, `a*`); never of an ARN (`arn:…`), nor of a
    part starting with a wildcard (`*:role/x` is a loose ARN glob, not a unique id)."""
    head, colon, _ = pattern.partition(":")
    if not colon or pattern.startswith("arn:"):
        return None
    literal = WILDCARD.split(head, 1)[0]
    glob = bool(literal) and literal != head and any(may_start(head, p) for p in UNIQUE_PREFIX.values())
    return head if glob or _UNIQUE_ID.fullmatch(head) else None


@dataclass(frozen=True)
class Home:
    """Where responder acts: the account of its credentials (`aws_account_id`) and its region (`aws_region`); None
    where not known, which derived forms then leave open (`*`: any)."""

    account: str | None = None
    region: str | None = None

    def accounts(self, claimed: str | None) -> set[str]:
        """The accounts an IAM name is protected in: responder's own (any when unknown) and the one claimed for it
        (a finding's, an ARN's), never only the claimed one: a finding may name another account than the one the
        actuators act in."""
        return {self.account or "*", *((claimed,) if claimed else ())}


ANYWHERE = Home()
"""Where nothing is known of responder's account and region: every derived form leaves them open."""


def home_arn(service: str, name: str, home: Home) -> str:
    """The ARN of resource `name` of `service` where responder acts (partition open: `*`)."""
    if service == "s3":
        return f"arn:*:s3:::{name}"
    resource = name if service == "kms" and name.casefold().startswith("alias/") else _ARN_OF[service].format(name)
    return f"arn:*:{service}:{home.region or '*'}:{home.account or '*'}:{resource}"


def arn_forms(service: str, resource: str) -> list[str]:
    """The names a (non-IAM) ARN's resource part carries (`function:NAME:qualifier` → NAME); none for other
    services (the ARN itself is kept by the caller, with its own region and account)."""
    kind, _, rest = resource.partition("/" if service in ("kms", "cloudtrail", "ec2", "sagemaker") else ":")
    if service == "lambda" and kind == "function" and rest:
        return [rest.split(":", 1)[0]]
    if service == "kms" and kind in ("key", "alias") and rest:
        return [rest if kind == "key" else resource]
    if service == "secretsmanager" and kind == "secret" and rest:
        return [rest, _SECRET_SUFFIX.sub("", rest)]
    if (service, kind) in (("cloudtrail", "trail"), ("ec2", "instance"), ("sagemaker", "endpoint")) and rest:
        return [rest]
    if service == "s3" and resource:
        return [resource.split("/", 1)[0]]  # `bucket/key` (an object) → its bucket
    return []


def name_forms(service: str, value: str, home: Home) -> Iterator[str]:
    """The ARN, where responder acts, of a resource given by name (an ARN is expanded as such)."""
    if value and not value.startswith("arn:"):
        yield home_arn(service, value, home)


def suffix_known(form: str) -> bool:
    """Whether a secret ARN form is complete: given as an ARN (not derived from a name: its partition is not `*`)
    ending in `-` and 6 letters or digits, which Secrets Manager takes as its suffix. Its suffix is known, so a
    pattern's other suffix does not match it (a name's or a partial ARN's suffix is unknown: any may match)."""
    parts = form.split(":", 6)
    return len(parts) == 7 and parts[1] != "*" and parts[2] == SECRETS and parts[5] == "secret" \
        and _SECRET_SUFFIX.search(parts[6]) is not None


def without_suffix(form: str) -> str:
    """A complete secret ARN (`suffix_known`) as the partial ARN naming the same secret (`…:secret:prod-XyZ123` →
    `…:secret:prod`): what a pattern written as a partial ARN protects."""
    return _SECRET_SUFFIX.sub("", form)


@lru_cache(maxsize=4096)
def pattern_variants(pattern: str) -> tuple[str, ...]:
    """`pattern` (lower-cased), then what else it protects: a secret ARN pattern without the suffix AWS adds to a name
    (to match only a form whose suffix is not known: `suffix_known`); a qualified Lambda ARN (`…:function:NAME:live`)
    as the function's (a step acts on the function, every alias and version with it); an object ARN
    (`arn:aws:s3:::bucket/*`) as its bucket's; an IAM path form with an exact name (`role/admins/BreakGlass`, also as an
    ARN) without its path (IAM names are unique in an account whatever the path; a glob name keeps its path); an
    assumed-role session ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) as its role's (a step on the role acts
    on its every session), and so a session's principal id (`AROA…:SESSION`, `AROA…:*`: `session_head`) as
    `AROA…:`, a form the guard builds of every unique id (`protection`): the variant matches a form ending in `:` only,
    which no other form it builds does, so it protects the role or user that id names and nothing else of note."""
    parts = pattern.split(":", 6)
    arn = len(parts) >= 6 and parts[0] == "arn"
    if arn and len(parts) == 7 and parts[2] == SECRETS and parts[5] == "secret":
        bare = _SECRET_PATTERN_SUFFIX.sub("", pattern)
        return (pattern, bare) if bare != pattern and not bare.endswith(":") else (pattern,)
    if arn and len(parts) == 7 and parts[2] == "lambda" and parts[5] == "function" and ":" in parts[6]:
        return pattern, pattern.rsplit(":", 1)[0]
    if arn and parts[2] == "s3" and not parts[3] and not parts[4] and "/" in parts[5]:
        return pattern, pattern.split("/", 1)[0]
    if arn and parts[2] == "sts" and parts[5].startswith("assumed-role/") and parts[5].count("/") >= 2:
        return pattern, f"{':'.join(parts[:2])}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    head = session_head(pattern)
    if head is not None:
        return pattern, f"{head}:"
    path = IAM_PATH_PATTERN.fullmatch(parts[5] if arn and parts[2] == "iam" else "" if arn else pattern)
    if path is not None:
        return pattern, pattern[:len(pattern) - len(path.group(0))] + f"{path.group(1)}/{path.group(2)}"
    return (pattern,)
