"""Checks a runbook must pass beyond its schema: actuators, parameters, paths, operators, safety.

Each check yields `(reason, location)` where location is the pydantic-style path into the YAML
document; the loader turns locations into file:line:column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from responder.actuators.registry import Registry
from responder.engine.templating import PLACEHOLDER, placeholders
from responder.models.runbook import AllOf, AnyOf, Condition, ConditionNode, NotOf, OnTimeout, Runbook
from responder.rules.operators import validate_operand
from responder.rules.paths import path_problem

Problem = tuple[str, Sequence[int | str]]


def leaves(nodes: Iterable[ConditionNode]) -> Iterator[Condition]:
    for n in nodes:
        if isinstance(n, Condition):
            yield n
        elif isinstance(n, AllOf):
            yield from leaves(n.all)
        elif isinstance(n, AnyOf):
            yield from leaves(n.any)
        elif isinstance(n, NotOf):
            yield from leaves([n.not_])


def _conditions(nodes: Sequence[ConditionNode], loc: Sequence[int | str], earlier: Iterable[str],
                namespaces: Sequence[str]) -> Iterator[Problem]:
    for j, node in enumerate(nodes):
        for cond in leaves([node]):
            problem = validate_operand(cond.op, cond.value) or path_problem(cond.field, list(earlier), namespaces)
            if problem:
                yield problem, [*loc, j]


def _param(params: type[BaseModel], name: str, value: Any, earlier: list[str]) -> str | None:
    refs = placeholders(value)
    if refs:
        return next((p for ref in refs if (p := path_problem(ref, earlier))), None)
    field = params.model_fields[name]
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]
        adapter.validate_python(value)
    except ValidationError as exc:
        return f"parameter {name!r}: {exc.errors()[0]['msg']} (got {value!r})"
    return None


def _step_params(rb: Runbook, i: int, registry: Registry, earlier: list[str]) -> Iterator[Problem]:
    step = rb.steps[i]
    actuator = registry.get(step.actuator)
    params = actuator.params
    known = params.model_fields
    for name, value in step.with_.items():
        where: list[int | str] = ["steps", i, "with", name]
        if name not in known:
            yield f"unknown parameter {name!r} of {step.actuator}; valid: {', '.join(known)}", where
            continue
        if name in actuator.literal_params and placeholders(value):
            yield f"parameter {name!r} of {step.actuator} must be a literal, not a ${{…}} placeholder", where
            continue
        problem = _param(params, name, value, earlier)
        if problem:
            yield problem, where
    for name, field in known.items():
        if field.is_required() and name not in step.with_:
            yield f"missing parameter {name!r} required by {step.actuator}", ["steps", i, "with"]


def runbook_problems(rb: Runbook, stem: str, registry: Registry) -> Iterator[Problem]:
    """Everything wrong with a schema-valid runbook, in document order."""
    if rb.id != stem:
        yield f"id {rb.id!r} must equal the file name {stem!r}", ["id"]
    yield from _conditions(rb.trigger.conditions, ["trigger", "conditions"], (), ("event",))
    for ref in placeholders(rb.group_by):
        problem = path_problem(ref, (), ("event",))
        if problem:
            yield problem, ["group_by"]
    if not PLACEHOLDER.search(rb.group_by):
        yield "group_by must contain at least one ${event.…} placeholder", ["group_by"]
    for q, quota in enumerate(rb.guards.quotas):
        if not any(fnmatchcase(name, quota.actuator) for name in registry.names()):
            yield f"quota actuator {quota.actuator!r} matches no registered actuator", ["guards", "quotas", q]
    seen: list[str] = []
    for i, step in enumerate(rb.steps):
        if step.id in seen:
            yield f"duplicate step id {step.id!r}", ["steps", i, "id"]
        if step.actuator not in registry:
            yield (f"unknown actuator {step.actuator!r}; valid choices: {', '.join(registry.names())}",
                   ["steps", i, "actuator"])
        else:
            yield from _step_params(rb, i, registry, seen)
            if registry.get(step.actuator).destructive and step.approval.on_timeout is OnTimeout.APPROVE:
                yield (f"step {step.id!r}: a destructive actuator cannot be approved by timeout",
                       ["steps", i, "approval", "on_timeout"])
            if registry.get(step.actuator).destructive and step.approval.required is False:
                yield (f"step {step.id!r}: {step.actuator} is destructive and always requires approval",
                       ["steps", i, "approval", "required"])
        yield from _conditions(step.when, ["steps", i, "when"], seen, ("event", "incident", "steps"))
        seen.append(step.id)
