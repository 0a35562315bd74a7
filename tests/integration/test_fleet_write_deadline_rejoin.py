"""A fleet replica without transactions whose changelog write is not acknowledged within its deadline (the broker not
answering it) rejoins in-process and goes on serving, each alert acted on once, counted in moto: until 2026-12-07
`responder run` exited 3 on it, as on a bad setting, where the same outage with transactions rejoined."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.actuators.aws.session import AwsSession
from responder.ingest import changelog as changelog_module
from responder.ingest.changelog import Changelog
from responder.timeline.verify import verify_lines
from tests.integration.crash import effects
from tests.integration.rejoin_kit import one_replica, rejoined_once

pytestmark = pytest.mark.integration

DEADLINE_S = 2.0  # the changelog write deadline: short, so the test waits little for it


def _unanswered_once(monkeypatch: pytest.MonkeyPatch, armed: asyncio.Event, held: list[tuple[str, bool]]) -> None:
    """Once `armed` is set, the next changelog write is sent to a broker that never answers (its send waits for good,
    as aiokafka's resends to a partition without a leader do), so only the write's own deadline ends it; `held` gets
    (topic, whether the write carried an intent) of that write."""
    resending, write = changelog_module.resending, Changelog.write
    urgent: list[bool] = []

    async def writing(self: Changelog, *args: Any, **kwargs: Any) -> None:
        urgent.append(bool(kwargs.get("urgent")))
        await write(self, *args, **kwargs)

    async def unanswered(producer: Any, topic: str, send: Any) -> Any:
        if armed.is_set() and not held:
            held.append((topic, urgent[-1]))
            await asyncio.Event().wait()  # no acknowledgement, ever
        return await resending(producer, topic, send)

    monkeypatch.setattr(Changelog, "write", writing)
    monkeypatch.setattr(changelog_module, "resending", unanswered)


@pytest.mark.timeout(240)
async def test_a_write_past_its_deadline_rejoins_and_every_alert_acts_once(kafka_bootstrap, aws: AwsSession, unique,
                                                                           tmp_path, monkeypatch):
    """A changelog write past its deadline makes the replica rejoin with a new service, every alert acting once."""
    settings = await one_replica(kafka_bootstrap, aws, unique, tmp_path, kafka_transactions="off",
                                 changelog_write_deadline=DEADLINE_S)
    armed, held = asyncio.Event(), []
    _unanswered_once(monkeypatch, armed, held)
    # armed once the first service is ready (its restore written): the next write is the first alert's intent
    logs, built, first, later = await rejoined_once(settings, aws, f"effects-{unique}", arm=armed.set)
    assert held == [(settings.changelog_topic, True)], held  # the first alert's intent, held
    assert "changelog_write_deadline_passed" in [e["event"] for e in logs]
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["rejoin"]) for e in rejoining] == [("kafka_unreachable", 1)], rejoining
    assert "ChangelogWriteTimedOut" in rejoining[0]["error"]
    assert len(built) == 2
    counted = await effects(aws, f"effects-{unique}")
    assert (counted[first], counted[later]) == (1, 1), counted
    lines = (tmp_path / "timeline.jsonl").read_bytes().splitlines()
    assert verify_lines(lines).entries == len(lines)  # both services wrote one chain
