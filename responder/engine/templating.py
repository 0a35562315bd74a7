"""Safe templating: `${namespace.path}` lookups only. No expressions, no Jinja, no eval.

A value that is exactly one placeholder becomes the typed value found at that path. A placeholder
inside other text is replaced by the found value's text, once: the result is never scanned again,
so `${…}`, `{{…}}` or shell metacharacters arriving in an event stay inert data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from responder.errors import TemplateError
from responder.rules.conditions import Getter, getter, lookup
from responder.rules.operators import MISSING

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*)\}")
NAMESPACES = ("event", "incident", "steps", "failure")
__all__ = ["NAMESPACES", "PLACEHOLDER", "TemplateError", "placeholders", "render"]


def placeholders(value: Any) -> list[str]:
    """Every path named in `value` (recursively), for load-time checks."""
    if isinstance(value, str):
        return PLACEHOLDER.findall(value)
    if isinstance(value, Mapping):
        return [p for v in value.values() for p in placeholders(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in placeholders(v)]
    return []


@lru_cache(maxsize=4096)
def _whole(template: str) -> tuple[str, Getter | None] | None:
    """The path of a template that is exactly one placeholder, with its compiled reader when the path is in a
    namespace (templates come from runbooks: a bounded set)."""
    found = PLACEHOLDER.fullmatch(template)
    if not found:
        return None
    path = found.group(1)
    return path, getter(path) if _namespaced(path) else None


@lru_cache(maxsize=4096)
def _namespaced(path: str) -> bool:
    return path.split(".", 1)[0] in NAMESPACES


def _resolve(path: str, scope: Mapping[str, Any]) -> Any:
    if not _namespaced(path):
        raise TemplateError(f"${{{path}}}: paths start with one of {', '.join(NAMESPACES)}")
    found = lookup(scope, path)
    if found is MISSING or found is None:
        raise TemplateError(f"${{{path}}} is not set for this event")
    return found


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Bind placeholders in `value` from `scope` by path lookup."""
    if isinstance(value, str):
        whole = _whole(value)
        if whole is not None:
            path, get = whole
            if get is None:
                return _resolve(path, scope)  # raises: not a namespace
            found = get(scope)
            if found is MISSING or found is None:
                raise TemplateError(f"${{{path}}} is not set for this event")
            return found
        return PLACEHOLDER.sub(lambda m: str(_resolve(m.group(1), scope)), value)
    if isinstance(value, Mapping):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, scope) for v in value]
    return value
