"""The unique id, path and ARN of an IAM role or user, read through AWS, so that a protected id naming a role or user
by unique id (`AROA…`, `AIDA…`) or by a path pattern (`role/admins/*`) protects it however an event names it.

A step names a role or user by name (`role_name`, `principal_name`, `user_name` of an access key step), ARN or `sts`
assumed-role ARN, and an event may or may not carry its unique id and path: an attacker who shapes the alert leaves them
out. When a protected id may match what only IAM knows of a principal (`principal_kinds`) and nothing else refuses the
step, the guard reads each role (`iam:GetRole`) or user (`iam:GetUser`) of that kind the step names, in responder's own
account, and matches its `RoleId`/`UserId`, path forms and ARN as forms of the target; the event's own ids never spare
the read (they may be forged). Kept and refused as `keptreads` says; a principal that cannot be read (no permission,
throttled past the retries, not found) refuses the step (fail closed: a role that is not found cannot be harmed, but the
step would fail on it anyway, and IAM may not show a role created a moment ago)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import lru_cache

import structlog

from responder.engine.arnforms import IAM_PATH_PATTERN, UNIQUE_PREFIX, WILDCARD, Home, may_start
from responder.engine.iamrecords import Record, RecordReads, get_record
from responder.engine.protection import resource_forms
from responder.errors import PermanentActuationError, TransientActuationError
from responder.models.event import Resource, ResourceKind

log = structlog.get_logger(__name__)

_READ = {"role": ("get_role", "RoleName", "RoleId"), "user": ("get_user", "UserName", "UserId")}
_KINDS = {"role": ResourceKind.IAM_ROLE, "user": ResourceKind.IAM_USER}
NONE: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def principal_kinds(pattern: str, account: str | None = None) -> frozenset[str]:
    """The kinds of principal (`role`, `user`) a protected id may protect by what only IAM knows of one: a bare
    pattern that may match a unique id (`AROA…`, `AIDA…`, `AROA*`, `a*`), a path (`/admins/*`) or an ARN
    (`arn*admins*`), or an IAM path form or ARN whose glob may match a path (`role/admins/*`,
    `arn:aws:iam::*:role/admins/*`, `role/team-*`), in responder's own `account` when it is known (a principal read
    is one of its own). An exact name, with or without a path, protects that name as it is (`pattern_variants`): no
    read."""
    low = pattern.casefold()
    parts = low.split(":", 5)
    arn = low.startswith("arn:")
    ours = account is None or fnmatchcase(account, parts[4] or "*") if len(parts) == 6 else True
    if arn and len(parts) == 6 and not (fnmatchcase("iam", parts[2]) and ours):
        return NONE
    resource = (parts[5] if len(parts) == 6 else "*" if WILDCARD.search(low) else "") if arn else low
    glob = WILDCARD.search(resource) is not None and IAM_PATH_PATTERN.fullmatch(resource) is None
    bare = not arn and (may_start(low, "/") or may_start(low, "arn:"))  # may match a path (`/admins/`) or an ARN
    return frozenset(kind for kind, prefix in UNIQUE_PREFIX.items()
                     if bare or (not arn and may_start(low, prefix)) or (glob and may_start(resource, f"{kind}/")))


def _why(exc: Exception) -> str:
    code = str(getattr(exc, "code", "") or "")  # any error's: a code that is no string must not fail the refusal
    if code == "NoSuchEntity":
        return "not found"
    if "AccessDenied" in code or "Unauthorized" in code:
        return "no permission"
    return "throttled or unavailable" if isinstance(exc, TransientActuationError) else "failed"


class PrincipalForms(RecordReads):
    """Reads and keeps, for `TTL_S` seconds, the forms of the roles and users (`role/NAME`, `user/NAME`) steps name
    (their records shared with the tags' reader through `records`, when given: `iamrecords`)."""

    def _unreadable(self, key: str, exc: Exception) -> str:
        why = _why(exc)
        log.warning("iam_principal_unreadable", principal=key, why=why, error=str(exc))
        action = "iam:GetRole" if key.startswith("role/") else "iam:GetUser"
        return (f"IAM {key!r} could not be read ({why}: {exc}), and a protected id may name its unique id or path: "
                f"refused until it can be ({action})")

    async def _read(self, key: str) -> frozenset[str]:
        return self._from_record(key, await get_record(self.aws, key))

    def _record_key(self, key: str) -> str:
        return key

    def _from_record(self, key: str, got: Record) -> frozenset[str]:
        kind, name = key.split("/", 1)
        operation, param, unique = _READ[kind]
        arn, unique_id, path = got["Arn"], got[unique], got["Path"]  # each needed: none may default (fail closed)
        if not all(isinstance(v, str) and v for v in (arn, unique_id, path)) or len(arn.split(":")) < 6:
            raise PermanentActuationError(f"{operation} answered no usable Arn, {unique} and Path", code="Malformed")
        account = arn.split(":")[4]
        res = Resource(kind=_KINDS[kind], id=arn, name=str(got.get(param, name)), arn=arn,
                       attributes={"unique_id": unique_id, "path": path})
        return frozenset(resource_forms(res, account, Home(account=account)))
