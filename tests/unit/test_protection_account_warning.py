"""Without `aws_account_id`, protected ids pinned to an account protect their names in every account: start-up warns,
naming the setting and the patterns, and still starts."""

from __future__ import annotations

from structlog.testing import capture_logs

from responder.models.runbook import Runbook
from responder.service.wiring import warn_account_unknown
from responder.settings import Settings

PINNED = "arn:aws:iam::123456789012:role/ResponderRole"


def _book(*ids: str) -> Runbook:
    return Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                   "guards": {"protected": {"ids": list(ids)}},
                                   "steps": [{"id": "s", "actuator": "notify.kafka.publish_message"}]})


def test_account_pinned_patterns_without_an_account_warn_naming_the_setting() -> None:
    """Pinned patterns of the settings and of a runbook are named, once, with RESPONDER_AWS_ACCOUNT_ID."""
    settings = Settings(protected_ids=[PINNED, "arn:aws:iam::*:role/Break*", "alias/prod-key"])
    with capture_logs() as logs:
        warn_account_unknown(settings, [_book("arn:aws:kms:us-east-1:210987654321:key/*", PINNED)])
    warned = [e for e in logs if e["event"] == "protected_ids_account_unknown"]
    assert len(warned) == 1
    assert warned[0]["log_level"] == "warning"
    assert warned[0]["setting"] == "RESPONDER_AWS_ACCOUNT_ID"
    assert warned[0]["patterns"] == ["arn:aws:iam::123456789012:role/ResponderRole",
                                     "arn:aws:kms:us-east-1:210987654321:key/*"]


def test_no_warning_with_the_account_set_or_nothing_pinned() -> None:
    """With `aws_account_id` set, or only unpinned patterns, nothing is logged."""
    with capture_logs() as logs:
        warn_account_unknown(Settings(protected_ids=[PINNED], aws_account_id="123456789012"), [])
        warn_account_unknown(Settings(protected_ids=["arn:aws:iam::*:role/X", "ResponderRole"]), [_book("x")])
    assert logs == []
