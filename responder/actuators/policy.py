"""The least-privilege IAM policy for a set of runbooks: exact actions of the actuators they use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from responder.actuators.registry import Registry
from responder.models.runbook import Runbook


def actuators_used(runbooks: Iterable[Runbook], registry: Registry, *, with_reverse: bool = True) -> list[str]:
    """Names of the actuators the runbooks call (and, for undo, their reverse actuators), sorted."""
    names = {step.actuator for rb in runbooks for step in rb.steps}
    if with_reverse:
        names |= {r for n in list(names) if (r := registry.get(n).reverse) is not None}
    return sorted(names)


def _sid(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", ".").split("."))


def minimal_policy(names: Iterable[str], registry: Registry) -> dict[str, Any]:
    """An IAM policy document with one statement per AWS actuator, listing only its exact actions.

    Resources are `*` because targets are bound from events at run time; the actions are never wildcards.
    Actuators that need no AWS permission (notify.*) add no statement.
    """
    statements = []
    for name in sorted(set(names)):
        actions = sorted(set(registry.get(name).permissions))
        if any("*" in a for a in actions):
            raise ValueError(f"{name} declares a wildcard action: {actions}")
        if actions:
            statements.append({"Sid": _sid(name), "Effect": "Allow", "Action": actions, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
