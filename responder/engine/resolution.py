"""Resolving a runbook step against one event's scope: whether its `when` holds, its actuator, its parameters rendered
and validated, and its target; or why not (`NotNow`, `Invalid`, with what it was meant to act on).

Nothing from the event is evaluated as code: parameters are rendered by responder/engine/templating.py. A step that
resolved is run by responder/engine/runner.py. A step whose parameters read an output an earlier step lost (its reply
was lost and no read gave it back: `outputs_lost`), or whose `when` has no answer without one (judged with three
values), is `Invalid`, naming both, so it fails and escalates instead of reading it as not set
(docs/engine.md#outputs-of-a-step-whose-reply-was-lost).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from responder.actuators.base import Actuator
from responder.actuators.registry import Registry
from responder.engine.templating import placeholders, render
from responder.errors import TemplateError
from responder.models.runbook import AnyOf, Condition, ConditionNode, NotOf, Step
from responder.rules.conditions import describe, first_failure, holds, leaves


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


def reads(step: Step) -> Iterator[tuple[str, Sequence[int | str]]]:
    """Every path a step reads (parameters and `when`), with where (relative to the step)."""
    for name, value in step.with_.items():
        for ref in placeholders(value):
            yield ref, ("with", name)
    for j, node in enumerate(step.when):
        for cond in leaves([node]):
            yield cond.field, ("when", j)


def _lost(steps: Any) -> dict[str, Collection[str]] | None:
    """The outputs lost by the earlier steps, by step id (`Incident.took_outputs`); None when none was."""
    found = None
    for sid, entry in (steps or {}).items():
        lost = entry.get("lost") if type(entry) is dict else None
        if lost:
            found = found or {}
            found[sid] = lost
    return found


def _lost_keys(path: str, lost: Mapping[str, Collection[str]]) -> tuple[str, list[str]] | None:
    """The step and the lost outputs `path` reads (an output of it, or its whole result), or None."""
    parts = path.split(".", 4)
    if len(parts) < 3 or parts[0] != "steps" or parts[2] != "result" or parts[1] not in lost:
        return None
    keys = list(lost[parts[1]])
    if len(parts) > 3:
        return (parts[1], [parts[3]]) if parts[3] in keys else None
    return parts[1], keys


def _lost_error(paths: list[str], lost: Mapping[str, Collection[str]]) -> str:
    """Why a step reading `paths` cannot resolve: each earlier step and the outputs of it that were lost."""
    by_step: dict[str, list[str]] = {}
    for path in paths:
        sid, keys = _lost_keys(path, lost) or ("", [])
        by_step.setdefault(sid, []).extend(k for k in keys if k not in by_step.get(sid, []))
    told = "; ".join(f"step {sid} acted, but its output{'s' if len(ks) > 1 else ''} {', '.join(map(repr, ks))} "
                     f"{'were' if len(ks) > 1 else 'was'} lost" for sid, ks in by_step.items())
    return (f"{told} (its reply was lost, or a crash came after it acted, and no read of the target gives it back): "
            f"{', '.join(paths)} cannot be read; check {', '.join(by_step)} by hand")


def _whole_exists(cond: Condition) -> bool:
    """An `exists` test on a step's whole result (`steps.<id>.result`): known for a step recorded ok, whatever it
    lost."""
    return cond.op == "exists" and cond.field.count(".") == 2


def _judged(node: ConditionNode, scope: Mapping[str, Any], lost: Mapping[str, Collection[str]]) -> bool | None:
    """Whether `node` holds whatever the lost outputs held (True, False), or None when that depends on one: a test
    reading a lost output is unknown, every other test is evaluated as usual (`holds`); `all` is false when a part is,
    true when every part is, `any` the mirror, `not` swaps true and false and keeps unknown."""
    if isinstance(node, Condition):
        return holds(node, scope) if _lost_keys(node.field, lost) is None or _whole_exists(node) else None
    if isinstance(node, NotOf):
        inner = _judged(node.not_, scope, lost)
        return None if inner is None else not inner
    decides = isinstance(node, AnyOf)  # the value that one part gives the whole: true for `any`, false for `all`
    parts = [_judged(n, scope, lost) for n in (node.any if isinstance(node, AnyOf) else node.all)]
    if decides in parts:
        return decides
    return None if None in parts else not decides


def _unreadable(step: Step, scope: Mapping[str, Any], lost: Mapping[str, Collection[str]]) -> NotNow | Invalid | None:
    """A step reading an output an earlier step lost: skipped when its `when` fails whatever the output held (a test
    that does not hold), failed naming the step and the outputs when the `when`'s answer depends on a lost output or
    a parameter reads one; never read as not set. None: the step's answer does not depend on a lost output."""
    def unknown(conds: Iterable[Condition]) -> list[str]:
        return [c.field for c in conds if not _whole_exists(c) and _lost_keys(c.field, lost) is not None]

    params = [path for path, where in reads(step) if where[0] == "with" and _lost_keys(path, lost) is not None]
    if not params and not unknown(leaves(step.when)):
        return None
    undecided: list[str] = []
    for node in step.when:  # a list of tests is an `all`: one that fails skips the step, unknown or not the rest
        judged = _judged(node, scope, lost)
        if judged is False:
            return NotNow(describe(node))
        if judged is None:
            undecided += unknown(leaves([node]))
    unreadable = list(dict.fromkeys(undecided + params))
    return Invalid(_lost_error(unreadable, lost), intended(step.with_, scope)) if unreadable else None


def resolve_step(step: Step, scope: Mapping[str, Any], registry: Registry) -> Resolved | NotNow | Invalid:
    """Bind a runbook step to one event's scope: its actuator, validated params and target."""
    lost = _lost(scope.get("steps"))
    if lost is not None and (unreadable := _unreadable(step, scope, lost)) is not None:
        return unreadable
    failed_when = first_failure(step.when, scope)
    if failed_when is not None:
        return NotNow(describe(failed_when))
    actuator = registry.get(step.actuator)
    try:
        params = actuator.params.model_validate(render(step.with_, scope))
    except (TemplateError, ValidationError) as exc:
        return Invalid(f"invalid parameters: {exc}", intended(step.with_, scope))
    return Resolved(actuator, params, actuator.target(params), params.model_dump(mode="json"))
