"""What the `models` commands share beyond cli/options.py: the actuation context."""

from __future__ import annotations

from responder.actuators.base import ActuationContext
from responder.actuators.context import context_from
from responder.settings import Settings


def context(settings: Settings) -> ActuationContext:
    """An actuation context with an AWS session and the model config from `settings`."""
    return context_from(settings)
