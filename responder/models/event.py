"""The normalised event: the only thing the rules layer sees."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from responder.models.kinds import ResourceKind, SeverityLabel
from responder.models.threat import Threat
from responder.models.view import event_view

__all__ = ["Event", "RawRecord", "Resource", "ResourceKind", "Severity", "SeverityLabel", "builder", "built",
           "label_for", "stable_id", "tuple_builder", "utc_now"]  # the two enums: models/kinds.py


def label_for(score: float) -> SeverityLabel:
    """Map a 0-10 score onto its label (GuardDuty's bands)."""
    if score >= 9.0:
        return SeverityLabel.CRITICAL
    if score >= 7.0:
        return SeverityLabel.HIGH
    if score >= 4.0:
        return SeverityLabel.MEDIUM
    if score >= 1.0:
        return SeverityLabel.LOW
    return SeverityLabel.INFO


class Severity(BaseModel):
    """Severity normalised to 0-10, keeping the source's own value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: float = Field(ge=0.0, le=10.0)
    label: SeverityLabel
    original: JsonValue = None

    @classmethod
    def of(cls, score: float, original: JsonValue = None) -> Severity:
        """Build a severity from a 0-10 score, clamped."""
        clamped = min(10.0, max(0.0, float(score)))
        return cls(score=clamped, label=label_for(clamped), original=original)


class Resource(BaseModel):
    """One thing an event names: a key, an instance, a model version…"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ResourceKind
    id: str = Field(min_length=1, max_length=2048)
    name: str | None = None
    arn: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Event(BaseModel):
    """A security or ML signal after normalisation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    severity: Severity
    time: AwareDatetime
    account: str | None = None
    region: str | None = None
    cloud: str | None = None
    actor: str | None = None
    resources: tuple[Resource, ...] = ()
    incident_key: str = Field(min_length=1)
    attributes: dict[str, Any] = Field(default_factory=dict)
    threat: Threat | None = None  # normalised category + ATT&CK/ATLAS ids (docs/threats.md)
    raw: Any = None  # the decoded record as received; already JSON, not re-validated

    def first(self, kind: ResourceKind) -> Resource | None:
        """The first resource of `kind`, or None."""
        return next((r for r in self.resources if r.kind == kind), None)

    def view(self) -> dict[str, Any]:
        """The event as the plain dict that conditions and templates read (raw excluded; computed once).

        Kept in the instance's `__dict__` under `_view`, as a `cached_property` would keep it, without the
        property's Python-level `__get__` and lock on the first read (once per event, on the acting path).
        """
        found: dict[str, Any] | None = self.__dict__.get("_view")
        if found is None:
            found = self.__dict__["_view"] = event_view(self)
        return found

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, without the cached view: a copy with new values (a clamped time) reads its own."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_view", None)
        return copied


_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__  # the slots' own setters: cheaper than four object.__setattr__ calls
_set_fields = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def built(cls: type[BaseModel], values: dict[str, Any], given: set[str]) -> Any:
    """An instance of `cls` from `values` that hold every field, already checked against the schema (what
    `model_construct` does, minus its per-field loop, about 10x cheaper): only for hot paths whose caller
    built or checked every value (the recorder's sealed entries, consumer records from aiokafka)."""
    obj = object.__new__(cls)
    _set_dict(obj, values)
    _set_fields(obj, given)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def builder(cls: type[BaseModel]) -> Callable[[dict[str, Any]], Any]:
    """`built(cls, values, {every field})` as one call, for a frozen model (decoders' fast lanes, which give every
    field). Every instance it builds shares one `__pydantic_fields_set__` (a set per instance was a sixth of the
    build): a frozen model never adds to it, and `model_copy` copies it before adding the updated names."""
    if not cls.model_config.get("frozen"):
        raise TypeError(f"builder: {cls.__name__} is not frozen")
    given, new = set(cls.model_fields), object.__new__

    def build(values: dict[str, Any]) -> Any:
        obj = new(cls)
        _set_dict(obj, values)
        _set_fields(obj, given)
        _set_extra(obj, None)
        _set_private(obj, None)
        return obj

    return build


def tuple_builder(cls: type[BaseModel]) -> Callable[[list[dict[str, Any]]], tuple[Any, ...]]:
    """`builder(cls)` over a list of values dicts, as a tuple: one call for a decoder's resources, not one each."""
    if not cls.model_config.get("frozen"):
        raise TypeError(f"tuple_builder: {cls.__name__} is not frozen")
    given, new = set(cls.model_fields), object.__new__

    def build(values: list[dict[str, Any]]) -> tuple[Any, ...]:
        out = []
        for one in values:
            obj = new(cls)
            _set_dict(obj, one)
            _set_fields(obj, given)
            _set_extra(obj, None)
            _set_private(obj, None)
            out.append(obj)
        return tuple(out)

    return build


def stable_id(*parts: str) -> str:
    """A short, stable id from the identifying parts of a record."""
    h = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return h[:32]


def utc_now() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)


class RawRecord(BaseModel):
    """One record as it came off a topic: bytes plus where it was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None
    unreadable: str | None = None  # the Kafka client could not parse it (responder/ingest/recordbatch.py): why

    def stamped(self) -> datetime | None:
        """The record's Kafka timestamp as a time; None when it has none (-1 or 0 from an old message format) or it
        is out of range: a producer sets it (CreateTime), in µs by mistake or to any int64, and the broker keeps it."""
        if not self.timestamp_ms or self.timestamp_ms < 0:
            return None
        try:
            return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        except (ValueError, OverflowError, OSError):  # a year past 9999
            return None

    def header(self, name: str) -> bytes | None:
        """The last header called `name`, or None."""
        found = None
        for k, v in self.headers:
            if k == name:
                found = v
        return found

