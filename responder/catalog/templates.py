"""Malformed `${…}` placeholders in runbook values, refused at load with the nearest valid placeholder.

Templating (responder/engine/templating.py) substitutes only well-formed `${namespace.path}`; anything else
that starts with `${` (`${event.actor }`, `${ event.actor}`, `${event.actor`) stays literal text, and a parameter
with no pattern would hand that text to the actuator. There is no escape syntax: a `$` not followed by `{` is
plain text, and `$${event.actor}` is a `$` before a placeholder.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from difflib import get_close_matches
from typing import Any

from responder.engine.templating import PLACEHOLDER
from responder.models.event import Event, ResourceKind
from responder.rules.paths import FAILURE_FIELDS, INCIDENT_FIELDS, path_problem

OPEN = "${"
SHOWN = 60
"""The longest malformed placeholder quoted in an error."""


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the valid name closest to `name`, or "" when none is close."""
    close = get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def malformed(value: Any) -> list[str]:
    """Every `${…}` in `value` (recursively) that is not a well-formed placeholder, as written (up to its `}`)."""
    if isinstance(value, Mapping):
        return [m for v in value.values() for m in malformed(v)]
    if isinstance(value, list | tuple):
        return [m for v in value for m in malformed(v)]
    out: list[str] = []
    start = value.find(OPEN) if isinstance(value, str) else -1
    while start >= 0:
        if not PLACEHOLDER.match(value, start):
            end = value.find("}", start)
            out.append(value[start:end + 1] if end >= 0 else value[start:])
        start = value.find(OPEN, start + len(OPEN))
    return out


def _paths(namespaces: Collection[str], earlier: Collection[str]) -> list[str]:
    """Placeholder paths a runbook value may name, at the depth a typo is usually made."""
    out: list[str] = []
    if "event" in namespaces:
        out += [f"event.{f}" for f in Event.model_fields if f != "raw"]
        out += [f"event.resource.{k.value}" for k in ResourceKind]
    if "incident" in namespaces:
        out += [f"incident.{f}" for f in INCIDENT_FIELDS]
    if "failure" in namespaces:
        out += [f"failure.{f}" for f in FAILURE_FIELDS]
    if "steps" in namespaces:
        out += [f"steps.{s}.result" for s in earlier]
    return out


def _nearest(written: str, namespaces: Collection[str], earlier: Collection[str]) -> str:
    inner = "".join(written.removeprefix(OPEN).removesuffix("}").split())
    if PLACEHOLDER.fullmatch(f"${{{inner}}}") and not path_problem(inner, earlier, namespaces):
        return f" (did you mean ${{{inner}}}?)"
    close = did_you_mean(inner, _paths(namespaces, earlier))
    return close.replace(" (did you mean '", " (did you mean ${").replace("'?)", "}?)")


def malformed_problems(value: Any, namespaces: Collection[str], earlier: Collection[str] = ()) -> Iterator[str]:
    """Why each malformed `${…}` in `value` is refused, with the nearest placeholder that resolves."""
    for written in malformed(value):
        shown = written if len(written) <= SHOWN else written[:SHOWN] + "…"
        yield (f"malformed placeholder {shown!r}: a placeholder is ${{namespace.path}}, no spaces, closed by }} "
               f"(it would stay literal text){_nearest(written, namespaces, earlier)}")
