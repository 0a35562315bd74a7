"""How botocore errors are classified for the retry policy: every throttling code botocore knows is transient."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from responder.actuators.aws.session import classify
from responder.errors import PermanentActuationError, TransientActuationError

QUOTA = "LimitExceededException"  # botocore retries it; here only as a 429 (see session.TRANSIENT_CODES)
BOTOCORE_RETRYABLE = sorted({*ThrottledRetryableChecker._THROTTLED_ERROR_CODES,
                             *TransientRetryableChecker._TRANSIENT_ERROR_CODES} - {QUOTA})


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


def test_a_quota_limit_fails_at_once_but_a_rate_limit_is_retried():
    """LimitExceededException as a quota (Secrets Manager, KMS: 400) is permanent; as a rate limit (429) transient."""
    assert isinstance(classify(_error(QUOTA, 400)), PermanentActuationError)
    assert isinstance(classify(_error(QUOTA, 429)), TransientActuationError)
