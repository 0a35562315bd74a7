"""The one place an `ActuationContext` is built from settings (service, `responder undo`, `responder models`)."""

from __future__ import annotations

from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext, AwsCaller, Publisher
from responder.actuators.model.backends import config_from
from responder.settings import Settings


def context_from(settings: Settings, *, aws: AwsCaller | None = None,
                 publisher: Publisher | None = None) -> ActuationContext:
    """AWS (from settings unless given), the notify signing keys, the model registry config, and a publisher."""
    return ActuationContext(aws=aws or AwsSession.from_settings(settings), publisher=publisher,
                            webhook_keys=settings.notify_secrets(), models=config_from(settings))
