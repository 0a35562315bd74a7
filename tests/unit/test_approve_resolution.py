"""`approve` by incident prefix in a fleet: the prefix is resolved against the local timeline and the fleet's
signed requests together, so it never silently picks the local incident when the operator meant another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import typer

from responder.cli import pending as cli_pending
from responder.engine.approvals import request_headers
from responder.models.approval import ApprovalRequest
from responder.models.event import RawRecord
from responder.settings import Settings
from responder.timeline.checkpoint import Signer, generate_keypair

PRIVATE, PUBLIC = generate_keypair()


def _published(incident: str, digest: str) -> RawRecord:
    request = ApprovalRequest(incident=incident, step="revoke", runbook="rb", actuator="aws.iam.deactivate_access_key",
                              target="AKIA1", params={}, digest=digest, reasons=["approval required"], approvers=[],
                              expires_at=datetime.now(UTC) + timedelta(hours=1), on_timeout="deny")
    value = orjson.dumps(request.model_dump(mode="json"))
    return RawRecord(topic="req", value=value, headers=tuple(request_headers(Signer.from_text(PRIVATE), value)))


@pytest.fixture
def on_kafka(monkeypatch: pytest.MonkeyPatch) -> list[RawRecord]:
    """What the requests topic holds (instead of a broker)."""
    records: list[RawRecord] = []
    monkeypatch.setattr(cli_pending, "_read", lambda settings, server, topics: [records])
    return records


def _settings() -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:9", timeline_verify_key=PUBLIC)


def test_a_prefix_matching_the_timeline_and_kafka_differently_is_refused(on_kafka):
    """`7f3a` matching 7f3a1… on this timeline and 7f3a9… on Kafka exits 3 naming both, instead of signing one."""
    on_kafka.append(_published("7f3a9-kafka", "b" * 64))
    with pytest.raises(typer.Exit) as exited:
        cli_pending.fleet_request(_settings(), "7f3a", "revoke", ["7f3a1-local"])
    assert exited.value.exit_code == 3


def test_a_unique_prefix_finds_the_request_on_kafka(on_kafka):
    """A prefix only the fleet's requests have resolves to that incident and its latest signed request."""
    on_kafka.append(_published("7f3a9-kafka", "b" * 64))
    incident, request, _ = cli_pending.fleet_request(_settings(), "7f3a", "revoke", ["0000-local"])
    assert incident == "7f3a9-kafka"
    assert request is not None
    assert request.digest == "b" * 64


def test_an_unsigned_request_is_not_a_candidate(on_kafka):
    """With the replicas' public key configured, an unsigned request on the topic is neither matched nor used."""
    forged = _published("7f3a9-kafka", "b" * 64).model_copy(update={"headers": ()})
    on_kafka.append(forged)
    incident, request, where = cli_pending.fleet_request(_settings(), "7f3a", "revoke", [])
    assert (incident, request) == ("7f3a", None)
    assert "1 record(s) there refused" in where
