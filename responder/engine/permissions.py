"""Whether a validly signed operator request may be acted on: issued (`not_yet_valid`), not expired, signed for no
longer than the keys allow from its own `issued_at` (`lifetime`), each command it needs granted to its key
(`operator_permissions`), and, with approver keys, signed by its `by`'s own key.

The lifetime is judged on the request's own two times, never on the clock, so a request refused for it is refused so
whenever it is sent again, and every other request expires within `lifetime` (plus the clock skew allowed) of being
handled: the operator remembers no request id longer (`held_until`, responder/engine/answered.py).

`Operator` (responder/engine/operator.py) records a request refused here as `operator.refused` (within the bound on
refusals, responder/engine/refusals.py) and answers it not ok, with the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from responder.auth import MAX_LIFETIME, ApproverKeys, KeyRing
from responder.models.operator import OperatorRequest

SKEW = timedelta(minutes=5)
"""How far ahead of this service's clock a request may say it was issued (a signer's clock running ahead)."""


def lifetime(keys: KeyRing) -> float:
    """The longest a request may be valid, in seconds: the approver keys' (`approval_decision_max_lifetime`), else
    `MAX_LIFETIME`."""
    return keys.max_lifetime if isinstance(keys, ApproverKeys) else MAX_LIFETIME


def held_until(request: OperatorRequest, keys: KeyRing) -> datetime:
    """Until when the request could be acted on: its expiry, but no later than its lifetime allows (past that, one
    valid for longer is refused for it again, whenever sent)."""
    return min(request.expires_at, request.issued_at + timedelta(seconds=lifetime(keys)))


def not_yet_valid(request: OperatorRequest, now: datetime) -> str | None:
    """Why a request is not handled yet: issued more than `SKEW` ahead of `now`. Not its answer: sent again once
    valid, it is checked again."""
    if request.issued_at > now + SKEW:
        return (f"the request is issued in the future ({request.issued_at.isoformat()}, more than 5 minutes ahead of "
                "this service's clock): not run, send it again once it is valid")
    return None


def refused(request: OperatorRequest, key_id: str | None, now: datetime, keys: KeyRing,
            permissions: Mapping[str, Collection[str]]) -> str | None:
    """Why a validly signed request is not acted on: expired, valid for longer than `lifetime` from its `issued_at`,
    not granted to its key, or `by` not the key's holder."""
    if request.expired(now):
        return "the request expired before it was handled"
    if (request.expires_at - request.issued_at).total_seconds() > (longest := lifetime(keys)):
        return f"the request is valid for longer than {longest:g}s"
    granted = permissions.get(key_id or "", ())
    if missing := [c for c in commands(request) if c not in granted]:
        return (f"key {key_id!r} may not send {', '.join(missing)}: operator_permissions grants it "
                f"{', '.join(sorted(granted)) or 'nothing'}")
    if isinstance(keys, ApproverKeys):
        holder = keys.identity(key_id)
        if holder is not None and holder != request.by:
            return f"key {key_id!r} signs for {holder!r}, not {request.by!r}"
    return None


def commands(request: OperatorRequest) -> list[str]:
    """The `operator_permissions` a request needs: its action, and for an undo `undo.force` / `undo.destructive`
    when it asks for them."""
    if request.action != "undo":
        return [request.action]
    return ["undo"] + [name for name, arg in (("undo.force", "force"), ("undo.destructive", "allow_destructive"))
                       if request.args.get(arg) is True]
