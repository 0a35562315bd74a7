"""The incident an event belongs to under its runbook's `group_by`, and the fallbacks when the event lacks a field.

An event that names no AWS account (a Splunk, Sentinel or Datadog alert: the SIEM knows none) is grouped with its
account part as `no-account(<source>)` when the key also reads an identifier no two accounts share (a key or
instance id, a bucket, an ARN): account-less alerts of one source about the same resource share an incident (one
page), never an incident of an event that names an account, nor of another source's (docs/runbooks.md, "An event
without an account"). Any other missing field, or the account beside only names an account chooses (a role, an
endpoint), still opens the event's own `ungrouped:` incident.
"""

from __future__ import annotations

import re
from functools import lru_cache

from responder.engine.templating import placeholders, render
from responder.errors import TemplateError
from responder.models.event import Event

UNGROUPED = "ungrouped:"
"""The group key of an event its runbook's `group_by` cannot group: `ungrouped:<event id>`, its own incident."""

NO_ACCOUNT = "no-account("
"""How `${event.account}` renders in a group key when the event names no account: `no-account(<source>)`."""

ACCOUNT = "${event.account}"
_SOURCE = re.compile(r"[a-z0-9][a-z0-9._-]*")  # every registered decoder's source; never a `(` or a `)`
PINNED = frozenset({"event.resource.access_key.id", "event.attributes.new_access_key_id", "event.resource.instance.id",
                    "event.resource.bucket.id", "event.resource.bucket.name"})
"""Paths whose value AWS assigns (a key id, an instance id) or lets one account name (a bucket), as any ARN does
(it holds the account): beside one of them, a missing account cannot merge two accounts' alerts."""


@lru_cache(maxsize=1024)
def _pinned(group_by: str) -> bool:
    """Whether `group_by` reads, besides the account, an identifier no two accounts share (runbooks: a bounded set).
    A role, user, secret or endpoint name is each account's to choose: an attacker's sandbox account could name one
    as production does, so its account-less noise would hold the real alert's incident (its page counted as sent)."""
    return any(path in PINNED or path.endswith(".arn") for path in placeholders(group_by))


def group_key(group_by: str, event: Event) -> tuple[str, str | None]:
    """The event's group key under `group_by`, and None; or, when a field it names is missing from the event (or the
    key it renders has a fallback's form), `ungrouped:<event id>` and why. A matched alert is never dropped for
    a field the runbook groups by: it opens its own incident (never merged with an unrelated event; a redelivery of
    it is still a repeat), and a step whose parameters need the field fails as invalid parameters and escalates.

    A missing account is the exception when the key also reads an identifier no two accounts share (`PINNED`, an
    ARN): `${event.account}` renders `no-account(<source>)` (the key only; steps still read no account). A key holds
    that text exactly where the fallback put it, or the event is ungrouped: an event's own values (an account, a
    bucket name) cannot claim it and join another source's or an account's incident."""
    view = event.view()
    fallbacks = 0
    if view["account"] is None and ACCOUNT in group_by and _pinned(group_by) and _SOURCE.fullmatch(event.source):
        fallbacks = group_by.count(ACCOUNT)
        view = {**view, "account": f"{NO_ACCOUNT}{event.source})"}
    try:
        key = str(render(group_by, {"event": view}))
    except TemplateError as exc:
        return UNGROUPED + event.id, f"group_by {group_by}: {exc}"
    if key.startswith(UNGROUPED):  # a key an event's own values rendered must not name another event's incident
        return UNGROUPED + event.id, f"group_by {group_by} rendered a key of the fallback's form"
    if key.count(NO_ACCOUNT) != fallbacks:  # `no-account(` has no border: its occurrences never overlap
        return UNGROUPED + event.id, f"group_by {group_by} rendered a key holding {NO_ACCOUNT!r} from the event"
    return key, None
