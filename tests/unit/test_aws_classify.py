"""How botocore errors are classified for the retry policy: every throttling code botocore knows is transient."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from responder.actuators.aws.session import classify
from responder.errors import PermanentActuationError, TransientActuationError

BOTOCORE_RETRYABLE = sorted({*ThrottledRetryableChecker._THROTTLED_ERROR_CODES,
                             *TransientRetryableChecker._TRANSIENT_ERROR_CODES})


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("code", BOTOCORE_RETRYABLE)
def test_every_code_botocore_retries_is_transient(code):
    """A throttling or timeout code botocore's standard mode retries (EC2ThrottledException…) is retried here too."""
    assert isinstance(classify(_error(code)), TransientActuationError)


@pytest.mark.parametrize("code", ["AccessDenied", "NoSuchEntity", "LimitExceeded", "ValidationException"])
def test_refusals_stay_permanent(code):
    """AccessDenied, NoSuchEntity, IAM's two-key LimitExceeded and validation errors are never retried."""
    assert isinstance(classify(_error(code)), PermanentActuationError)
