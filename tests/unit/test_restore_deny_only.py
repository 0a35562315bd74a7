"""`aws.iam.restore_inline_policy` puts back only a deny policy: a document that could grant anything (an Allow, a
statement without an Effect) is refused at validation, so alert data a runbook binds to `document` cannot write a
responder-named policy that widens a principal's access."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from responder.actuators.registry import registry

RESTORE = "aws.iam.restore_inline_policy"
DENY = {"Sid": "ResponderQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}


def _params(document: Any) -> dict[str, Any]:
    return {"principal_type": "role", "principal_name": "app-worker", "policy_name": "responder-quarantine",
            "document": document}


@pytest.mark.parametrize("document", [
    None,
    {"Version": "2012-10-17", "Statement": [DENY]},
    {"Version": "2012-10-17", "Statement": DENY},
    {"Version": "2012-10-17", "Statement": [DENY, {**DENY, "Sid": "Other", "NotAction": "s3:GetObject"}]},
])
def test_a_deny_document_or_none_is_a_valid_restore(document: Any) -> None:
    """No document, or one whose every statement denies (as one statement or a list), validates."""
    assert registry.get(RESTORE).params.model_validate(_params(document)).document == document


@pytest.mark.parametrize("document", [
    {"Version": "2012-10-17", "Statement": [DENY, {"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": {"Effect": "allow", "Action": "iam:*", "Resource": "*"}},
    {"Version": "2012-10-17", "Statement": [{"Action": "*", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": ["Deny"]},
    {"Version": "2012-10-17", "Statement": []},
    {"Version": "2012-10-17"},
])
def test_a_document_that_could_grant_anything_is_refused(document: Any) -> None:
    """An Allow (any case), a statement without an Effect, no statements or a non-object statement is refused."""
    with pytest.raises(ValidationError, match="only a deny policy"):
        registry.get(RESTORE).params.model_validate(_params(document))
