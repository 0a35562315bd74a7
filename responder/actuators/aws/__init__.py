"""AWS actuators; boto3 is imported only below this package."""

from responder.actuators.aws import iam
from responder.actuators.aws.session import AwsSession

__all__ = ["AwsSession", "iam"]
