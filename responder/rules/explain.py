"""Explain matching: for one event, which runbooks accept it and, for the others, the first failing test."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue
from pydantic_core import to_jsonable_python

from responder.models.event import Event
from responder.models.runbook import Runbook
from responder.rules.conditions import describe, holds, innermost_failure, lookup
from responder.rules.operators import MISSING


class Verdict(BaseModel):
    """Why one runbook does or does not accept one event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runbook: str
    matched: bool
    failed: str | None = None
    check: str | None = None
    expected: JsonValue = None
    actual: JsonValue = None


def _actual(value: Any) -> JsonValue:
    """The value a failed test read, as JSON (a path may end on models: `event.resources` is a tuple of them)."""
    return "<missing>" if value is MISSING else to_jsonable_python(value, inf_nan_mode="null")


def explain_one(rb: Runbook, event: Event) -> Verdict:
    """The verdict of `rb` on `event`, naming the first check that failed."""
    trig = rb.trigger
    if not fnmatch.fnmatchcase(event.source, trig.source):
        return Verdict(runbook=rb.ref, matched=False, check="source", failed=f"source glob {trig.source!r}",
                       expected=trig.source, actual=event.source)
    if not fnmatch.fnmatchcase(event.type, trig.type):
        return Verdict(runbook=rb.ref, matched=False, check="type", failed=f"type glob {trig.type!r}",
                       expected=trig.type, actual=event.type)
    if trig.category and (event.threat is None or event.threat.category not in trig.category):
        wanted = [c.value for c in trig.category]
        return Verdict(runbook=rb.ref, matched=False, check="category", failed=f"threat category in {wanted}",
                       expected=wanted, actual=event.threat.category.value if event.threat else None)
    scope = {"event": event}
    for i, node in enumerate(trig.conditions):
        if holds(node, scope):
            continue
        leaf = innermost_failure(node, scope)
        return Verdict(
            runbook=rb.ref, matched=False, check=f"trigger.conditions[{i}]", failed=describe(node),
            expected=None if leaf is None else leaf.value,
            actual=None if leaf is None else _actual(lookup(scope, leaf.field)),
        )
    return Verdict(runbook=rb.ref, matched=True)


def explain(runbooks: Iterable[Runbook], event: Event) -> list[Verdict]:
    """Verdicts for every runbook, matches first, each group in load order."""
    verdicts = [explain_one(rb, event) for rb in runbooks]
    return [v for v in verdicts if v.matched] + [v for v in verdicts if not v.matched]
