"""Temporary (ASIA…, STS) access keys are refused at parameter validation by the IAM access-key actuators."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from responder.actuators import registry
from responder.engine.resolution import Invalid, resolve_step
from responder.models.runbook import Step

TEMPORARY = "ASIAQWERTYUIOPASDFGH"
NAMES = ["aws.iam.deactivate_access_key", "aws.iam.activate_access_key", "aws.iam.delete_access_key",
         "aws.iam.rotate_access_key"]


@pytest.mark.parametrize("name", NAMES)
def test_a_temporary_key_is_refused_saying_what_to_do_instead(name):
    """An ASIA… key id fails validation naming STS and the session revocation a human should run instead."""
    raw = {"user_name": "ml-training", "access_key_id": TEMPORARY, "secret_name": "responder/iam/ml-training"}
    params = registry.get(name).params
    fields = {k: v for k, v in raw.items() if k in params.model_fields}
    with pytest.raises(ValidationError, match=r"temporary \(STS\) access key") as info:
        params.model_validate(fields)
    assert "aws.iam.revoke_sessions" in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_a_long_term_key_still_validates(name):
    """AKIA… key ids are accepted as before."""
    raw = {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_name": "responder/iam/x"}
    params = registry.get(name).params
    assert params.model_validate({k: v for k, v in raw.items() if k in params.model_fields})


def test_a_runbook_step_bound_to_a_temporary_key_is_invalid_not_retried():
    """Bound from an event, the step resolves as Invalid (a permanent failure that escalates), not as a call."""
    step = Step.model_validate({"id": "deactivate", "actuator": "aws.iam.deactivate_access_key", "retries": 3,
                                "with": {"user_name": "ml-training", "access_key_id": "${event.key}"}})
    resolved = resolve_step(step, {"event": {"key": TEMPORARY}}, registry)
    assert isinstance(resolved, Invalid)
    assert "temporary (STS) access key" in resolved.error
