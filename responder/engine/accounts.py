"""The `account` guard: a step acts in responder's own account, so it never acts on what an event says is elsewhere.

The actuators act with responder's own credentials, in its own account (`aws_account_id`): none assumes a role in
another. IAM names, secret names and function names are unique within an account only, so a finding about another
account (an organisation's GuardDuty or Security Hub administrator receives every member's) naming its role
`ml-training` would, acted on, quarantine responder's own `ml-training`, another principal. A parameter, or an event
resource the step names (`identifier_forms`), given as an ARN of another account is the same mistake spelled out (a
CloudTrail `AssumeRole` logged here names the other account's role by its ARN; the step gets its bare name), or a
call across accounts that a resource policy may let through. Each is a hard trip, refused whatever a human approves:
the account responder acts in is the expected one, or, while it is not known, the event's. Accounts are compared as
written (a full-width or padded account is another one: refused). A notify step touches no resource: not checked.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from responder.engine.arnforms import Home
from responder.engine.protection import identifier_forms, identifying, strings_of
from responder.models.event import Event, Resource


def arn_account(value: str) -> str | None:
    """The account an ARN names (None for no ARN, or one naming no account: an S3 bucket's)."""
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    return parts[4] or None if len(parts) == 6 else None


def _resource_account(res: Resource) -> str | None:
    return next((a for v in (res.arn, res.id) if v and (a := arn_account(v)) is not None), None)


def _elsewhere(values: Iterable[str], expected: str) -> tuple[str, str] | None:
    return next(((v, a) for v in values if (a := arn_account(v)) is not None and a != expected), None)


def account_refusal(target: str, params: Mapping[str, Any], event: Event, actuator: str, home: Home,
                    not_identifiers: Collection[str] = ()) -> str | None:
    """Why a step would act on a resource of another account than responder's own (`home.account`; the event's while
    that is unknown), or None: the event is about another account, or a parameter or a resource of the event the step
    names is an ARN of another."""
    expected = home.account or event.account
    if expected is None:
        return None
    if home.account is not None and event.account is not None and event.account != home.account:
        return (f"the event is about account {event.account!r}, and responder acts in its own account {home.account} "
                "(aws_account_id), where a resource of the same name is another one (refused: it would act on the "
                "wrong account's resource)")
    identified = identifying(params, not_identifiers)
    given = _elsewhere((target, *strings_of(identified)), expected)
    if given is not None:
        return f"{given[0]!r} is in account {given[1]!r}, not {expected} where responder acts (refused)"
    foreign = [r for r in event.resources if (a := _resource_account(r)) is not None and a != expected]
    if not foreign:  # the common event: no resource of another account, nothing to expand
        return None
    _, named = identifier_forms(target, identified, event, actuator, home)
    for res in named:
        if any(res is f for f in foreign):
            return (f"{target!r} is named by the event as {res.arn or res.id!r}, in account "
                    f"{_resource_account(res)!r}, not {expected} where responder acts (refused: the same name here "
                    "is another resource)")
    return None
