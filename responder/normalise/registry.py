"""Decoder registry: recognise a record's shape and turn it into Events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.errors import UnknownShape
from responder.models.event import Event

Detector = Callable[[Any], bool]
Decoder = Callable[[Any], list[Event]]


@dataclass(frozen=True)
class Format:
    """One record format: a name (`family` or `family.variant`), a shape test and a decoder."""

    name: str
    detect: Detector
    decode: Decoder

    @property
    def family(self) -> str:
        """The name before the first dot: `guardduty.eventbridge` → `guardduty`."""
        return self.name.split(".", 1)[0]


_FORMATS: dict[str, Format] = {}


def decoder(name: str, detect: Detector) -> Callable[[Decoder], Decoder]:
    """Register `fn` as the decoder of format `name`, chosen when `detect(doc)` is true."""

    def wrap(fn: Decoder) -> Decoder:
        _FORMATS[name] = Format(name, detect, fn)
        return fn

    return wrap


def formats() -> Mapping[str, Format]:
    """Registered formats, in detection order."""
    return dict(_FORMATS)


def known(name: str) -> bool:
    """Whether `name` is a registered format or family (valid in `topic_formats`)."""
    return name in _FORMATS or any(f.family == name for f in _FORMATS.values())


def _first(doc: Any, candidates: list[Format]) -> Format | None:
    for fmt in candidates:
        try:
            if fmt.detect(doc):
                return fmt
        except (KeyError, TypeError, AttributeError, IndexError):
            continue
    return None


def detect(doc: Any, only: str | None = None) -> Format:
    """The first format whose shape test accepts `doc`.

    With `only` (a format or family name, from `topic_formats`), detection is limited to that family and,
    failing that, the named format is forced.
    """
    if only is None:
        found = _first(doc, list(_FORMATS.values()))
        if found is None:
            raise UnknownShape(f"unknown record shape; known formats: {', '.join(_FORMATS)}")
        return found
    family = [f for f in _FORMATS.values() if f.name == only or f.family == only]
    if not family:
        raise UnknownShape(f"format {only!r} is not registered; known formats: {', '.join(_FORMATS)}")
    return _first(doc, family) or _FORMATS.get(only) or family[-1]
