"""Load playbooks: schema, then references (event files, injects, actuators, runbooks, world names, params, AWS
operations), of the whole playbook or of the parts that passed the schema (partial.py); each at file:line:col."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from responder.actuators.registry import Registry
from responder.catalog.yamlfile import locate, parse_yaml, read_source
from responder.errors import ConfigError, PlaybookError, RunbookError
from responder.models.runbook import Runbook
from responder.settings_keys import shared_keys
from responder.tabletop.decisions import problems as decision_problems
from responder.tabletop.escalation import scenario_runbooks
from responder.tabletop.eventfile import event_problem
from responder.tabletop.expectcheck import expectation_problems, step_names
from responder.tabletop.models import REF, Playbook, Signature
from responder.tabletop.operations import fault_problems
from responder.tabletop.partial import Omitted, Partial, passed_parts
from responder.tabletop.service_settings import uses_webhooks
from responder.tabletop.webhook import SIGNING_KEY_ID, SIGNING_SECRET

Loc = tuple[int | str, ...]
WHOLE = Omitted()  # the playbook passed its schema: nothing left out


def _refs(value: object) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("${"):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def reference_problems(pb: Playbook, base: Path, registry: Registry, runbooks: Sequence[Runbook] | None,
                       omitted: Omitted = WHOLE) -> Iterator[tuple[str, Loc]]:
    """What the schema cannot see: missing files, unknown injects, actuators, runbooks, steps, world names, params
    and AWS operations; `omitted`: what was left out of a playbook that failed its schema (partial.py)."""
    names = pb.world.names()
    injects = [i.id for i in pb.injects]
    books = {rb.id: rb for rb in runbooks} if runbooks is not None else None
    steps = step_names(list((books or {}).values()), escalations=True)
    for n, inject in enumerate(pb.injects):
        if refused := event_problem(base, inject.event):
            yield refused, ("injects", n, "event")
        signs = inject.transport == "kafka" and inject.signature != Signature.UNSIGNED
        if signs and not pb.settings.event_signing_keys:
            yield (f"signature {inject.signature.value!r} signs with the first event signing key, but settings."
                   "event_signing_keys is empty (the record would go out unsigned)"), ("injects", n, "signature")
        anchors = [*(i for i in injects if i != inject.id), *sorted(omitted.injects),  # left out: not checked
                   *(e.id for e in pb.expectations), *sorted(omitted.expectations)]
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
    yield from _key_problems(pb)
    yield from decision_problems(pb, base, runbooks, steps, whole=omitted.whole)
    yield from fault_problems(pb, registry)
    for n in range(len(pb.expectations)):
        yield from expectation_problems(n, pb, base, registry, books, omitted)


def _key_problems(pb: Playbook) -> Iterator[tuple[str, Loc]]:
    """The drill's service refuses an approval key sharing an id or a secret with an event signing key (the
    playbook's, or the webhook intake's `SIGNING_KEY_ID` when an inject is a webhook): found here, not mid-drill."""
    events = pb.settings.event_signing_keys | ({SIGNING_KEY_ID: SIGNING_SECRET} if uses_webhooks(pb) else {})
    unset = {} if "approval_keys" in pb.settings.model_fields_set else {"approval_keys": " (unset: its default)"}
    where = "event_signing_keys" if pb.settings.event_signing_keys else "approval_keys"
    for setting, why in shared_keys({k: SecretStr(v) for k, v in pb.settings.approval_keys.items()},
                                    {k: SecretStr(v) for k, v in events.items()}, {}, {}):
        webhook = f" (event_signing_keys holds the webhook intake's key {SIGNING_KEY_ID!r} too)" if uses_webhooks(pb) \
            else ""
        yield f"the drill would refuse settings.{setting}{unset.get(setting, '')}: {why}{webhook}", ("settings", where)


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
    except ValidationError as exc:  # and the reference problems of the parts that passed the schema
        schema = [_error(path, root, err["loc"], f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
                  for err in exc.errors()]
        part = passed_parts(data, exc.errors())
        return None, schema + (_references(path, root, part, registry, runbooks, default_on_failure) if part else [])
    problems = _references(path, root, Partial(pb, WHOLE), registry, runbooks, default_on_failure)
    return (pb if not problems else None), problems


def _references(path: Path, root: yaml.Node | None, part: Partial, registry: Registry,
                runbooks: Sequence[Runbook] | None,
                default_on_failure: Sequence[Mapping[str, Any]]) -> list[RunbookError]:
    pb = part.playbook
    books = scenario_runbooks(pb, runbooks, default_on_failure, registry)[0] if runbooks is not None else None
    problems: list[RunbookError] = []
    for reason, loc in reference_problems(pb, path.parent, registry, books, part.omitted):
        at = part.place(loc)
        problems.append(_error(path, root, at, f"{'.'.join(str(p) for p in at)}: {reason}"))
    if pb.id != path.stem and "id" not in part.omitted.header:
        problems.append(_error(path, root, ("id",), f"id {pb.id!r} must match the file name {path.stem!r}"))
    return problems


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
