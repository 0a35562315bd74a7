"""The `account` guard: a step acts in responder's own account, so it never acts on what an event says is elsewhere.

The actuators act with responder's own credentials, in its own account (`aws_account_id`): none assumes a role in
another. IAM names, secret names and function names are unique within an account only, so a finding about another
account (an organisation's GuardDuty or Security Hub administrator receives every member's) naming its role
`ml-training` would, acted on, quarantine responder's own `ml-training`, another principal. A parameter, or an event
resource the step names (`identifier_forms`), given as an ARN of another account is the same mistake spelled out (a
CloudTrail `AssumeRole` logged here names the other account's role by its ARN; the step gets its bare name), or a
call across accounts that a resource policy may let through. Each is a hard trip, refused whatever a human approves:
the account responder acts in is the expected one, or, while it is not known, the event's. An account is 12 ASCII
digits (an event's stripped of surrounding blanks; a decoder zero-pads an integer one): anything else, in an ARN's
account field (a malformed ARN's region, `aws`) or as the event's account (a GCP project, a list), names no account,
and is never compared. A step naming its target by an ARN in the expected account is unambiguous, and a bare name the
event also gives in the expected account is ours: neither is refused for another account's namesake in the event. A
notify step touches no resource: not checked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from responder.engine.arnforms import Home
from responder.engine.protection import identifier_forms, identifying, resource_forms, strings_of
from responder.models.event import Event, Resource

_ACCOUNT = re.compile(r"[0-9]{12}")


def aws_account(value: str | None) -> str | None:
    """An event's account as an AWS account (12 ASCII digits, surrounding blanks stripped), or None: unknown."""
    account = value.strip() if value is not None else None
    return account if account is not None and _ACCOUNT.fullmatch(account) else None


def arn_account(value: str) -> str | None:
    """The account an ARN names (None for no ARN, or one naming no account: an S3 bucket's, an AWS-managed policy's,
    a malformed ARN's field that is no 12 ASCII digits)."""
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    return parts[4] if len(parts) == 6 and _ACCOUNT.fullmatch(parts[4]) else None


def _resource_account(res: Resource) -> str | None:
    return next((a for v in (res.arn, res.id) if v and (a := arn_account(v)) is not None), None)


def _elsewhere(values: Iterable[str], expected: str) -> tuple[str, str] | None:
    return next(((v, a) for v in values if (a := arn_account(v)) is not None and a != expected), None)


def account_refusal(target: str, params: Mapping[str, Any], event: Event, actuator: str, home: Home,
                    not_identifiers: Collection[str] = ()) -> str | None:
    """Why a step would act on a resource of another account than responder's own (`home.account`; the event's while
    that is unknown), or None: the event is about another account, or a parameter or a resource of the event the step
    names is an ARN of another."""
    account = aws_account(event.account)
    expected = home.account or account
    if expected is None:
        return None
    if home.account is not None and account is not None and account != home.account:
        return (f"the event is about account {account!r}, and responder acts in its own account {home.account} "
                "(aws_account_id), where a resource of the same name is another one (refused: it would act on the "
                "wrong account's resource)")
    identified = identifying(params, not_identifiers)
    given = _elsewhere((target, *strings_of(identified)), expected)
    if given is not None:
        return f"{given[0]!r} is in account {given[1]!r}, not {expected} where responder acts (refused)"
    foreign = [r for r in event.resources if (a := _resource_account(r)) is not None and a != expected]
    if not foreign or arn_account(target) == expected:  # no resource of another account, or ours by its ARN
        return None
    _, named = identifier_forms(target, identified, event, actuator, home)
    refused = [res for res in named if any(res is f for f in foreign)]
    if not refused:
        return None
    for res in refused:
        if not _namesake_here(res, target, identified, event, actuator, home, expected):
            return (f"{target!r} is named by the event as {res.arn or res.id!r}, in account "
                    f"{_resource_account(res)!r}, not {expected} where responder acts (refused: the same name here "
                    "is another resource)")
    return None


def _namesake_here(res: Resource, target: str, identified: Mapping[str, Any], event: Event, actuator: str,
                   home: Home, expected: str) -> bool:
    """Whether the event names, in the expected account, a resource the step names itself and sharing a name with
    `res` (another account's): the step's name is ours then, not refused for the namesake."""
    ours = [r for r in event.resources if _resource_account(r) == expected]
    if not ours:
        return False
    given, _ = identifier_forms(target, identified, event.model_copy(update={"resources": ()}), actuator, home)
    theirs = resource_forms(res, event.account, home)
    return any((own := resource_forms(r, event.account, home)) & given and own & theirs for r in ours)
