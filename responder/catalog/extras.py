"""Runbooks whose actuators need an optional dependency this install lacks (`Actuator.extra`): a model rollback
without the `signing` extra would fail at the first incident that needs it, so `responder run` refuses to start."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from responder.actuators.registry import Registry
from responder.errors import ConfigError
from responder.models.runbook import Runbook


class Missing(BaseModel):
    """One runbook step whose actuator cannot act in this install, and why."""

    model_config = ConfigDict(frozen=True)

    runbook: str
    step: str
    actuator: str
    extra: str
    why: str


def missing_extras(books: Sequence[Runbook], registry: Registry) -> list[Missing]:
    """Every step (escalations included) whose actuator says it is unavailable here, in runbook order."""
    found = []
    for rb in books:
        for step in [*rb.steps, *rb.on_failure]:
            actuator = registry.get(step.actuator) if step.actuator in registry else None
            why = actuator.unavailable() if actuator is not None else None
            if actuator is not None and why is not None:
                found.append(Missing(runbook=rb.id, step=step.id, actuator=step.actuator,
                                     extra=actuator.extra or "?", why=why))
    return found


def refuse_missing_extras(books: Sequence[Runbook], registry: Registry) -> None:
    """ConfigError (exit 3, one line) naming the first runbook whose actuator lacks its extra, and how many more."""
    missing = missing_extras(books, registry)
    if not missing:
        return
    first, others = missing[0], sorted({m.runbook for m in missing} - {missing[0].runbook})
    more = f" (and runbook(s) {', '.join(others)})" if others else ""
    raise ConfigError(f"runbook {first.runbook} (step {first.step}) uses {first.actuator}, which needs the "
                      f"'{first.extra}' extra: {first.why}{more}; install incident-responder[{first.extra}] (the image "
                      f"has it) or remove the runbook")
