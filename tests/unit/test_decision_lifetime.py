"""An approval decision is valid for at most `approval_decision_max_lifetime` seconds from now, however far ahead its
`issued_at` is (up to the 5 minutes allowed); since 2026-12-07."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from responder.auth import ApproverKeys
from responder.cli import app
from responder.cli.operator import decision_ttl
from responder.engine.approvals import check_identity
from responder.errors import ApprovalRefused, ConfigError
from responder.models.approval import ApprovalDecision
from responder.settings import Settings

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



@pytest.mark.parametrize(("ttl", "most"), [(3600.0, 3600.0), (3541.0, 3600.0), (60.0, 60.0)])
def test_a_ttl_not_below_the_maximum_lifetime_is_refused_naming_both(ttl, most):
    """A CLI ttl set above the maximum lifetime less its margin is a ConfigError naming both settings."""
    with pytest.raises(ConfigError, match=rf"TTL={ttl:g} is above RESPONDER_APPROVAL_DECISION_MAX_LIFETIME={most:g}"):
        decision_ttl(Settings(approval_decision_ttl=ttl, approval_decision_max_lifetime=most))


@pytest.mark.parametrize(("most", "ttl"), [(600.0, 540.0), (60.0, 54.0), (3600.0, 900.0)])
def test_a_default_ttl_is_lowered_below_a_short_maximum(most, ttl):
    """Left at its default, the CLI's ttl is at most the maximum less a minute (or a tenth); 3540 s set is kept."""
    assert decision_ttl(Settings(approval_decision_max_lifetime=most)) == ttl
    assert decision_ttl(Settings(approval_decision_ttl=3540.0)) == 3540.0


def test_approve_with_a_ttl_equal_to_the_maximum_exits_3_naming_both(monkeypatch):
    """`responder approve` with ttl = max lifetime: one line naming both settings, exit 3, before any Kafka call."""
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:1", "APPROVAL_KEYS": '{"k": "' + "x" * 32 + '"}',
                        "APPROVAL_DECISION_TTL": "3600", "APPROVAL_DECISION_MAX_LIFETIME": "3600"}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)
    result = CliRunner().invoke(app, ["approve", "inc", "s", "--by", "alice"])
    assert result.exit_code == 3
    assert "RESPONDER_APPROVAL_DECISION_MAX_LIFETIME=3600" in result.output
