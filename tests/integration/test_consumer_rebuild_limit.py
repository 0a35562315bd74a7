"""A consumer whose group coordinator dies after every join, on the real broker: rebuilt a bounded number of times,
then the service stops with ConsumerRebuildsExhausted (what `responder run` turns into exit 75)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator

from responder.ingest.coordinator import RebuildBudget
from responder.service import Service
from tests.integration.harness import exhausted, make_settings, rebuilt

pytestmark = pytest.mark.integration


async def test_an_alerts_coordinator_that_dies_after_each_join_stops_the_service(
        kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch) -> None:
    """With the alerts coordinator dying after each join, two rebuilds end in ConsumerRebuildsExhausted."""
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir)
    joined = GroupCoordinator._maybe_do_autocommit

    async def dies(self: GroupCoordinator, assignment: Any) -> Any:
        if self.group_id == settings.group_id:
            raise RuntimeError("injected: the coordination task dies")
        return await joined(self, assignment)

    monkeypatch.setattr(GroupCoordinator, "_maybe_do_autocommit", dies)
    service = Service(settings, aws=aws)
    service.rebuild_budget = lambda: RebuildBudget(limit=2, backoff=0.0, backoff_max=0.0)  # type: ignore[method-assign]
    said: list[str] = []

    async def watch() -> None:
        while True:
            if (why := service.unready()) is not None and why.startswith("rebuilding"):
                said.append(why)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        gave_up = await exhausted(service, 90)
    finally:
        watcher.cancel()
    assert "the alerts consumer was rebuilt 2 times" in str(gave_up)
    assert "RuntimeError" in str(gave_up)
    assert rebuilt(service) == {"alerts": 2, "approvals": 0, "operator": 0}
    assert any("rebuilding the alerts consumer" in why for why in said)
