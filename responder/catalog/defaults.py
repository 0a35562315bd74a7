"""The service-wide escalation (`default_on_failure` in settings): the `on_failure` steps of a runbook that has none.

A runbook's own `on_failure` block always wins; the default is checked as one would be in each runbook it completes
(known, non-destructive, unattended actuators; placeholders in `event`, `incident` and `failure` only), so a bad
default stops the service at start-up with the setting's field and the valid choices, never at the first failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from responder.actuators.registry import Registry
from responder.catalog.checks import escalation_problems
from responder.errors import ConfigError
from responder.models.runbook import Runbook, Step


def default_escalation(raw: Sequence[Mapping[str, Any]]) -> list[Step]:
    """The setting's steps, validated as runbook steps; ConfigError naming the field otherwise."""
    steps = []
    for i, item in enumerate(raw):
        try:
            steps.append(Step.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"default_on_failure[{i}]{'.' + where if where else ''}: {err['msg']}") from exc
    return steps


def with_default_escalation(books: Iterable[Runbook], raw: Sequence[Mapping[str, Any]],
                            registry: Registry) -> list[Runbook]:
    """`books`, each without `on_failure` given the default's steps (none when the setting is empty)."""
    steps = default_escalation(raw)
    if not steps:
        return list(books)
    out = []
    for rb in books:
        if rb.on_failure:
            out.append(rb)
            continue
        completed = rb.model_copy(update={"on_failure": steps})
        for reason, loc in escalation_problems(completed, registry):
            where = ".".join(str(p) for p in loc).removeprefix("on_failure.")
            raise ConfigError(f"default_on_failure.{where} (for runbook {rb.id}): {reason}")
        out.append(completed)
    return out


def defaulted(books: Iterable[Runbook], raw: Sequence[Mapping[str, Any]],
              registry: Registry) -> tuple[list[Runbook], list[str]]:
    """`with_default_escalation`, and the ids of the runbooks it gave the setting's steps to (each without its own
    `on_failure`; none when the setting is empty: they escalate to nobody, `escalation.missed`). Read off what it
    returned, so what a drill or `runbooks validate` names is what the service runs."""
    given = list(books)
    completed = with_default_escalation(given, raw, registry)
    return completed, [rb.id for rb, done in zip(given, completed, strict=True) if done is not rb]
