"""Warnings for `event.attributes.<name>` references that no decoder of the trigger's sources sets.

`event.attributes` is a free-form map, so a typo there (`event.attributes.sourceip`) can never be an error
of the Event model; it is checked against the attribute names each decoder declares
(`responder.normalise.registry`, `attributes=` beside every `@decoder`). The sources a runbook can see are
those its `trigger.source` glob names, narrowed to the sources whose threat tables produce one of its
`trigger.category` values. A warning does not fail validation: a site may feed a decoder fields we never saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from responder.catalog.checks import Problem
from responder.catalog.templates import did_you_mean
from responder.engine.resolution import reads
from responder.engine.templating import placeholders
from responder.models.runbook import Runbook
from responder.normalise.registry import attribute_names, sources
from responder.normalise.threats import declared
from responder.rules.conditions import leaves

PREFIX = "event.attributes."


def trigger_sources(rb: Runbook) -> list[str]:
    """The Event sources whose records can trigger `rb`."""
    found = [s for s in sources() if fnmatchcase(s, rb.trigger.source)]
    if rb.trigger.category:
        wanted = set(rb.trigger.category)
        producing = {source for source, categories in declared().items() if categories & wanted}
        found = [s for s in found if s in producing]
    return found


def _references(rb: Runbook) -> Iterator[tuple[str, list[int | str]]]:
    """Every path the runbook reads (trigger, group_by, steps, on_failure steps), with its location."""
    for j, node in enumerate(rb.trigger.conditions):
        for cond in leaves([node]):
            yield cond.field, ["trigger", "conditions", j]
    for ref in placeholders(rb.group_by):
        yield ref, ["group_by"]
    for section, steps in (("steps", rb.steps), ("on_failure", rb.on_failure)):
        for i, step in enumerate(steps):
            for ref, where in reads(step):
                yield ref, [section, i, *where]


def attribute_warnings(rb: Runbook) -> Iterator[Problem]:
    """`event.attributes.<name>` references that no decoder of the runbook's trigger sources declares."""
    seen = trigger_sources(rb)
    if not seen:
        return
    valid = frozenset().union(*(attribute_names(s) for s in seen))
    for path, loc in _references(rb):
        if not path.startswith(PREFIX):
            continue
        name = path[len(PREFIX):].split(".", 1)[0]
        if name and name not in valid:
            hint = did_you_mean(name, valid)
            yield (f"{path}: no decoder of {', '.join(seen)} sets attribute {name!r}{hint}; "
                   f"valid: {', '.join(sorted(valid))}"), loc
