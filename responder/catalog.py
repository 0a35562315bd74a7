"""Load runbooks from YAML: validated, with file:line:column on every error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from responder.actuators.registry import Registry
from responder.engine.templating import NAMESPACES, placeholders
from responder.errors import ConfigError, RunbookError
from responder.models.runbook import AllOf, AnyOf, Condition, ConditionNode, NotOf, Runbook
from responder.rules.operators import validate_operand


def _locate(node: yaml.Node | None, loc: Sequence[int | str]) -> tuple[int, int] | None:
    """Line and column (1-based) of the YAML node at a pydantic error location."""
    best = node
    for part in loc:
        if isinstance(best, yaml.MappingNode):
            nxt = next((v for k, v in best.value if k.value == str(part)), None)
            if nxt is None:
                key = next((k for k, _ in best.value if k.value == str(part)), None)
                best = key if key is not None else best
                break
            best = nxt
        elif isinstance(best, yaml.SequenceNode) and isinstance(part, int) and part < len(best.value):
            best = best.value[part]
        else:
            continue
    if best is None:
        return None
    return best.start_mark.line + 1, best.start_mark.column + 1


def _walk_conditions(nodes: Iterable[ConditionNode]) -> Iterable[Condition]:
    for n in nodes:
        if isinstance(n, Condition):
            yield n
        elif isinstance(n, AllOf):
            yield from _walk_conditions(n.all)
        elif isinstance(n, AnyOf):
            yield from _walk_conditions(n.any)
        elif isinstance(n, NotOf):
            yield from _walk_conditions([n.not_])


def _check(rb: Runbook, path: Path, registry: Registry, root: yaml.Node | None) -> None:
    def fail(reason: str, loc: Sequence[int | str]) -> RunbookError:
        where = _locate(root, loc)
        return RunbookError(str(path), reason, *(where or (None, None)))

    if rb.id != path.stem:
        raise fail(f"id {rb.id!r} must equal the file name {path.stem!r}", ["id"])
    for cond in _walk_conditions(rb.trigger.conditions):
        problem = validate_operand(cond.op, cond.value)
        if problem:
            raise fail(problem, ["trigger", "conditions"])
    seen: set[str] = set()
    for i, step in enumerate(rb.steps):
        if step.id in seen:
            raise fail(f"duplicate step id {step.id!r}", ["steps", i, "id"])
        seen.add(step.id)
        if step.actuator not in registry:
            raise fail(
                f"unknown actuator {step.actuator!r}; valid choices: {', '.join(registry.names())}",
                ["steps", i, "actuator"],
            )
        for ref in placeholders(step.with_):
            root_ns = ref.split(".", 1)[0]
            if root_ns not in NAMESPACES:
                raise fail(f"${{{ref}}}: paths start with one of {', '.join(NAMESPACES)}", ["steps", i, "with"])
            if root_ns == "steps" and ref.split(".")[1:2] and ref.split(".")[1] not in seen - {step.id}:
                raise fail(f"${{{ref}}} names a step that does not run before {step.id!r}", ["steps", i, "with"])


def load_runbook(path: Path, registry: Registry) -> Runbook:
    """Parse and validate one runbook file."""
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise RunbookError(str(path), f"invalid YAML: {getattr(exc, 'problem', exc)}", line, col) from exc
    if not isinstance(data, dict):
        raise RunbookError(str(path), "a runbook is a YAML mapping", 1, 1)
    try:
        rb = Runbook.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _locate(root, err["loc"])
        loc = ".".join(str(p) for p in err["loc"])
        raise RunbookError(str(path), f"{loc}: {err['msg']}", *(where or (None, None))) from exc
    _check(rb, path, registry, root)
    return rb


def load_runbooks(directory: str | Path, registry: Registry) -> list[Runbook]:
    """Every *.yaml under `directory`, sorted; duplicate ids are an error."""
    base = Path(directory)
    if not base.is_dir():
        raise ConfigError(f"runbook directory {base} does not exist")
    out: list[Runbook] = []
    seen: dict[str, Path] = {}
    for path in sorted([*base.rglob("*.yaml"), *base.rglob("*.yml")]):
        rb = load_runbook(path, registry)
        if rb.id in seen:
            raise RunbookError(str(path), f"duplicate runbook id {rb.id!r} (also in {seen[rb.id]})", 1, 1)
        seen[rb.id] = path
        out.append(rb)
    return out
