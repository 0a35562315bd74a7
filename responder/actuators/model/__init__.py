"""Model actuators: a signed-version registry (local, S3+SSM, SageMaker) and rollback to the last signed version."""

from responder.actuators.base import ModelConfig
from responder.actuators.model import quarantine, rollback, switch
from responder.actuators.model.backends import config_from, open_store
from responder.actuators.model.selection import Selection, select
from responder.actuators.model.signing import Reason, Verdict
from responder.actuators.model.versions import ModelStore, ModelVersion, Rejection

__all__ = [
    "ModelConfig",
    "ModelStore",
    "ModelVersion",
    "Reason",
    "Rejection",
    "Selection",
    "Verdict",
    "config_from",
    "open_store",
    "quarantine",
    "rollback",
    "select",
    "switch",
]
