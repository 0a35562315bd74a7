"""Inline IAM policies of a user or role, by name: read, write and delete one, check that the principal exists,
and the deny-all document the deny actuators write.

Used by the actuators of `responder.actuators.aws.iam_policies`, `responder.actuators.aws.iam_restore` and
`responder.actuators.aws.sagemaker`.
"""

from __future__ import annotations

from typing import Any

import orjson

from responder.actuators.base import ActuationContext
from responder.errors import PermanentActuationError

_OPS = {"user": ("UserName", "user"), "role": ("RoleName", "role")}


async def get_inline(ctx: ActuationContext, kind: str, principal: str, policy: str) -> dict[str, Any] | None:
    """The inline policy document, or None when the principal has no policy of that name."""
    arg, noun = _OPS[kind]
    try:
        got = await ctx.aws.call("iam", f"get_{noun}_policy", **{arg: principal}, PolicyName=policy)
    except PermanentActuationError as exc:
        if exc.code == "NoSuchEntity":
            return None
        raise
    doc = got["PolicyDocument"]
    parsed: dict[str, Any] = orjson.loads(doc) if isinstance(doc, str) else dict(doc)
    return parsed


async def require_principal(ctx: ActuationContext, kind: str, principal: str) -> None:
    """PermanentActuationError when the user or role does not exist (GetUserPolicy's NoSuchEntity cannot tell)."""
    arg, noun = _OPS[kind]
    try:
        await ctx.aws.call("iam", f"get_{noun}", **{arg: principal})
    except PermanentActuationError as exc:
        if exc.code == "NoSuchEntity":
            raise PermanentActuationError(f"no such IAM {noun} {principal!r}", code=exc.code) from exc
        raise


async def put_inline(ctx: ActuationContext, kind: str, principal: str, policy: str, doc: dict[str, Any]) -> None:
    """Create or replace the inline policy."""
    arg, noun = _OPS[kind]
    await ctx.aws.call("iam", f"put_{noun}_policy", **{arg: principal}, PolicyName=policy,
                       PolicyDocument=orjson.dumps(doc).decode())


async def delete_inline(ctx: ActuationContext, kind: str, principal: str, policy: str) -> None:
    """Remove the inline policy (absent is fine)."""
    arg, noun = _OPS[kind]
    try:
        await ctx.aws.call("iam", f"delete_{noun}_policy", **{arg: principal}, PolicyName=policy)
    except PermanentActuationError as exc:
        if exc.code != "NoSuchEntity":
            raise


def deny_document(sid: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-statement policy denying every action on every resource (optionally under a condition)."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}
