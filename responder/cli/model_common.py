"""What the `models` commands share: the actuation context."""

from __future__ import annotations

from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext
from responder.actuators.model import config_from
from responder.actuators.model.backends import CONFIG_EXTRA
from responder.settings import Settings


def context(settings: Settings) -> ActuationContext:
    """An actuation context with an AWS session and the model config from `settings`."""
    aws = AwsSession(region=settings.aws_region, endpoint_url=settings.aws_endpoint_url,
                     call_timeout=settings.aws_call_timeout, credentials=settings.aws_credentials())
    return ActuationContext(aws=aws, incident="", key="", extras={CONFIG_EXTRA: config_from(settings)})
