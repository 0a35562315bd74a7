"""The values an event's fields take from a fixed set: the kinds of thing it names and its severity buckets.

responder/models/event.py re-exports both (`from responder.models.event import ResourceKind` keeps working);
responder/models/view.py reads them without importing the event, which imports the view.
"""

from __future__ import annotations

from enum import StrEnum


class ResourceKind(StrEnum):
    """The kinds of thing an event can name."""

    IAM_USER = "iam_user"
    IAM_ROLE = "iam_role"
    ACCESS_KEY = "access_key"
    INSTANCE = "instance"
    CONTAINER = "container"
    POD = "pod"
    HOST = "host"
    IP = "ip"
    TRAIL = "trail"
    BUCKET = "bucket"
    SECRET = "secret"  # noqa: S105  # nosec B105 # a resource kind, not a password
    KMS_KEY = "kms_key"
    MODEL = "model"
    MODEL_VERSION = "model_version"
    ENDPOINT = "endpoint"
    API_KEY = "api_key"
    FUNCTION = "function"
    ACCOUNT = "account"
    OTHER = "other"


class SeverityLabel(StrEnum):
    """Severity buckets on the 0-10 scale."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
