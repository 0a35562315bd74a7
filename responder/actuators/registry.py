"""The actuator registry: names to self-describing actuators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from responder.actuators.base import Actuator
from responder.errors import UnknownActuatorError

A = TypeVar("A", bound=type[Actuator[Any]])


class Registry:
    """Actuators by name; lookups of unknown names list the valid ones."""

    def __init__(self) -> None:
        self._items: dict[str, Actuator[Any]] = {}

    def add(self, actuator: Actuator[Any]) -> None:
        """Register an instance under its name."""
        if actuator.name in self._items:
            raise ValueError(f"actuator {actuator.name!r} registered twice")
        self._items[actuator.name] = actuator

    def get(self, name: str) -> Actuator[Any]:
        """The actuator called `name`, or UnknownActuatorError naming the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownActuatorError(name, list(self._items)) from None

    def names(self) -> list[str]:
        """Sorted names."""
        return sorted(self._items)

    def __iter__(self) -> Iterator[Actuator[Any]]:
        return iter(self._items[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items


registry = Registry()


def register(cls: A) -> A:
    """Class decorator adding one instance of the actuator to the default registry."""
    registry.add(cls())
    return cls


def registered(names: Callable[[str], bool] | None = None) -> list[Actuator[Any]]:
    """Registered actuators, optionally filtered by name."""
    return [a for a in registry if names is None or names(a.name)]
