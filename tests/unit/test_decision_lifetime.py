"""An approval decision is valid for at most `approval_decision_max_lifetime` seconds from now, however far ahead its
`issued_at` is (up to the 5 minutes allowed); since 2026-12-07."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from responder.auth import ApproverKeys
from responder.engine.approvals import check_identity
from responder.errors import ApprovalRefused
from responder.models.approval import ApprovalDecision

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
KEYS = ApproverKeys({"k": "x" * 32}, identities={"k": "alice"}, max_lifetime=3600)


def _decision(issued: float, lasts: float) -> ApprovalDecision:
    at = NOW + timedelta(seconds=issued)
    return ApprovalDecision(incident="i", step="s", decision="approve", by="alice", digest="0" * 64,
                            issued_at=at, expires_at=at + timedelta(seconds=lasts))


def test_a_post_dated_decision_cannot_outlive_the_maximum_from_now():
    """Issued 299 s ahead with a 3600 s lifetime (valid 3899 s from now): refused for its lifetime."""
    with pytest.raises(ApprovalRefused, match="lifetime"):
        check_identity(_decision(299, 3600), "k", KEYS, [], NOW)


@pytest.mark.parametrize(("issued", "lasts"), [(0, 3600), (299, 3301), (120, 900), (-600, 3600)])
def test_a_decision_expiring_within_the_maximum_from_now_is_accepted(issued, lasts):
    """Any decision whose expiry is at most the maximum lifetime from now passes the lifetime check."""
    check_identity(_decision(issued, lasts), "k", KEYS, [], NOW)
