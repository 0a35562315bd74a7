"""The AWS operations a fault or kill can name: those of the AWS services the actuators call, by botocore's model.

A fault fires when botocore's `before-call` hook on the service's session sees its operation (faults.py compares
`model.name`, e.g. `UpdateAccessKey`, and `service_model.service_name`, e.g. `iam`): a name no such service has can
never fire, and the drill would test nothing. The services are read from the actuators' declared permissions
(`service:Action`, exact, as the actuator contract requires), the operation names from botocore's service model of
each: neither is a list kept by hand. A service's model is loaded only when a fault names it (EC2's takes ~0.5 s).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache

import botocore.session

from responder.actuators.registry import Registry
from responder.tabletop.models import AwsFault, KillFault, Playbook

Loc = tuple[int | str, ...]


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def services(registry: Registry) -> list[str]:
    """The AWS services the actuators call (their permissions' prefixes that botocore knows), sorted."""
    known = set(_session().get_available_services())
    return sorted({p.split(":", 1)[0] for a in registry for p in a.permissions} & known)


@cache
def operations(service: str) -> frozenset[str]:
    """Every operation name of an AWS service, as botocore's model (and so the `before-call` hook) spells it."""
    return frozenset(_session().get_service_model(service).operation_names)


def declared(registry: Registry, service: str) -> list[str]:
    """The operations of `service` the actuators declare a permission for (the calls a drill most likely makes)."""
    return sorted({p.split(":", 1)[1] for a in registry for p in a.permissions
                   if p.startswith(f"{service}:")} & operations(service))


def _hint(name: str, among: list[str], registry: Registry) -> str:
    """Close matches of `name` among the operations of the services `among`, and the calls declared in those."""
    by_op: dict[str, list[str]] = {}
    for service in among:
        for op in operations(service):
            by_op.setdefault(op, []).append(service)
    close = difflib.get_close_matches(name, list(by_op), n=3, cutoff=0.75)
    named = [f"{c!r} ({'/'.join(by_op[c])})" for c in close]
    mean = f"did you mean {' or '.join(named)}? " if close else ""
    near = sorted({s for c in close for s in by_op[c]}) or among
    calls = [f"{s}: {', '.join(ops)}" for s in near if (ops := declared(registry, s))]
    return f"{mean}the calls the actuators declare: {'; '.join(calls)}"


def _kill_problem(operation: str, registry: Registry) -> str | None:
    every = services(registry)
    likely = [s for s in every if f"{s}:{operation}" in {p for a in registry for p in a.permissions}]
    if any(operation in operations(s) for s in likely) or any(operation in operations(s) for s in every):
        return None  # the likely services first: most kills name a declared call, found without loading EC2's model
    return (f"kill_during: {operation!r} is no operation of the AWS services the actuators call ({', '.join(every)}), "
            f"so the kill could never happen; {_hint(operation, every, registry)}")


def fault_problems(pb: Playbook, registry: Registry) -> Iterator[tuple[str, Loc]]:
    """Each fault whose service or operation no actuator's AWS service has (it could never fire), with the choices."""
    for n, fault in enumerate(pb.faults):
        if isinstance(fault, KillFault):
            if fault.kill_during is not None and (problem := _kill_problem(fault.kill_during, registry)):
                yield problem, ("faults", n, "kill_during")
            continue
        yield from _aws_fault_problems(n, fault, registry)


def _aws_fault_problems(n: int, fault: AwsFault, registry: Registry) -> Iterator[tuple[str, Loc]]:
    every = services(registry)
    if fault.service not in every:
        close = difflib.get_close_matches(fault.service, every, n=1)
        mean = f"did you mean {close[0]!r}? " if close else ""
        yield (f"service {fault.service!r} is no AWS service the actuators call, so the fault could never fire; "
               f"{mean}choose from {every}"), ("faults", n, "service")
    elif fault.operation not in operations(fault.service):
        yield (f"operation {fault.operation!r} is no {fault.service} operation (botocore's model), so the fault "
               f"could never fire; {_hint(fault.operation, [fault.service], registry)}"), ("faults", n, "operation")
    if fault.end <= fault.start:
        yield (f"the fault's window t+{fault.start:g}s..t+{fault.end:g}s is empty (`end` must come after `start`), "
               "so it could never fire"), ("faults", n, "end")
