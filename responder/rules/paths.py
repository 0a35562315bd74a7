"""Static checks of dotted paths against the models they will read at run time.

`event.…` paths are walked through the Event model's fields (and `event.resource.<kind>`);
`incident.…` paths name the incident fields the engine binds; `steps.<id>.result.…` must name a
step that runs earlier. Free-form maps (`attributes`, step results) accept any key below them.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from responder.models.event import Event, Resource, ResourceKind

INCIDENT_FIELDS = ("id", "group_key", "runbook", "events", "recent_events")
FAILURE_FIELDS = ("step", "actuator", "target", "status", "error", "code")
NAMESPACES = ("event", "incident", "steps")
"""Where a runbook step reads; a runbook's `on_failure` steps also read `failure`."""


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _walk(model: type[BaseModel], parts: Sequence[str], where: str) -> str | None:
    if not parts:
        return None
    head, rest = parts[0], parts[1:]
    if model is Event and head == "resource":
        if not rest:
            return None
        kinds = [k.value for k in ResourceKind]
        if rest[0] not in kinds:
            return f"{where}.resource.{rest[0]}: unknown resource kind; valid: {', '.join(kinds)}"
        return _walk(Resource, rest[1:], f"{where}.resource.{rest[0]}")
    field = model.model_fields.get(head)
    if model is Event and head == "raw":
        return f"{where}.raw: the raw record is not readable by runbooks; use the normalised fields"
    if field is None:
        valid = sorted({*model.model_fields, *(["resource"] if model is Event else [])} - {"raw"})
        return f"{where}.{head}: not a field of {model.__name__}; valid: {', '.join(valid)}"
    return _walk_type(_unwrap(field.annotation), rest, f"{where}.{head}")


def _walk_type(annotation: Any, rest: Sequence[str], where: str) -> str | None:
    if not rest:
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _walk(annotation, rest, where)
    origin = get_origin(annotation)
    if origin is dict:
        return None
    if origin in (tuple, list):
        if not rest[0].isdigit():
            return f"{where}.{rest[0]}: a list is indexed by number ({where}.0…)"
        return _walk_type(_unwrap(get_args(annotation)[0]), rest[1:], f"{where}.{rest[0]}")
    if annotation is Any or str(annotation).endswith("JsonValue"):
        return None
    return f"{where}: is a single value; it has no field {rest[0]!r}"


def path_problem(
    path: str, earlier_steps: Collection[str] = (), namespaces: Collection[str] = NAMESPACES
) -> str | None:
    """Why `path` can never resolve, or None when it can."""
    parts = path.split(".")
    root = parts[0]
    if root not in namespaces:
        return f"{path}: paths start with one of {', '.join(namespaces)}"
    if root == "event":
        return _walk(Event, parts[1:], "event")
    if root == "failure":
        if len(parts) != 2 or parts[1] not in FAILURE_FIELDS:
            return f"{path}: failure fields are {', '.join(FAILURE_FIELDS)}"
        return None
    if root == "incident":
        if len(parts) != 2 or parts[1] not in INCIDENT_FIELDS:
            return f"{path}: incident fields are {', '.join(INCIDENT_FIELDS)}"
        return None
    if len(parts) < 3 or parts[2] != "result":
        return f"{path}: step outputs are read as steps.<id>.result.<name>"
    if parts[1] not in earlier_steps:
        return f"{path}: step {parts[1]!r} does not run before this one"
    return None


def _leaf(model: type[BaseModel], parts: Sequence[str]) -> Any:
    if not parts:
        return model
    head, rest = parts[0], parts[1:]
    if model is Event and head == "resource":
        return _leaf(Resource, rest[1:]) if rest else None
    field = model.model_fields.get(head)
    return None if field is None else _leaf_type(_unwrap(field.annotation), rest)


def _leaf_type(annotation: Any, rest: Sequence[str]) -> Any:
    if not rest:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _leaf(annotation, rest)
    if get_origin(annotation) in (tuple, list) and rest[0].isdigit():
        return _leaf_type(_unwrap(get_args(annotation)[0]), rest[1:])
    return None


def event_leaf(path: str) -> Any:
    """The type an `event.…` path reads (`str`, `float`, an enum, a model…), or None where it is free-form or not
    an event path (attributes, step results)."""
    parts = path.split(".")
    return _leaf(Event, parts[1:]) if parts[0] == "event" else None


def _choices(annotation: Any, where: str) -> list[str]:
    """The single-value paths just below `where`, which reads `annotation` (a model, a list or a map)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out: list[str] = []
        for name, field in annotation.model_fields.items():
            inner = _unwrap(field.annotation)
            if name == "raw" or inner is Any or str(inner).endswith("JsonValue"):
                continue  # free-form: not certainly one value
            below = _choices(inner, f"{where}.{name}")
            out += below or [f"{where}.{name}"]
        return out
    origin = get_origin(annotation)
    if origin is dict:
        return [f"{where}.<name>"]
    if origin in (tuple, list):
        return _choices(_unwrap(get_args(annotation)[0]), f"{where}.0") or [f"{where}.0"]
    return []


def not_single(path: str) -> list[str] | None:
    """For an `event.…` path that reads a whole object, list or map (not one value), the single-value paths below
    it; None when it reads one value (or a free-form one: an attribute, the source's own severity)."""
    if path == "event.resource":
        return [f"event.resource.{kind.value}.id" for kind in ResourceKind]
    leaf = event_leaf(path)
    if leaf is None:
        return None
    return sorted(_choices(leaf, path)) or None
