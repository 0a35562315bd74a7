"""The event as the plain dict conditions and templates read (`Event.view()`), built from the fields.

What `event.model_dump(mode="json", exclude={"raw"})` gives, plus `resource`, the first resource of each kind, at
a fraction of the dump's cost (tests/unit/test_event_view.py holds the two equal over the corpus and generated
events). It imports no event (responder/models/event.py imports it): it reads an `Event`'s fields from its
`__dict__`, and the enumerations they take from responder/models/kinds.py.
"""

from __future__ import annotations

from datetime import datetime
from math import isfinite
from typing import Any

from pydantic import AwareDatetime, BaseModel, JsonValue, TypeAdapter
from pydantic_core import to_jsonable_python

from responder.models.kinds import ResourceKind, SeverityLabel
from responder.models.threat import ThreatCategory

_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_ORIGINAL: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)  # a JsonValue field keeps NaN and infinities (Any does not)
_SCALARS = frozenset((str, int, float, bool, type(None)))
_PLAIN = frozenset((str, int, bool, type(None)))
_STR = frozenset((str,))


def json_value(value: Any) -> Any:
    """`value` as `model_dump(mode="json")` gives a field typed Any: fresh dicts and lists of plain JSON walked here,
    anything else (enums, tuples, datetimes, non-str keys) by pydantic's own serializer; NaN and infinities as None.
    Conditions and placeholders read every value so (responder/rules/conditions.py `_leaf`), model or view."""
    cls = type(value)
    if cls is str or cls is int or cls is bool or value is None:
        return value
    if cls is dict:
        if _PLAIN.issuperset(map(type, value.values())) and _STR.issuperset(map(type, value)):
            return value.copy()  # the common case, checked and copied without a Python-level loop
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                return to_jsonable_python(value, inf_nan_mode="null")
            kind = type(item)
            out[key] = item if kind is str or kind is int or kind is bool or item is None else json_value(item)
        return out
    if cls is list:
        return [json_value(item) for item in value]
    if cls is float:
        return value if isfinite(value) else None
    return to_jsonable_python(value, inf_nan_mode="null")


_LAST_ISO: list[tuple[datetime | None, str]] = [(None, "")]  # the last datetime `iso_time` wrote, and its text


def iso_time(at: datetime) -> str:
    """`at.isoformat()`, remembered for the last datetime asked: an acting event's time is written in two entries and
    viewed once, and `isoformat` of an aware datetime costs ≈ 12k instructions (the memo ≈ 0.6k). By identity, not
    equality (12:00+00:00 equals 13:00+01:00, whose text differs), and the pair holds the datetime itself, so no
    other object can take its address while it is remembered; the pair is replaced in one assignment (no await, and
    a thread reads either pair whole)."""
    last = _LAST_ISO[0]
    if last[0] is at:
        return last[1]
    text = at.isoformat()
    _LAST_ISO[0] = (at, text)
    return text


def json_time(at: datetime) -> str:
    """A datetime as pydantic's JSON text: `isoformat`, with `Z` for UTC; pydantic's own for sub-minute offsets."""
    text = iso_time(at)
    if text.endswith("+00:00"):  # only a zero offset ends so (a sub-minute one ends in its seconds)
        return text[:-6] + "Z"
    if text[-6] in "+-" and text[-3] == ":":  # an offset in whole minutes: `+05:30`, as pydantic writes it
        return text
    return str(_TIME.dump_python(at, mode="json"))


_ENUM_TEXT: dict[Any, str] = {}  # enum member -> its value (`.value` is a descriptor call, 5x a dict lookup)


def event_view(event: BaseModel) -> dict[str, Any]:
    """What `event.model_dump(mode="json", exclude={"raw"})` gives for an `Event`, plus `resource`, the first resource
    of each kind, built from the fields directly (tests/unit/test_event_view.py holds the two equal)."""
    d = event.__dict__
    text = _ENUM_TEXT.get
    resources = []
    by_kind: dict[str, Any] = {}
    for res in d["resources"]:
        r = res.__dict__
        kind = text(r["kind"]) or json_value(r["kind"])
        attributes = r["attributes"]
        view = {"kind": kind, "id": r["id"], "name": r["name"], "arn": r["arn"],
                "attributes": json_value(attributes) if attributes else {}}
        resources.append(view)
        if kind not in by_kind:
            by_kind[kind] = view
    threat = d["threat"]
    if threat is not None:
        t = threat.__dict__
        threat = {"category": text(t["category"]) or json_value(t["category"]), "techniques": list(t["techniques"])}
    sev = d["severity"].__dict__
    score, original = sev["score"], sev["original"]
    return {
        "id": d["id"], "source": d["source"], "type": d["type"],
        "severity": {"score": score if type(score) is float else json_value(score),
                     "label": text(sev["label"]) or json_value(sev["label"]),
                     "original": original if type(original) in _SCALARS
                     else _ORIGINAL.dump_python(original, mode="json")},
        "time": json_time(d["time"]),
        "account": d["account"], "region": d["region"], "cloud": d["cloud"], "actor": d["actor"],
        "resources": resources, "incident_key": d["incident_key"], "attributes": json_value(d["attributes"]),
        "threat": threat, "resource": by_kind,
    }


_ENUM_TEXT.update((member, member.value) for enum in (ResourceKind, SeverityLabel, ThreatCategory) for member in enum)
