"""Resolving a runbook step against one event's scope: whether its `when` holds, its actuator, its parameters rendered
and validated, and its target; or why not (`NotNow`, `Invalid`, with what it was meant to act on).

Nothing from the event is evaluated as code: parameters are rendered by responder/engine/templating.py. A step that
resolved is run by responder/engine/runner.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from responder.actuators.base import Actuator
from responder.actuators.registry import Registry
from responder.engine.templating import render
from responder.errors import TemplateError
from responder.models.runbook import Step
from responder.rules.conditions import describe, first_failure


class Resolved(NamedTuple):
    """A step whose parameters resolved and validated now (a named tuple: built once per step, 2x cheaper)."""

    actuator: Actuator[Any]
    params: BaseModel
    target: str
    values: dict[str, Any]


@dataclass(frozen=True)
class NotNow:
    """A step whose `when` does not hold."""

    condition: str


@dataclass(frozen=True)
class Invalid:
    """A step whose parameters do not resolve or validate; `intended`: what it was meant to act on (`intended`)."""

    error: str
    intended: str = ""


def intended(with_: Mapping[str, Any], scope: Mapping[str, Any]) -> str:
    """What a step whose parameters did not resolve or validate was meant to act on, for `${failure.target}`: each
    parameter's value where it resolves to a scalar, as the runbook wrote it where it does not (its text, never
    evaluated; a value from the event is data here too: rendered once, never scanned again)."""
    parts = []
    for name, value in with_.items():
        try:
            got = render(value, scope)
        except TemplateError:
            got = value
        shown = got if isinstance(got, str | int | float | bool) else value
        parts.append(f"{name}={str(shown)[:200]}")
    return "unresolved: " + ", ".join(parts)


def resolve_step(step: Step, scope: Mapping[str, Any], registry: Registry) -> Resolved | NotNow | Invalid:
    """Bind a runbook step to one event's scope: its actuator, validated params and target."""
    failed_when = first_failure(step.when, scope)
    if failed_when is not None:
        return NotNow(describe(failed_when))
    actuator = registry.get(step.actuator)
    try:
        params = actuator.params.model_validate(render(step.with_, scope))
    except (TemplateError, ValidationError) as exc:
        return Invalid(f"invalid parameters: {exc}", intended(step.with_, scope))
    return Resolved(actuator, params, actuator.target(params), params.model_dump(mode="json"))
