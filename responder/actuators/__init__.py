"""Actuators: the only place side effects happen. Importing this registers the built-ins."""

from responder.actuators import aws, model, notify
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import Registry, register, registry

__all__ = [
    "ActuationContext",
    "ActuationResult",
    "Actuator",
    "Params",
    "PlanPreview",
    "Registry",
    "aws",
    "model",
    "notify",
    "register",
    "registry",
]
