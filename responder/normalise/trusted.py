"""Building `Event` and `Resource` without pydantic's per-field validation, when cheap checks prove it needless.

Decoders build every value themselves (strings, enum members, aware datetimes, already-validated `Severity`
and `Threat` models), so full validation repeats work: it was over half of a GuardDuty record's decode time.
`resource()` and `event()` check exactly the constraints the models declare (types, lengths, awareness) and
build the instance directly (`models.event.built`); when any check fails they call the model's own
constructor instead, which raises the same `ValidationError` as before (a decoder error → dead letter).
Either way the result equals what validation builds: tests/unit/test_trusted_normalise.py compares both
paths over the corpus and over generated findings, with `validating()` forcing pydantic for the reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from responder.models.event import Event, Resource, ResourceKind, Severity, built
from responder.models.threat import Threat

_RESOURCE_FIELDS = frozenset(Resource.model_fields)
_EVENT_FIELDS = frozenset(Event.model_fields)
validating_now = False  # True within `validating()`: every build goes through pydantic (fast lanes step aside)


@contextmanager
def validating() -> Iterator[None]:
    """Within the block, build every Event and Resource through full pydantic validation (tests, benchmarks)."""
    global validating_now
    before, validating_now = validating_now, True
    try:
        yield
    finally:
        validating_now = before


def _str_keys(attributes: Any) -> bool:
    if type(attributes) is not dict:
        return False
    for k in attributes:  # noqa: SIM110 - a loop is cheaper than all(genexpr) for a handful of keys
        if type(k) is not str:
            return False
    return True


def resource(kind: ResourceKind, id: Any, name: Any = None, arn: Any = None,
             attributes: dict[str, Any] | None = None) -> Resource:
    """`Resource(kind=…, id=…, name=…, arn=…, attributes=…)`, every field given."""
    attrs = {} if attributes is None else attributes
    if (validating_now or type(kind) is not ResourceKind or type(id) is not str or not 0 < len(id) <= 2048
            or (name is not None and type(name) is not str) or (arn is not None and type(arn) is not str)
            or (attrs and not _str_keys(attrs)) or type(attrs) is not dict):
        return Resource(kind=kind, id=id, name=name, arn=arn, attributes=attrs)
    # pydantic copies the mapping too
    out: Resource = built(Resource, {"kind": kind, "id": id, "name": name, "arn": arn, "attributes": dict(attrs)},
                          set(_RESOURCE_FIELDS))
    return out


def _aware(value: Any) -> bool:
    return type(value) is datetime and value.utcoffset() is not None


def _resources_ok(resources: Any) -> bool:
    if type(resources) is not tuple:
        return False
    for r in resources:  # noqa: SIM110 - see _str_keys
        if type(r) is not Resource:
            return False
    return True


def event(values: dict[str, Any]) -> Event:
    """`Event(**values)`, where `values` names every field (what `assemble.make_event` passes)."""
    v = values
    if (validating_now or v.keys() != _EVENT_FIELDS
            or type(v["id"]) is not str or not v["id"] or type(v["source"]) is not str or not v["source"]
            or type(v["type"]) is not str or not v["type"] or type(v["incident_key"]) is not str
            or not v["incident_key"] or (v["account"] is not None and type(v["account"]) is not str)
            or (v["region"] is not None and type(v["region"]) is not str)
            or (v["cloud"] is not None and type(v["cloud"]) is not str)
            or (v["actor"] is not None and type(v["actor"]) is not str) or type(v["severity"]) is not Severity
            or not _aware(v["time"]) or not _resources_ok(v["resources"]) or not _str_keys(v["attributes"])
            or (v["threat"] is not None and type(v["threat"]) is not Threat)):
        return Event(**values)
    out: Event = built(Event, values, set(_EVENT_FIELDS))
    return out


def assembled(values: dict[str, Any]) -> Event:
    """`event(values)` for `assemble.make_event`'s dict, whose keys, type, account, region, actor and incident key
    are right by construction (non-empty type and key, str or None): only the values decoders pass are checked."""
    v = values
    if (validating_now or type(v["id"]) is not str or not v["id"] or type(v["source"]) is not str or not v["source"]
            or (v["cloud"] is not None and type(v["cloud"]) is not str) or type(v["severity"]) is not Severity
            or not _aware(v["time"]) or not _resources_ok(v["resources"]) or not _str_keys(v["attributes"])
            or (v["threat"] is not None and type(v["threat"]) is not Threat)):
        return event(values)
    out: Event = built(Event, values, set(_EVENT_FIELDS))
    return out


def head(values: dict[str, Any]) -> Event:
    """A partial Event holding only `values` (a format's head, see `registry.Head`): for the matcher's eyes only,
    never returned from the pipeline. Raises ValueError when a value is not what the full Event would hold."""
    for name in ("id", "source", "type", "incident_key"):
        if name in values and (type(values[name]) is not str or not values[name]):
            raise ValueError(f"head: {name} is not a non-empty string")
    if ("severity" in values and type(values["severity"]) is not Severity) or \
            ("time" in values and not _aware(values["time"])) or \
            ("threat" in values and values["threat"] is not None and type(values["threat"]) is not Threat) or \
            not values.keys() <= _EVENT_FIELDS:
        raise ValueError("head: a value does not have the Event field's type")
    out: Event = built(Event, values, set(values))
    return out
