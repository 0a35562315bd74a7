"""Load playbooks: schema, then references (event files, injects, actuators, runbooks, world names), file:line:col."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from responder.actuators.registry import Registry
from responder.catalog.yamlfile import locate, parse_yaml, read_source
from responder.errors import ConfigError, PlaybookError, RunbookError
from responder.models.runbook import Runbook
from responder.tabletop.decisions import problems as decision_problems
from responder.tabletop.escalation import scenario_runbooks
from responder.tabletop.expectations import ExpectKind, StateCheck
from responder.tabletop.models import REF, Playbook, Signature

Loc = tuple[int | str, ...]

CHECK_KIND = {
    StateCheck.KEY_INACTIVE: "keys", StateCheck.KEY_ACTIVE: "keys", StateCheck.INSTANCE_QUARANTINED: "instances",
    StateCheck.INSTANCE_NOT_QUARANTINED: "instances", StateCheck.INVOKE_DENIED: "endpoints",
    StateCheck.ENDPOINT_SERVING: "models", StateCheck.SECRET_ROTATED: "secrets", StateCheck.BUCKET_BLOCKED: "buckets",
    StateCheck.API_KEY_DISABLED: "api_keys", StateCheck.FUNCTION_THROTTLED: "functions",
    StateCheck.SESSIONS_REVOKED: "roles", StateCheck.VERSION_QUARANTINED: "models",
    StateCheck.TRAIL_LOGGING: "trails", StateCheck.BEDROCK_DENIED: "users",
}


def _refs(value: object) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("${"):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def reference_problems(pb: Playbook, base: Path, registry: Registry,
                       runbooks: Sequence[Runbook] | None) -> Iterator[tuple[str, Loc]]:
    """What the schema cannot see: missing files, unknown injects, actuators, runbooks, steps and world names."""
    names = pb.world.names()
    injects = [i.id for i in pb.injects]
    books = {rb.id: rb for rb in runbooks} if runbooks is not None else None
    steps = step_names(list((books or {}).values()), escalations=True)
    for n, inject in enumerate(pb.injects):
        if not (base / inject.event).is_file():
            yield f"event file {inject.event!r} does not exist (relative to {base})", ("injects", n, "event")
        signs = inject.transport == "kafka" and inject.signature != Signature.UNSIGNED
        if signs and not pb.settings.event_signing_keys:
            yield (f"signature {inject.signature.value!r} signs with the first event signing key, but settings."
                   "event_signing_keys is empty (the record would go out unsigned)"), ("injects", n, "signature")
        anchors = [*(i for i in injects if i != inject.id), *(e.id for e in pb.expectations)]
        if inject.after is not None and inject.after not in anchors:
            yield (f"after: {inject.after!r} is neither an inject nor an expectation; choose from {anchors}",
                   ("injects", n, "after"))
        for path, value in [*inject.overrides.items(), *inject.vary.items()]:
            for ref in _refs(value):
                problem = _ref_problem(ref, names)
                if problem:
                    yield problem, ("injects", n, "overrides" if path in inject.overrides else "vary", path)
    if len(set(injects)) != len(injects):
        yield "inject ids must be unique", ("injects",)
    elif cycle := _cycle(pb):
        yield f"after: {' → '.join(cycle)} is a cycle (nothing in it could ever happen)", \
            ("injects", injects.index(cycle[0]), "after")
    yield from decision_problems(pb, base, runbooks, steps)
    for n in range(len(pb.expectations)):
        yield from _expectation_problems(exp_index=n, pb=pb, registry=registry, books=books, names=names)


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


def _cycle(pb: Playbook) -> list[str]:
    """A cycle of anchors, if any: an inject waits on its `after` (inject or expectation), an expectation's
    window on its `after` inject (default the first inject)."""
    first = pb.injects[0].id
    edges = {i.id: i.after for i in pb.injects} | {e.id: e.after or first for e in pb.expectations}
    for start in (i.id for i in pb.injects):
        path, node = [start], edges.get(start)
        while node is not None and node in edges:
            if node in path:
                return [*path[path.index(node):], node]
            path.append(node)
            node = edges[node]
    return []


def _ref_problem(ref: str, names: dict[str, set[str]]) -> str | None:
    match = REF.match(ref)
    if match is None:
        return f"{ref!r} is not a reference: use ${{now}}, ${{now_ms}} or ${{world.KIND.NAME}}"
    inner = match.group(1)
    if not inner.startswith("world."):
        return None
    _, kind, rest = inner.split(".", 2)
    if kind not in names:
        return f"{ref!r}: unknown world kind {kind!r}; choose from {sorted(names)}"
    name = rest.rsplit(".", 1)[0] if rest.endswith((".id", ".arn", ".name")) and rest not in names[kind] else rest
    if name not in names[kind]:
        return f"{ref!r}: no {kind} named {name!r} in world; choose from {sorted(names[kind])}"
    return None


def _expectation_problems(exp_index: int, pb: Playbook, registry: Registry, books: dict[str, Runbook] | None,
                          names: dict[str, set[str]]) -> Iterator[tuple[str, Loc]]:
    exp = pb.expectations[exp_index]
    at: Loc = ("expectations", exp_index)
    injects = [i.id for i in pb.injects]
    if exp.after is not None and exp.after not in injects:
        yield f"after: {exp.after!r} is not an inject; choose from {injects}", (*at, "after")
    if exp.actuator is not None and exp.actuator not in registry:
        yield f"unknown actuator {exp.actuator!r}; choose from {', '.join(registry.names())}", (*at, "actuator")
    if books is not None and exp.runbook is not None and exp.runbook not in books:
        yield f"unknown runbook {exp.runbook!r}; choose from {sorted(books)}", (*at, "runbook")
    if books is not None and exp.step is not None and (problem := _step_problem(exp.step, books, exp.runbook)):
        yield problem, (*at, "step")
    refused = (exp.kind == ExpectKind.GUARD_TRIPPED and bool(exp.reason) and str(exp.reason) in "protected") or \
        (exp.kind == ExpectKind.STEP_DONE and exp.status == "refused")
    if refused and exp.params:  # a hard trip refuses the step before any intent or approval request holds them
        yield ("`params` cannot be checked on a refused step (a protected resource refuses it before its params are "
               "recorded); name it by `step`, `actuator` or `runbook`"), (*at, "params")
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


def check_playbook(path: Path, registry: Registry, runbooks: Sequence[Runbook] | None = None,
                   default_on_failure: Sequence[Mapping[str, Any]] = ()) -> tuple[Playbook | None, list[RunbookError]]:
    """Parse and check one playbook; every problem found, each with file:line:column. `runbooks` as loaded, without
    the service's `default_on_failure`: the playbook's references are checked against the runbooks its drill runs
    (with that default, unless its `settings.default_on_failure` is `none`)."""
    try:
        root, data = parse_yaml(path, read_source(path))
    except RunbookError as exc:
        return None, [PlaybookError(exc.path, exc.reason, exc.line, exc.column)]
    if not isinstance(data, dict):
        return None, [PlaybookError(str(path), "a playbook is a YAML mapping", 1, 1)]
    try:
        pb = Playbook.model_validate(data)
    except ValidationError as exc:
        return None, [_error(path, root, err["loc"], f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
                      for err in exc.errors()]
    books = scenario_runbooks(pb, runbooks, default_on_failure, registry)[0] if runbooks is not None else None
    problems: list[RunbookError] = [_error(path, root, loc, f"{'.'.join(str(p) for p in loc)}: {reason}")
                for reason, loc in reference_problems(pb, path.parent, registry, books)]
    if pb.id != path.stem:
        problems.append(_error(path, root, ("id",), f"id {pb.id!r} must match the file name {path.stem!r}"))
    return (pb if not problems else None), problems


def _error(path: Path, root: yaml.Node | None, loc: Sequence[int | str], reason: str) -> PlaybookError:
    return PlaybookError(str(path), reason, *(locate(root, loc) or (None, None)))


def playbook_files(targets: Sequence[Path]) -> list[Path]:
    """The playbook files named, or found directly in the directories named (event files are not playbooks)."""
    files: list[Path] = []
    for target in targets:
        if target.is_dir():
            files += sorted(p for p in target.glob("*.yaml") if p.is_file())
        elif target.is_file():
            files.append(target)
        else:
            raise ConfigError(f"{target}: no such playbook file or directory")
    return files


def check_playbooks(
    targets: Sequence[Path], registry: Registry, runbooks: Sequence[Runbook] | None = None,
    default_on_failure: Sequence[Mapping[str, Any]] = (),
) -> tuple[list[tuple[Path, Playbook]], list[RunbookError]]:
    """Every playbook under `targets` and every problem in any of them (`check_playbook`)."""
    found: list[tuple[Path, Playbook]] = []
    errors: list[RunbookError] = []
    for path in playbook_files(targets):
        pb, problems = check_playbook(path, registry, runbooks, default_on_failure)
        errors += problems
        if pb is not None:
            found.append((path, pb))
    return found, errors
