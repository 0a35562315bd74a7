"""Decoder registry: recognise a record's shape and turn it into Events."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.errors import UnknownShape
from responder.models.event import Event

Detector = Callable[[Any], bool]
Decoder = Callable[[Any], list[Event]]


# attributes make_event adds to any event (`time_source: received` when the record's time was unusable)
COMMON_ATTRIBUTES = frozenset({"time_source"})


@dataclass(frozen=True)
class Format:
    """One record format: a name (`family` or `family.variant`), a shape test, a decoder, the Event
    `source` it produces and the `event.attributes` keys it may set (declared beside the decoder)."""

    name: str
    detect: Detector
    decode: Decoder
    source: str
    attributes: frozenset[str]

    @property
    def family(self) -> str:
        """The name before the first dot: `guardduty.eventbridge` → `guardduty`."""
        return self.name.split(".", 1)[0]


_FORMATS: dict[str, Format] = {}
_ORDER: list[tuple[Format, ...]] = [()]  # _FORMATS' values, kept as a tuple for `detect` (hot path)


@dataclass(frozen=True)
class Head:
    """A format's cheap partial decoder: builds only `fields` of the one Event its record yields, each equal to
    the full decoder's (tests/unit/test_prefilter.py), so the matcher can rule out every runbook before the rest
    is decoded. Raises whatever it likes on a record it cannot read: the full decoder then decides."""

    build: Callable[[Any], Event]
    fields: frozenset[str]


_HEADS: dict[str, Head] = {}
KEYED: dict[str, tuple[Callable[[Any], Hashable | None], Callable[[Any], Event], frozenset[str]]] = {}
"""Format name → its keyed head: (key, from_key, the fields from_key builds); see `keyed_head`."""


def head(name: str, fields: Iterable[str]) -> Callable[[Callable[[Any], Event]], Callable[[Any], Event]]:
    """Register `fn` as the head of format `name` (see `Head`)."""

    def wrap(fn: Callable[[Any], Event]) -> Callable[[Any], Event]:
        _HEADS[name] = Head(fn, frozenset(fields))
        return fn

    return wrap


def keyed_head(name: str, keyed: Iterable[str], from_key: Callable[[Any], Event],
               ) -> Callable[[Callable[[Any], Hashable | None]], Callable[[Any], Hashable | None]]:
    """Register `fn` as the key of format `name`'s keyed head: `fn(doc)` picks the few document values the `keyed`
    fields are built from (or None: then the `Head` decides), and `from_key(key)` builds exactly those fields
    from them alone, so that equal keys give equal partial events and the matcher can remember its verdict per
    key (`Matcher.verdict`). Like a `Head`, both raise on what they cannot read."""

    def wrap(fn: Callable[[Any], Hashable | None]) -> Callable[[Any], Hashable | None]:
        KEYED[name] = (fn, from_key, frozenset(keyed))
        return fn

    return wrap


def head_of(name: str) -> Head | None:
    """The head registered for format `name`, if any."""
    return _HEADS.get(name)


def decoder(name: str, detect: Detector, *, attributes: Iterable[str], source: str | None = None,
            ) -> Callable[[Decoder], Decoder]:
    """Register `fn` as the decoder of format `name`, chosen when `detect(doc)` is true.

    `attributes` names every `event.attributes` key the decoder can set (tests/unit/test_decoders.py checks the
    recorded examples against it); `source` is the Event source it produces (default: the family).
    """

    def wrap(fn: Decoder) -> Decoder:
        _FORMATS[name] = Format(name, detect, fn, source or name.split(".", 1)[0],
                                frozenset(attributes) | COMMON_ATTRIBUTES)
        _ORDER[0] = tuple(_FORMATS.values())
        return fn

    return wrap


def sources() -> list[str]:
    """Every Event source a registered decoder produces."""
    return sorted({f.source for f in _FORMATS.values()})


def attribute_names(source: str) -> frozenset[str]:
    """The `event.attributes` keys the decoders producing `source` declare (empty for an unknown source)."""
    return frozenset().union(*(f.attributes for f in _FORMATS.values() if f.source == source))


def formats() -> Mapping[str, Format]:
    """Registered formats, in detection order."""
    return dict(_FORMATS)


def known(name: str) -> bool:
    """Whether `name` is a registered format, family or event source: what `detect(only=...)` takes (valid in
    `topic_formats` and an intake source's `format`)."""
    return name in _FORMATS or any(name in (f.family, f.source) for f in _FORMATS.values())


def _first(doc: Any, candidates: Iterable[Format]) -> Format | None:
    for fmt in candidates:
        try:
            if fmt.detect(doc):
                return fmt
        except (KeyError, TypeError, AttributeError, IndexError):
            continue
    return None


def detect(doc: Any, only: str | None = None) -> Format:
    """The first format whose shape test accepts `doc`.

    With `only` (a format or family name, from `topic_formats`), detection is limited to that family, and to the
    formats whose events have that source (`ocsf` takes `securityhub.v2`, whose findings the OCSF decoder decodes:
    the pin still bounds the sources a topic can produce), and, failing that, the named format is forced.
    """
    if only is None:
        for fmt in _ORDER[0]:  # `_first`, inlined: this runs for every record
            try:
                if fmt.detect(doc):
                    return fmt
            except (KeyError, TypeError, AttributeError, IndexError):
                continue
        raise UnknownShape(f"unknown record shape; known formats: {', '.join(_FORMATS)}")
    family = [f for f in _FORMATS.values() if f.name == only or f.family == only or f.source == only]
    if not family:
        raise UnknownShape(f"format {only!r} is not registered; known formats: {', '.join(_FORMATS)}")
    return _first(doc, family) or _FORMATS.get(only) or family[-1]
