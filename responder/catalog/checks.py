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
from responder.catalog.operands import operand_type_problem
from responder.catalog.templates import malformed_problems
from responder.engine.resolution import reads
from responder.engine.templating import PLACEHOLDER, placeholders
from responder.models.runbook import ConditionNode, OnTimeout, Runbook, Step
from responder.normalise.registry import sources
from responder.normalise.threats import declared
from responder.rules.conditions import leaves
from responder.rules.operators import validate_operand
from responder.rules.paths import NAMESPACES, path_problem

Problem = tuple[str, Sequence[int | str]]


def _conditions(nodes: Sequence[ConditionNode], loc: Sequence[int | str], earlier: Iterable[str],
                namespaces: Sequence[str]) -> Iterator[Problem]:
    for j, node in enumerate(nodes):
        for cond in leaves([node]):
            problem = (validate_operand(cond.op, cond.value) or path_problem(cond.field, list(earlier), namespaces)
                       or operand_type_problem(cond.field, cond.op, cond.value))
            if problem:
                yield problem, [*loc, j]


def _param(params: type[BaseModel], name: str, value: Any, earlier: list[str], namespaces: Sequence[str]) -> str | None:
    refs = placeholders(value)
    if refs:
        return next((p for ref in refs if (p := path_problem(ref, earlier, namespaces))), None)
    field = params.model_fields[name]
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]
        adapter.validate_python(value)
    except ValidationError as exc:
        return f"parameter {name!r}: {exc.errors()[0]['msg']} (got {value!r})"
    return None


def _sets(params: type[BaseModel], name: str, value: Any) -> bool:
    """Whether a step's value sets a `required_one_of` parameter: a placeholder does (it is checked when it resolves);
    a literal does unless it validates to null or false ("false", "no" and 0 are false to a bool field)."""
    if value is None or placeholders(value) or name not in params.model_fields:
        return value is not None
    field = params.model_fields[name]
    try:
        value = TypeAdapter(Annotated[field.annotation, field]).validate_python(value)  # type: ignore[arg-type]
    except ValidationError:
        return True  # reported as the parameter's own problem
    return value is not None and value is not False


def _step_params(step: Step, at: list[int | str], registry: Registry, earlier: list[str],
                 namespaces: Sequence[str] = NAMESPACES) -> Iterator[Problem]:
    actuator = registry.get(step.actuator)
    params = actuator.params
    known = params.model_fields
    for name, value in step.with_.items():
        where: list[int | str] = [*at, "with", name]
        if name not in known:
            yield f"unknown parameter {name!r} of {step.actuator}; valid: {', '.join(known)}", where
            continue
        bad = next(malformed_problems(value, namespaces, earlier), None)
        if bad:
            yield bad, where
            continue
        if name in actuator.literal_params and placeholders(value):
            yield f"parameter {name!r} of {step.actuator} must be a literal, not a ${{…}} placeholder", where
            continue
        problem = _param(params, name, value, earlier, namespaces)
        if problem:
            yield problem, where
    for name, field in known.items():
        if field.is_required() and name not in step.with_:
            yield f"missing parameter {name!r} required by {step.actuator}", [*at, "with"]
    one_of: tuple[str, ...] = getattr(params, "required_one_of", ())
    if one_of and not any(_sets(params, name, step.with_.get(name)) for name in one_of):
        yield (f"{step.actuator} needs one of the parameters {', '.join(one_of)} (set, not null or false); "
               f"valid choices: {', '.join(one_of)}"), [*at, "with"]


def runbook_problems(rb: Runbook, stem: str, registry: Registry) -> Iterator[Problem]:
    """Everything wrong with a schema-valid runbook, in document order."""
    if rb.id != stem:
        yield f"id {rb.id!r} must equal the file name {stem!r}", ["id"]
    known = sources()
    if not any(fnmatchcase(source, rb.trigger.source) for source in known):
        yield (f"trigger.source {rb.trigger.source!r} matches no event source (case matters); "
               f"valid choices: {', '.join(known)}"), ["trigger", "source"]
    yield from _categories(rb, [s for s in known if fnmatchcase(s, rb.trigger.source)])
    yield from _conditions(rb.trigger.conditions, ["trigger", "conditions"], (), ("event",))
    bad_key = list(malformed_problems(rb.group_by, ("event",)))
    yield from ((bad, ["group_by"]) for bad in bad_key)
    for ref in placeholders(rb.group_by):
        problem = path_problem(ref, (), ("event",))
        if problem:
            yield problem, ["group_by"]
    if not bad_key and not PLACEHOLDER.search(rb.group_by):
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
            yield from _step_params(step, ["steps", i], registry, seen)
            if registry.get(step.actuator).destructive and step.approval.on_timeout is OnTimeout.APPROVE:
                yield (f"step {step.id!r}: a destructive actuator cannot be approved by timeout",
                       ["steps", i, "approval", "on_timeout"])
            if registry.get(step.actuator).destructive and step.approval.required is False:
                yield (f"step {step.id!r}: {step.actuator} is destructive and always requires approval",
                       ["steps", i, "approval", "required"])
        yield from _conditions(step.when, ["steps", i, "when"], seen, ("event", "incident", "steps"))
        seen.append(step.id)
    yield from _escalation(rb, registry, seen)
    yield from _outputs(rb, registry)


def _categories(rb: Runbook, matched: list[str]) -> Iterator[Problem]:
    """A trigger category that no decoder of the sources `trigger.source` names can produce never matches."""
    if not matched:
        return  # the source itself is reported
    tables = declared()
    produced = set().union(*(tables.get(s, set()) for s in matched))
    for k, category in enumerate(rb.trigger.category):
        if category in produced:
            continue
        elsewhere = [s for s, cats in tables.items() if category in cats]
        yield (f"trigger.category {category.value!r}: no decoder of {', '.join(matched)} produces it; they produce "
               f"{', '.join(sorted(c.value for c in produced)) or 'no category'} (produced by: "
               f"{', '.join(elsewhere) or 'no source'}; docs/threats.md)"), ["trigger", "category", k]


def _outputs(rb: Runbook, registry: Registry) -> Iterator[Problem]:
    """A step output read by a later step must be one its actuator declares (`example_outputs`)."""
    actuators = {s.id: s.actuator for s in rb.steps if s.actuator in registry}
    for i, step in enumerate(rb.steps):
        for ref, where in reads(step):
            parts = ref.split(".")
            if parts[0] != "steps" or len(parts) < 4 or parts[1] not in actuators:
                continue  # the path check reports these
            declared = registry.get(actuators[parts[1]]).example_outputs
            if parts[3] not in declared:
                yield (f"{ref}: {actuators[parts[1]]} has no output {parts[3]!r}; "
                       f"outputs: {', '.join(declared) or 'none'}", ["steps", i, *where])


ESCALATION_NAMESPACES = ("event", "incident", "failure")


def _escalation(rb: Runbook, registry: Registry, main: list[str]) -> Iterator[Problem]:
    """The runbook's `on_failure` steps: known, not destructive, ids apart from the steps', reading no step output."""
    seen: list[str] = []
    for i, step in enumerate(rb.on_failure):
        at: list[int | str] = ["on_failure", i]
        if step.id in seen or step.id in main:
            yield f"duplicate step id {step.id!r} (on_failure ids differ from each other and the steps')", [*at, "id"]
        seen.append(step.id)
        if step.actuator not in registry:
            yield f"unknown actuator {step.actuator!r}; valid choices: {', '.join(registry.names())}", [*at, "actuator"]
            continue
        if registry.get(step.actuator).destructive or step.approval.required:
            yield (f"on_failure step {step.id!r}: escalation runs unattended; {step.actuator} needs approval",
                   [*at, "actuator"])
        yield from _step_params(step, at, registry, [], ESCALATION_NAMESPACES)
        yield from _conditions(step.when, [*at, "when"], (), ESCALATION_NAMESPACES)


def escalation_problems(rb: Runbook, registry: Registry) -> Iterator[Problem]:
    """What is wrong with the runbook's `on_failure` steps (a service-wide default's: responder/catalog/defaults.py)."""
    return _escalation(rb, registry, [s.id for s in rb.steps])


def containment(rb: Runbook, registry: Registry) -> list[str]:
    """The runbook's steps that act on a resource (every actuator but those that only tell a human: `notifies`)."""
    return [s.id for s in rb.steps if s.actuator not in registry or not registry.get(s.actuator).notifies]


def escalation_warnings(rb: Runbook, registry: Registry) -> Iterator[Problem]:
    """Valid but unsafe: containment steps whose failure would tell nobody (no `on_failure` block)."""
    acting = containment(rb, registry)
    if acting and not rb.on_failure:
        yield (f"steps {', '.join(acting)} contain, but the runbook has no on_failure escalation: "
               "unless the service sets default_on_failure, a failure reaches only the last resort, escalation.missed "
               "and the alert ResponderEscalationFailed (add on_failure: with a notify step)", ["steps"])
