"""Load runbooks from YAML (read by responder/catalog/yamlfile.py): validated, with file:line:column on every error."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from responder.actuators.registry import Registry
from responder.catalog.attributes import attribute_warnings
from responder.catalog.checks import escalation_warnings, runbook_problems
from responder.catalog.grouping import group_by_problems
from responder.catalog.yamlfile import MERGE, locate, parse_yaml, position, read_source, unquoted_time
from responder.errors import ConfigError, RunbookError
from responder.models.runbook import MAX_VERSION, Runbook

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
INT = "tag:yaml.org,2002:int"


def _value_of(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    """The node YAML gives `key` in a mapping: written there, else from its merge keys (`<<`: a later `<<` over an
    earlier one, the first mapping of a merged list over the next, as PyYAML's flatten_mapping)."""
    written: yaml.Node | None = next(
        (v for k, v in node.value if k.tag != MERGE and isinstance(k, yaml.ScalarNode) and k.value == key), None)
    if written is not None:
        return written
    for k, v in reversed(node.value):
        if k.tag != MERGE:
            continue
        for merged in v.value if isinstance(v, yaml.SequenceNode) else [v]:
            found = _value_of(merged, key) if isinstance(merged, yaml.MappingNode) else None
            if found is not None:
                return found
    return None


def version_problem(root: yaml.Node | None, text: str, read: object) -> tuple[str, int, int] | None:
    """Why the runbook's `version` is not written as a plain decimal integer (YAML reads `010` as 8, `1.10` as 1.1,
    `0x1f` as 31, `"2"` or `!!str 2` as text), merged in (`<<`) or not, with its line and column; None when it is,
    or is absent."""
    node = _value_of(root, "version") if isinstance(root, yaml.MappingNode) else None
    plain = (isinstance(node, yaml.ScalarNode) and node.style is None and node.tag == INT
             and _DECIMAL.fullmatch(node.value) is not None)
    if node is None or (plain and len(node.value) <= len(str(MAX_VERSION)) and int(node.value) <= MAX_VERSION):
        return None
    written = text[node.start_mark.index:node.end_mark.index].strip() or "(empty)"
    digits = node.value.replace("_", "") if isinstance(node, yaml.ScalarNode) else ""
    example = f"version: {_short(digits.lstrip('0') or '0')}" if digits.isascii() and digits.isdigit() else "version: 2"
    if plain:  # too large: no JSON reader of the timeline keeps it exact
        return (f"version: {_short(written)} is read as {_short(written)}, too large; write a plain decimal integer, "
                f"unquoted, at most {MAX_VERSION}, e.g. version: 2 (it is part of every idempotency key, and no "
                f"JSON reader keeps a larger integer exact)", *position(node))
    try:
        shown = repr(read)
    except ValueError:  # an int past Python's limit on int-to-text conversion (a 5000-digit octal)
        shown = "a number too long to show"
    return (f"version: {_short(written)} is read as {_short(shown)}; write a plain decimal integer, unquoted, e.g. "
            f"{example} (it is part of every idempotency key)", *position(node))


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[:most] + "…"


def check_runbook(path: Path, registry: Registry) -> tuple[Runbook | None, list[RunbookError]]:
    """Parse and check one file; every problem found, each with file:line:column."""
    try:
        text = read_source(path)
        root, data = parse_yaml(path, text)
    except RunbookError as exc:
        return None, [exc]
    if not isinstance(data, dict):
        return None, [RunbookError(str(path), "a runbook is a YAML mapping", 1, 1)]
    version = version_problem(root, text, data.get("version"))
    early = [RunbookError(str(path), *version)] if version else []
    when = unquoted_time(root)
    if when is not None:  # one error saying why, not pydantic's dozen about the condition's every form
        return None, [*early, RunbookError(str(path), f"value {when.value} is a date or time to YAML, not text: quote "
                                                      f"it, '{when.value}' (times compare as text)", *position(when))]
    try:
        rb = Runbook.model_validate(data)
    except ValidationError as exc:
        errors = early
        for err in exc.errors():
            if version and err["loc"][:1] == ("version",):
                continue  # said once, with what to write
            where = locate(root, err["loc"])
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(RunbookError(str(path), f"{loc}: {err['msg']}", *(where or (None, None))))
        return None, errors
    problems = early + [RunbookError(str(path), reason, *(locate(root, loc) or (None, None)))
                         for reason, loc in [*runbook_problems(rb, path.stem, registry), *group_by_problems(rb)]]
    return (rb if not problems else None), problems


def load_runbook(path: Path, registry: Registry) -> Runbook:
    """Parse and validate one runbook file; the first problem is raised as RunbookError."""
    rb, problems = check_runbook(path, registry)
    if problems:
        raise problems[0]
    if rb is None:  # check_runbook returns problems whenever it returns no runbook
        raise RunbookError(str(path), "not a runbook")
    return rb


def _files(directory: str | Path) -> list[Path]:
    base = Path(directory)
    if not base.is_dir():
        raise ConfigError(f"runbook directory {base} does not exist")
    return sorted([*base.rglob("*.yaml"), *base.rglob("*.yml")])


def check_directory(directory: str | Path, registry: Registry) -> tuple[list[Runbook], list[RunbookError]]:
    """Every runbook under `directory` and every problem in any of them (duplicate ids included)."""
    books: list[Runbook] = []
    errors: list[RunbookError] = []
    seen: dict[str, Path] = {}
    for path in _files(directory):
        rb, problems = check_runbook(path, registry)
        errors += problems
        if rb is None:
            continue
        if rb.id in seen:
            errors.append(RunbookError(str(path), f"duplicate runbook id {rb.id!r} (also in {seen[rb.id]})", 1, 1))
            continue
        seen[rb.id] = path
        books.append(rb)
    return books, errors


def load_runbooks(directory: str | Path, registry: Registry) -> list[Runbook]:
    """Every *.yaml under `directory`, sorted; the first problem is raised as RunbookError."""
    books, errors = check_directory(directory, registry)
    if errors:
        raise errors[0]
    return books


def runbook_warnings(directory: str | Path, registry: Registry, *, default_escalation: bool = False) \
        -> list[RunbookError]:
    """Warnings for valid runbooks, file:line:col: containment without `on_failure` escalation (none with
    `default_escalation`: the service's `default_on_failure` escalates for them), and `event.attributes.<name>` that
    no decoder of the trigger's sources declares."""
    out: list[RunbookError] = []
    for path in _files(directory):
        rb, _ = check_runbook(path, registry)
        if rb is None:
            continue
        root, _ = parse_yaml(path, read_source(path))
        escalation = [] if default_escalation else list(escalation_warnings(rb, registry))
        out += [RunbookError(str(path), reason, *(locate(root, loc) or (None, None)))
                for reason, loc in [*escalation, *attribute_warnings(rb)]]
    return out
