"""Expectations checked at load: every name they hold must be one a result could carry, or they could never match.

An expectation that can never match FAILs loudly, except where it is a negation (`step_not_done`, `count: 0`): there
a mistyped step, actuator, parameter or world name passes whatever the service did. So each is checked against what
the drill has: the runbooks it runs, the actuators' parameter models (a step result's `params` are its actuator's
validated parameters, `model_dump`), the playbook's world, the step statuses the engine records, and the fields the
expectation's kind reads (one it does not read would be silently ignored; an explicit `null` is no value and is
accepted). A param's NAME is checked strictly; its VALUE only when it is clearly a mistyped world name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from responder.actuators.base import Actuator
from responder.actuators.registry import Registry
from responder.engine.guards import HARD_TRIPS
from responder.models.runbook import Runbook
from responder.models.step import StepStatus
from responder.tabletop.decisions import carried
from responder.tabletop.expectations import COMMON, READS, Expectation, ExpectKind, StateCheck
from responder.tabletop.grading import same_step
from responder.tabletop.models import Playbook
from responder.tabletop.partial import Omitted

Loc = tuple[int | str, ...]
NEAR = 0.8  # how close (difflib's ratio) a param value must be to a world name to be taken for a typo of it

CHECK_KIND = {
    StateCheck.KEY_INACTIVE: "keys", StateCheck.KEY_ACTIVE: "keys", StateCheck.INSTANCE_QUARANTINED: "instances",
    StateCheck.INSTANCE_NOT_QUARANTINED: "instances", StateCheck.INVOKE_DENIED: "endpoints",
    StateCheck.ENDPOINT_SERVING: "models", StateCheck.SECRET_ROTATED: "secrets", StateCheck.BUCKET_BLOCKED: "buckets",
    StateCheck.API_KEY_DISABLED: "api_keys", StateCheck.FUNCTION_THROTTLED: "functions",
    StateCheck.SESSIONS_REVOKED: "roles", StateCheck.VERSION_QUARANTINED: "models",
    StateCheck.TRAIL_LOGGING: "trails", StateCheck.BEDROCK_DENIED: "users",
}


def step_names(books: Sequence[Runbook], *, escalations: bool) -> set[str]:
    """The step ids a result can carry: each runbook step, and each escalation `<on_failure step>.<failed step>`;
    with `escalations` off, the `on_failure` step ids themselves instead (an expectation naming one matches every
    escalation it made)."""
    out: set[str] = set()
    for rb in books:
        out |= {s.id for s in rb.steps}
        for esc in rb.on_failure:
            out |= {f"{esc.id}.{s.id}" for s in rb.steps} if escalations else {esc.id}
    return out


def _step_problem(step: str, books: dict[str, Runbook], runbook: str | None) -> str | None:
    """Why an expectation's `step` could never match a result (None when it can)."""
    if runbook is not None and runbook in books:
        names = step_names([books[runbook]], escalations=True) | step_names([books[runbook]], escalations=False)
        return None if step in names else \
            f"step {step!r} is not a step of runbook {runbook!r}; choose from {sorted(names)}"
    every = list(books.values())
    mains = sorted(rb.id for rb in every if any(s.id == step for s in rb.steps))
    escalating = sorted(rb.id for rb in every if any(e.id == step for e in rb.on_failure))
    if mains and escalating:  # `step` alone would match either runbook's: the grade could not tell them apart
        return (f"step {step!r} is a step of {mains} and an on_failure step of {escalating}: name `runbook` to say "
                "which (or the escalation `<on_failure step>.<step>`)")
    if step in step_names(every, escalations=True) | step_names(every, escalations=False):
        return None
    return (f"step {step!r} is in no loaded runbook; choose from {sorted(step_names(every, escalations=False))} "
            "or an escalation `<on_failure step>.<step>`")


def _close(name: str, choices: Sequence[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=cutoff)
    return f"did you mean {close[0]!r}? " if close else ""


def _actuators(exp: Expectation, books: dict[str, Runbook] | None, registry: Registry) -> list[Actuator[Any]]:
    """The actuators a result the expectation matches could come from: its `actuator`; else those of the steps (and
    escalations) `step` names, in `runbook` or any; else every step of `runbook`; else any actuator."""
    if exp.actuator is not None:
        return [registry.get(exp.actuator)] if exp.actuator in registry else []  # an unknown one is reported
    if books is None or (exp.step is None and exp.runbook not in books):
        return list(registry)
    scope = [books[exp.runbook]] if exp.runbook in books else list(books.values())
    names = {s.actuator for rb in scope for s in rb.steps if same_step(exp.step, s.id)}
    names |= {e.actuator for rb in scope for e in rb.on_failure for s in rb.steps
              if same_step(exp.step, f"{e.id}.{s.id}")}
    return [registry.get(n) for n in sorted(names) if n in registry]


def _params_problems(exp: Expectation, at: Loc, pb: Playbook, base: Path, books: dict[str, Runbook] | None,
                     registry: Registry, whole: bool) -> Iterator[tuple[str, Loc]]:
    """A parameter no actuator the expectation can match has (it could never match a result), a `${...}` reference,
    and a value that is clearly a mistyped world name: not one, close to one (difflib), and found in no inject or
    runbook (`whole`: no inject was left out). Any other value is taken as written: a value can be built by a
    runbook template, so a value is never refused merely for being unknown."""
    actuators = _actuators(exp, books, registry)
    fields = sorted({f for a in actuators for f in a.params.model_fields})
    world = sorted({n for kind in pb.world.names().values() for n in kind} |
                   {v.version for m in pb.world.models for v in m.versions})
    for name, value in exp.params.items():
        if actuators and name not in fields:
            owners = ", ".join(a.name for a in actuators) if len(actuators) <= 3 else \
                f"any of {len(actuators)} actuators"
            yield (f"{name!r} is no parameter of {owners}, so it could never match; {_close(name, fields)}"
                   f"choose from {fields}"), (*at, "params", name)
        elif isinstance(value, str) and value.startswith("${"):
            yield (f"{value!r}: params are world names or literal values, never references (a world name is bound "
                   f"to its sandbox id); choose from {world}"), (*at, "params", name)
        elif whole and isinstance(value, str) and value not in world and (near := _close(value, world, NEAR)) and \
                not carried(value, pb, base, list(books.values()) if books is not None else None):
            yield (f"{name}: {value!r} is no world name but close to one, and no inject or runbook carries it, so it "
                   f"could never match; {near}choose from {world}"), (*at, "params", name)


def expectation_problems(exp_index: int, pb: Playbook, base: Path, registry: Registry,
                         books: dict[str, Runbook] | None, omitted: Omitted) -> Iterator[tuple[str, Loc]]:
    """What could keep one expectation from ever matching (or make it pass on nothing), each with its location;
    `omitted`: what a playbook that failed its schema left out (partial.py), never held against it."""
    exp = pb.expectations[exp_index]
    at: Loc = ("expectations", exp_index)
    names = pb.world.names()
    injects = [*(i.id for i in pb.injects), *sorted(omitted.injects)]
    for field in sorted(f for f in exp.model_fields_set - COMMON - READS[exp.kind] if getattr(exp, f) is not None):
        yield (f"a {exp.kind.value} expectation does not read `{field}` (it would be ignored); it reads "
               f"{sorted(READS[exp.kind])}"), (*at, field)
    if exp.after is not None and exp.after not in injects:
        yield f"after: {exp.after!r} is not an inject; choose from {injects}", (*at, "after")
    if exp.actuator is not None and exp.actuator not in registry:
        yield f"unknown actuator {exp.actuator!r}; choose from {', '.join(registry.names())}", (*at, "actuator")
    if books is not None and exp.runbook is not None and exp.runbook not in books:
        yield f"unknown runbook {exp.runbook!r}; choose from {sorted(books)}", (*at, "runbook")
    if books is not None and exp.step is not None and (problem := _step_problem(exp.step, books, exp.runbook)):
        yield problem, (*at, "step")
    if exp.status is not None and exp.status not in {s.value for s in StepStatus}:
        yield (f"status {exp.status!r} is no step status; {_close(exp.status, [s.value for s in StepStatus])}"
               f"choose from {[s.value for s in StepStatus]}"), (*at, "status")
    refused = (exp.kind == ExpectKind.GUARD_TRIPPED and str(exp.reason) in HARD_TRIPS) or \
        (exp.kind == ExpectKind.STEP_DONE and exp.status == "refused")
    if refused and exp.params:  # a hard trip refuses the step before any intent or approval request holds them
        yield ("`params` cannot be checked on a refused step (a protected resource or another account's refuses it "
               "before its params are recorded); name it by `step`, `actuator` or `runbook`"), (*at, "params")
    elif exp.kind in (ExpectKind.STEP_DONE, ExpectKind.STEP_NOT_DONE, ExpectKind.APPROVAL_REQUESTED,
                      ExpectKind.GUARD_TRIPPED):
        yield from _params_problems(exp, at, pb, base, books, registry, omitted.whole)
    if exp.check in (StateCheck.ENDPOINT_SERVING, StateCheck.VERSION_QUARANTINED):
        model = next((m for m in pb.world.models if m.name == exp.resource), None)
        versions = sorted(v.version for v in model.versions) if model is not None else []
        if exp.version is None:
            yield f"a {exp.check.value} check needs `version`; choose from {versions}", at
        elif model is not None and exp.version not in versions:
            yield f"model {exp.resource!r} has no version {exp.version!r}; choose from {versions}", (*at, "version")
    if exp.kind == ExpectKind.STATE and exp.check is not None and exp.resource is not None:
        kind = CHECK_KIND[exp.check]
        if exp.resource not in names[kind]:
            yield f"no {kind} named {exp.resource!r} in world; choose from {sorted(names[kind])}", (*at, "resource")
        if exp.role is not None and exp.role not in names["roles"]:
            yield f"no role named {exp.role!r} in world; choose from {sorted(names['roles'])}", (*at, "role")
    if [e.id for e in pb.expectations].count(exp.id) > 1:
        yield f"duplicate expectation id {exp.id!r}", (*at, "id")
