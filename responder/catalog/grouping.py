"""Checks of a runbook's `group_by` at load: a key that could never group its events refuses the runbook.

`responder.catalog.checks` refuses a path the Event model does not have; here, a path that reads a whole object,
list or map (its text would group two events only when all of it is equal), and an `event.attributes.<name>` that
no decoder of the trigger's sources declares (every event would open its own `ungrouped:` incident, so be paged
about on its own), and a `group_by` whose own text holds `no-account(` (the missing account's form: every key would
be refused as claiming it). A field the model has but one event lacks is still grouped at run time
(`engine/grouping.py`).
"""

from __future__ import annotations

from collections.abc import Iterator

from responder.catalog.attributes import PREFIX, trigger_sources
from responder.catalog.checks import Problem
from responder.catalog.templates import did_you_mean
from responder.engine.grouping import NO_ACCOUNT
from responder.engine.templating import PLACEHOLDER, placeholders
from responder.models.runbook import Runbook
from responder.normalise.registry import attribute_names
from responder.rules.paths import not_single, path_problem


def group_by_problems(rb: Runbook) -> Iterator[Problem]:
    """Each `group_by` placeholder that reads no single value, or an attribute no source of the trigger sets."""
    if NO_ACCOUNT in PLACEHOLDER.sub("", rb.group_by):
        yield (f"group_by's own text holds {NO_ACCOUNT!r}, the form `${{event.account}}` takes for an event naming "
               f"no account: every event would open its own incident; write another text"), ["group_by"]
    seen = trigger_sources(rb)
    declared = frozenset().union(*(attribute_names(s) for s in seen))
    for ref in placeholders(rb.group_by):
        if path_problem(ref, (), ("event",)):
            continue  # an unknown path is refused by runbook_problems, with the model's fields
        below = not_single(ref)
        if below is not None:
            yield (f"group_by reads {ref}, not a single value: events would be grouped only when all of it is "
                   f"equal; valid choices: {', '.join(below)}"), ["group_by"]
            continue
        name = ref[len(PREFIX):].split(".", 1)[0] if ref.startswith(PREFIX) else None
        if name and seen and name not in declared:
            yield (f"group_by reads {ref}: no decoder of {', '.join(seen)} sets attribute {name!r}"
                   f"{did_you_mean(name, declared)}, so every event would open its own incident; "
                   f"valid: {', '.join(sorted(declared))}"), ["group_by"]
