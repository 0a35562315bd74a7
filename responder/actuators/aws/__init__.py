"""AWS actuators; boto3 is imported only below this package."""

from responder.actuators.aws import (
    bedrock,
    cloudtrail,
    ec2,
    ec2_forensics,
    ec2_restore,
    ec2_state,
    iam,
    iam_keys,
    iam_policies,
    iam_restore,
    inference,
    kms,
    s3,
    sagemaker,
    secrets,
)
from responder.actuators.aws.session import AwsSession

__all__ = [
    "AwsSession",
    "bedrock",
    "cloudtrail",
    "ec2",
    "ec2_forensics",
    "ec2_restore",
    "ec2_state",
    "iam",
    "iam_keys",
    "iam_policies",
    "iam_restore",
    "inference",
    "kms",
    "s3",
    "sagemaker",
    "secrets",
]
