"""An ARN a step is given names its account in ASCII digits and its partition in ASCII letters: anything else is
refused as the parameter's validation error, before any AWS call (the account guard reads only ASCII accounts)."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from responder.actuators.aws.cloudtrail import TRAIL
from responder.actuators.aws.inference import FUNCTION
from responder.actuators.aws.kms import KEY_ID
from responder.actuators.aws.secrets import SECRET_ID

FULL_WIDTH = "１２３４５６７８９０１２"
CASES = [
    (SECRET_ID, "arn:aws:secretsmanager:us-east-1:{a}:secret:prod/db-AbCdEf"),
    (TRAIL, "arn:aws:cloudtrail:us-east-1:{a}:trail/management-events"),
    (FUNCTION, "arn:aws:lambda:us-east-1:{a}:function:inference-proxy"),
    (KEY_ID, "arn:aws:kms:us-east-1:{a}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
]


@pytest.mark.parametrize(("pattern", "arn"), CASES)
def test_an_arn_with_a_non_ascii_account_or_partition_is_refused(pattern: str, arn: str) -> None:
    """An ASCII ARN passes; full-width account digits or a non-ASCII partition letter fail the parameter's pattern."""
    adapter = TypeAdapter(Annotated[str, Field(pattern=pattern)])
    adapter.validate_python(arn.format(a="123456789012"))
    with pytest.raises(ValidationError):
        adapter.validate_python(arn.format(a=FULL_WIDTH))
    with pytest.raises(ValidationError):
        adapter.validate_python(arn.format(a="123456789012").replace("arn:aws:", "arn:awsé:"))
