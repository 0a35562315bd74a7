"""The actuator contract, checked: what every registered actuator must declare (walked by a meta-test)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from responder.actuators.base import Actuator, Params
from responder.actuators.registry import Registry

# provider.service.verb_object; the model actuators have no cloud service: model.verb_object (issue 6 names them)
NAME = re.compile(r"^(model\.|[a-z][a-z0-9]*\.[a-z][a-z0-9]*\.)[a-z][a-z0-9]*(_[a-z0-9]+)+$")
PERMISSION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")
PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
METHODS = ("target", "plan", "apply", "verify")


def examples(actuator: Actuator[Any]) -> list[dict[str, Any]]:
    """The YAML steps in the actuator's docstring after `Example::` (empty when there are none or they are bad)."""
    doc = inspect.getdoc(type(actuator)) or ""
    _, sep, tail = doc.partition("Example::")
    if not sep:
        return []
    try:
        steps = yaml.safe_load(tail)
    except yaml.YAMLError:
        return []
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


def _field_example(model: type[BaseModel], field: str) -> Any:
    info = model.model_fields.get(field)
    if info is None or not info.examples:
        return None
    return info.examples[0]


def bind_examples(model: type[BaseModel], with_: dict[str, Any]) -> dict[str, Any]:
    """`with_` with every `${…}` placeholder value replaced by the field's declared example."""
    out: dict[str, Any] = {}
    for key, value in with_.items():
        if isinstance(value, str) and PLACEHOLDER.search(value):
            out[key] = _field_example(model, key)
        else:
            out[key] = value
    return out


def _declared(cls: type, attr: str) -> bool:
    return any(attr in vars(k) for k in cls.__mro__ if k is not Actuator and k is not object)


def problems(actuator: Actuator[Any], registry: Registry) -> list[str]:
    """Everything the actuator fails to declare; empty when it honours the contract."""
    cls = type(actuator)
    out: list[str] = []
    name = getattr(actuator, "name", "")
    if not NAME.match(name):
        out.append(f"name {name!r} is not provider.service.verb_object")
    params = getattr(actuator, "params", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        out.append("params is not a Params model")
        return out
    if not _declared(cls, "permissions"):
        out.append("permissions not declared")
    perms = tuple(getattr(actuator, "permissions", ()))
    bad = [p for p in perms if not PERMISSION.match(p)]
    if bad:
        out.append(f"permissions must be exact service:Action (no wildcards): {bad}")
    if name.startswith("aws.") and not perms:
        out.append("an AWS actuator needs at least one IAM permission")
    if not isinstance(actuator.destructive, bool) or not _declared(cls, "destructive"):
        out.append("destructive flag not declared")
    if actuator.notifies is not False and (actuator.notifies is not True or perms or actuator.destructive):
        out.append("`notifies` skips the protected-id guard: only a bool on an actuator that needs no permission and "
                   "is not destructive")
    if actuator.reverse is None:
        if not actuator.irreversible.strip():
            out.append("no reverse actuator and no `irreversible` reason")
    elif actuator.reverse not in registry:
        out.append(f"reverse {actuator.reverse!r} is not registered")
    if unknown := sorted(set(actuator.not_identifiers) - set(params.model_fields)):
        out.append(f"not_identifiers names no parameter: {unknown}")
    for method in METHODS:
        if getattr(cls, method) is getattr(Actuator, method):
            out.append(f"{method}() not implemented")
    if "outputs=" in inspect.getsource(cls) and not cls.example_outputs:
        out.append("apply returns outputs but example_outputs declares none (a dry run plans later steps on them)")
    found = examples(actuator)
    if not found:
        out.append("docstring has no YAML step after 'Example::'")
    for step in found:
        if step.get("actuator") != name:
            out.append(f"docstring example names actuator {step.get('actuator')!r}")
        try:
            params.model_validate(bind_examples(params, dict(step.get("with") or {})))
        except ValidationError as exc:
            out.append(f"docstring example `with` does not validate: {exc.errors()[0]['msg']}")
    return out
