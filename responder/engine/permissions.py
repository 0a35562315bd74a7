"""Whether a validly signed operator request may be acted on: not expired, each command it needs granted to its key
(`operator_permissions`), and, with approver keys, signed by its `by`'s own key for no longer than they allow.

`Operator` (responder/engine/operator.py) records a request refused here as `operator.refused` (within the bound on
refusals, responder/engine/refusals.py) and answers it not ok, with the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from responder.auth import ApproverKeys, KeyRing
from responder.models.operator import OperatorRequest


def refused(request: OperatorRequest, key_id: str | None, now: datetime, keys: KeyRing,
            permissions: Mapping[str, Collection[str]]) -> str | None:
    """Why a validly signed request is not acted on: expired, not granted to its key, too long-lived, or `by` not
    the key's holder."""
    if request.expired(now):
        return "the request expired before it was handled"
    granted = permissions.get(key_id or "", ())
    if missing := [c for c in commands(request) if c not in granted]:
        return (f"key {key_id!r} may not send {', '.join(missing)}: operator_permissions grants it "
                f"{', '.join(sorted(granted)) or 'nothing'}")
    if isinstance(keys, ApproverKeys):
        holder = keys.identity(key_id)
        if holder is not None and holder != request.by:
            return f"key {key_id!r} signs for {holder!r}, not {request.by!r}"
        if (request.expires_at - now).total_seconds() > keys.max_lifetime:
            return f"the request is valid for longer than {keys.max_lifetime:g}s"
    return None


def commands(request: OperatorRequest) -> list[str]:
    """The `operator_permissions` a request needs: its action, and for an undo `undo.force` / `undo.destructive`
    when it asks for them."""
    if request.action != "undo":
        return [request.action]
    return ["undo"] + [name for name, arg in (("undo.force", "force"), ("undo.destructive", "allow_destructive"))
                       if request.args.get(arg) is True]
