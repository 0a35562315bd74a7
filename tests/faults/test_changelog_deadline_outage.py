"""A changelog write to a broker that stops answering for longer than the write's deadline fails at that deadline
(ChangelogWriteTimedOut), not once the broker answers again: the replica stops within the group's timeouts instead of
waiting for the broker past them (the embedded broker's process SIGSTOPped; responder/ingest/changelog.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from responder.engine.incidents import Incident
from responder.engine.snapshot import EngineSnapshot
from responder.errors_kafka import ChangelogWriteTimedOut
from responder.ingest.changelog import Changelog, ensure_changelog
from tests.faults.brokers import FAST, stopped_for

pytestmark = pytest.mark.integration

DEADLINE_S = 2.0  # a few request timeouts (FAST): at least one resend before it passes
OUTAGE_S = 6.0


async def test_a_changelog_write_to_a_stopped_broker_fails_at_its_deadline(broker, unique):
    """A changelog write to a broker stopped for 6 s raises ChangelogWriteTimedOut at its 2 s deadline."""
    topic = f"changelog-{unique}"
    await ensure_changelog(broker.bootstrap, topic, 1)
    changelog = Changelog(broker.bootstrap, topic, options=FAST, write_deadline=DEADLINE_S)
    await changelog.start()
    at = datetime(2026, 12, 6, tzinfo=UTC)
    try:
        await changelog.write(0, {"i0": EngineSnapshot(incidents=[Incident("i0", "rb", "g0", at, at)])})
        outage = asyncio.create_task(stopped_for(broker, OUTAGE_S))
        await asyncio.sleep(0.2)
        with capture_logs() as logs, pytest.raises(ChangelogWriteTimedOut):
            await changelog.write(0, {"i1": EngineSnapshot(incidents=[Incident("i1", "rb", "g1", at, at)])})
        assert not outage.done()  # it failed at its deadline, while the broker was still stopped
        assert "changelog_write_deadline_passed" in [e["event"] for e in logs]
        await outage
    finally:
        await changelog.stop()
