"""Decoder registry: recognise a record's shape and turn it into Events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from responder.errors import DecodeError
from responder.models.event import Event

Detector = Callable[[Any], bool]
Decoder = Callable[[Any], list[Event]]


@dataclass(frozen=True)
class Format:
    """One record format: a name, a shape test and a decoder."""

    name: str
    detect: Detector
    decode: Decoder


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


def detect(doc: Any) -> Format:
    """The first format whose shape test accepts `doc`."""
    for fmt in _FORMATS.values():
        try:
            if fmt.detect(doc):
                return fmt
        except (KeyError, TypeError, AttributeError):
            continue
    raise DecodeError(f"unknown record shape; known formats: {', '.join(_FORMATS)}")
