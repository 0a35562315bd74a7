"""A runbook's or playbook's YAML read safely: UTF-8 only, bounded (aliases expanded at most MAX_NODES nodes), no
duplicate key, every error with its line and column, and a pydantic error's location mapped to its node."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from responder.errors import RunbookError


def locate(node: yaml.Node | None, loc: Sequence[int | str]) -> tuple[int, int] | None:
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


MAX_NODES = 100_000
"""The most YAML nodes a runbook may expand to, aliases followed (a large runbook has a few thousand)."""
MERGE = "tag:yaml.org,2002:merge"


def _size(node: yaml.Node, sizes: dict[int, int], path: Path) -> int:
    """Nodes under `node` with aliases expanded (memoised: an alias bomb costs its file size); raises on a
    duplicate mapping key (YAML keeps the last one silently) or an alias that contains itself."""
    known = sizes.get(id(node))
    if known is not None:
        if known < 0:
            raise RunbookError(str(path), "an alias refers to a node that contains it", *position(node))
        return known
    sizes[id(node)] = -1
    total = 1
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            if key.tag != MERGE and isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    raise RunbookError(str(path), f"duplicate key {key.value!r} (YAML would keep only the last)",
                                       *position(key))
                keys.add(key.value)
            total += _size(key, sizes, path) + _size(value, sizes, path)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_size(item, sizes, path) for item in node.value)
    if total > MAX_NODES:
        raise RunbookError(str(path), f"aliases expand to more than {MAX_NODES} YAML nodes", *position(node))
    sizes[id(node)] = total
    return total


def position(node: yaml.Node) -> tuple[int, int]:
    """Line and column (1-based) where `node` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _unconstructable(node: yaml.Node, seen: set[int] | None = None) -> yaml.Node | None:
    """The first scalar under `node` that SafeLoader resolves but cannot construct (its ValueError)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        try:
            yaml.SafeLoader("").construct_object(node)
        except ValueError:
            return node
        return None
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
    return next((bad for child in children if (bad := _unconstructable(child, seen)) is not None), None)


TIMESTAMP = "tag:yaml.org,2002:timestamp"


def unquoted_time(node: yaml.Node | None, seen: set[int] | None = None) -> yaml.ScalarNode | None:
    """The first condition value (`value:` beside `field:` and `op:`), or item of one, that YAML reads as a date or a
    timestamp (unquoted `2026-01-01T00:00:00Z`): no JSON value, so pydantic's errors about it would not say why."""
    seen = set() if seen is None else seen
    if node is None or id(node) in seen or isinstance(node, yaml.ScalarNode):
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        value = keys.get("value")
        if value is not None and "field" in keys and "op" in keys:
            items = value.value if isinstance(value, yaml.SequenceNode) else [value]
            bad = next((n for n in items if isinstance(n, yaml.ScalarNode) and n.tag == TIMESTAMP), None)
            if bad is not None:
                return bad
        children = [v for _, v in node.value]
    else:
        children = node.value
    return next((bad for child in children if (bad := unquoted_time(child, seen)) is not None), None)


def parse_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """The composed YAML (for locations) and its value; RunbookError with the line and column of what is wrong: a
    syntax error, a value that does not construct, a duplicate key, an alias bomb or an alias that contains itself."""
    root: yaml.Node | None = None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _size(root, {}, path)
        return root, yaml.safe_load(text)
    except ValueError as exc:  # a scalar that resolves but does not construct: `2024-13-45`, a 5000-digit int
        bad = _unconstructable(root) if root is not None else None
        where = position(bad) if bad is not None else (None, None)
        raise RunbookError(str(path), f"invalid YAML value: {str(exc)[:200]}", *where) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise RunbookError(str(path), f"invalid YAML: {getattr(exc, 'problem', exc)}", line, col) from exc


def read_source(path: Path) -> str:
    """The text of a runbook or playbook file; RunbookError (file, one line) when it is not UTF-8 or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RunbookError(str(path), f"not UTF-8 (byte {exc.start}): save the file as UTF-8") from exc
    except OSError as exc:
        raise RunbookError(str(path), f"cannot read: {exc.strerror or exc}") from exc
