"""The `account` guard: a step acts in responder's own account, so it never acts on what an event says is elsewhere.

The actuators act with responder's own credentials, in its own account (`aws_account_id`): none assumes a role in
another. IAM names, secret names and function names are unique within an account only, so a finding about another
account (an organisation's GuardDuty or Security Hub administrator receives every member's) naming its role
`ml-training` would, acted on, quarantine responder's own `ml-training`, another principal. A parameter, or an event
resource the step names (`identifier_forms`), given as an ARN of another account is the same mistake spelled out (a
CloudTrail `AssumeRole` logged here names the other account's role by its ARN; the step gets its bare name), or a
call across accounts that a resource policy may let through. Each is a hard trip, refused whatever a human approves:
the account responder acts in is the expected one, or, while it is not known, the event's. In an ARN an account is
its field of 12 ASCII digits (a malformed ARN's region, `aws`: no account). An event's account names every 12-digit
group in it, 12 digits in a row or the console's 4-4-4, once its digits are read as ASCII (`0123-4567-8901`,
full-width digits, a SIEM's list of several); one naming none (a GCP project, an alias) is unknown, never
compared. A step naming its target by an ARN in the expected account is unambiguous, and so is a bare name the
event gives, by its full ARN in the expected account, for the very resource the step acts on (its kind and name);
otherwise a name the event also gives for another account's resource is refused. A notify step touches no resource:
not checked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any

from responder.engine.arnforms import Home
from responder.engine.protection import identifier_forms, identifying, resource_forms, strings_of
from responder.models.event import Event, Resource

_ACCOUNT = re.compile(r"[0-9]{12}")


# 12 digits in a row, or the console's 4-4-4 with one separator (a dash or a blank) throughout, not touching other
# digits: `999999999999 123456789012` is two accounts, `2026-12-07 1030` none
_GROUP = re.compile(r"(?<![0-9])(?:[0-9]{12}|(?<![0-9][- ])[0-9]{4}([- ])[0-9]{4}\1[0-9]{4}(?![- ]?[0-9]))(?![0-9])")


@lru_cache(maxsize=4096)
def event_accounts(value: str | None) -> frozenset[str]:
    """The AWS accounts an event's account names: each group of 12 digits (in a row, or 4-4-4 as the console writes
    it) once every decimal digit is read as ASCII; none for a value without one (a GCP project, an alias: unknown).
    Cached: a service sees few accounts, and this runs for every acting step."""
    if not value:
        return frozenset()
    if _ACCOUNT.fullmatch(value):  # the common spelling, without the digit-by-digit read below
        return frozenset((value,))
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in value)
    return frozenset(m.group(0).replace("-", "").replace(" ", "") for m in _GROUP.finditer(text))


def arn_account(value: str) -> str | None:
    """The account an ARN names (None for no ARN, or one naming no account: an S3 bucket's, an AWS-managed policy's,
    a malformed ARN's field that is no 12 ASCII digits)."""
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    return parts[4] if len(parts) == 6 and _ACCOUNT.fullmatch(parts[4]) else None


def _resource_account(res: Resource) -> str | None:
    for value in (res.arn, res.id):
        if value and value.startswith("arn:") and (account := arn_account(value)) is not None:
            return account
    return None


def _elsewhere(values: Iterable[str], expected: str) -> tuple[str, str] | None:
    return next(((v, a) for v in values if (a := arn_account(v)) is not None and a != expected), None)


def account_refusal(target: str, params: Mapping[str, Any], event: Event, actuator: str, home: Home,
                    not_identifiers: Collection[str] = ()) -> str | None:
    """Why a step would act on a resource of another account than responder's own (`home.account`; the event's while
    that is unknown), or None: the event is about another account, or a parameter or a resource of the event the step
    names is an ARN of another."""
    accounts = event_accounts(event.account)
    others = sorted(accounts - {home.account}) if home.account is not None else []
    if others:
        return (f"the event is about account {others[0]!r}, and responder acts in its own account {home.account} "
                "(aws_account_id), where a resource of the same name is another one (refused: it would act on the "
                "wrong account's resource)")
    if home.account is None and len(accounts) > 1:
        return (f"the event names accounts {', '.join(sorted(accounts))} and responder's own is not set "
                "(aws_account_id): it cannot tell which one a name belongs to (refused)")
    expected = home.account or next(iter(accounts), None)
    if expected is None:
        return None
    identified = identifying(params, not_identifiers)
    given = _elsewhere((target, *strings_of(identified)), expected)
    if given is not None:
        return f"{given[0]!r} is in account {given[1]!r}, not {expected} where responder acts (refused)"
    foreign = [r for r in event.resources if (a := _resource_account(r)) is not None and a != expected]
    if not foreign or arn_account(target) == expected:  # no resource of another account, or ours by its ARN
        return None
    _, named = identifier_forms(target, identified, event, actuator, home)
    for res in named:
        if any(res is f for f in foreign) and not _ours_by_arn(res, event, target, identified, actuator, home,
                                                               expected):
            return (f"{target!r} is named by the event as {res.arn or res.id!r}, in account "
                    f"{_resource_account(res)!r}, not {expected} where responder acts (refused: the same name here "
                    "is another resource)")
    return None


def _ours_by_arn(theirs: Resource, event: Event, target: str, identified: Mapping[str, Any], actuator: str,
                 home: Home, expected: str) -> bool:
    """Whether the event gives, by its full ARN in the expected account, the very resource the step acts on under
    the name it shares with `theirs` (another account's): our role `deployer` that an outside `deployer` session
    assumed. A resource of ours of another kind sharing the name (our secret `ml-training` beside an outside role
    `ml-training`), or one the step names beside the foreign one (`role_names: [ours, theirs]`), does not count."""
    given, _ = identifier_forms(target, identified, event.model_copy(update={"resources": ()}), actuator, home)
    shared = resource_forms(theirs, event.account, home) & given
    for res in event.resources:
        arn = res.arn or res.id
        if arn and arn_account(arn) == expected:
            parts = arn.split(":", 5)
            if (":".join(["arn", "*", *parts[2:]]).casefold() in given
                    and resource_forms(res, event.account, home) & shared):
                return True
    return False
