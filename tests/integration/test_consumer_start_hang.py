"""On Apache Kafka, a group consumer whose coordinator is never found (FindCoordinator answers
COORDINATOR_NOT_AVAILABLE, as while the leader of the group's `__consumer_offsets` partition is down): its start is
bounded and rebuilt until exit 75, and SIGTERM ends it; no aiokafka client is left unclosed
(responder/service/starts.py)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import CoordinatorNotAvailableError

from responder.ingest.coordinator import RebuildBudget
from responder.sandbox.fixtures import on_apache_kafka
from responder.service import Service, serve
from tests.integration.harness import all_closed, exhausted, make_settings, rebuilt, running, send_one, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]
kafka_bootstrap = on_apache_kafka()


@pytest.fixture
def lost() -> list[bool]:
    """Whether the alerts group's coordinator is lost (from the start, unless a test empties it)."""
    return [True]


@pytest.fixture
async def service(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch, lost) -> Service:
    """A service whose alerts group never finds its coordinator while `lost` (the other groups do)."""
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir)
    lookup = AIOKafkaClient.coordinator_lookup

    async def not_available(self: AIOKafkaClient, kind: Any, key: str) -> Any:
        if key == settings.group_id and lost:
            raise CoordinatorNotAvailableError
        return await lookup(self, kind, key)

    monkeypatch.setattr(AIOKafkaClient, "coordinator_lookup", not_available)
    return Service(settings, aws=aws)


@pytest.fixture
def unclosed() -> Iterator[Callable[[], list[str]]]:
    """A call that collects garbage and returns the `Unclosed …` warnings aiokafka gave so far for clients collected
    unclosed (the consumers a rebuild replaced among them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def said() -> list[str]:
            gc.collect()
            return [str(w.message) for w in caught if "Unclosed" in str(w.message)]

        yield said


async def test_a_first_start_that_never_finds_its_coordinator_is_rebuilt_until_exit_75(service, unclosed) -> None:
    """A timed-out alerts consumer start is rebuilt twice, then the service stops with ConsumerRebuildsExhausted."""
    service.start_timeout = lambda: 3.0  # type: ignore[method-assign]
    service.rebuild_budget = lambda: RebuildBudget(limit=2, backoff=0.0, backoff_max=0.0)  # type: ignore[method-assign]
    gave_up = await exhausted(service, 45)
    assert "the alerts consumer was rebuilt 2 times" in str(gave_up)
    assert "its start timed out again" in str(gave_up)
    assert rebuilt(service) == {"alerts": 2, "approvals": 0, "operator": 0}
    assert all_closed(service)
    assert unclosed() == []


async def test_sigterm_ends_a_start_that_never_finds_its_coordinator(service, unclosed) -> None:
    """SIGTERM during a first start's endless coordinator lookup stops the service cleanly within seconds."""
    running = asyncio.create_task(serve(service))
    await wait_for(lambda: service.unready() == "starting: joining the consumer group", 30)
    await asyncio.sleep(2)  # in aiokafka's wait for an assignment
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(running, 15)
    assert time.monotonic() - started < 10
    assert not service.ready.is_set()
    assert all_closed(service)
    assert rebuilt(service) == {"alerts": 0, "approvals": 0, "operator": 0}
    assert unclosed() == []


async def test_sigterm_ends_a_rebuilds_start_that_never_finds_its_coordinator(service, lost, monkeypatch,
                                                                             unclosed) -> None:
    """SIGTERM during a rebuilt consumer's endless coordinator lookup stops the service cleanly within seconds."""
    lost.clear()
    joined = GroupCoordinator._maybe_do_autocommit

    async def dies_once(self: GroupCoordinator, assignment: Any) -> Any:
        if self.group_id == service.settings.group_id and not lost:
            lost.append(True)
            raise RuntimeError("injected: the coordination task dies")
        return await joined(self, assignment)

    monkeypatch.setattr(GroupCoordinator, "_maybe_do_autocommit", dies_once)
    running = asyncio.create_task(serve(service))
    await wait_for(lambda: (service.unready() or "").startswith("rebuilding the alerts consumer"), 30)
    await asyncio.sleep(2)  # the rebuilt consumer in aiokafka's wait for an assignment
    assert (service.unready() or "").startswith("rebuilding the alerts consumer")
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(running, 15)
    assert time.monotonic() - started < 10
    assert all_closed(service)
    assert rebuilt(service) == {"alerts": 1, "approvals": 0, "operator": 0}
    assert unclosed() == []


async def test_a_joined_consumer_that_lost_its_coordinator_is_rebuilt_and_consumes_once_it_is_back(
        service, lost, kafka_bootstrap, topics) -> None:
    """A joined alerts consumer that lost its coordinator is rebuilt past the bound and commits once it is back."""
    lost.clear()
    service.start_timeout = lambda: 10.0  # type: ignore[method-assign]
    service.rebuild_budget = lambda: RebuildBudget(backoff=0.0, backoff_max=0.0)  # type: ignore[method-assign]
    async with running(service):
        lost.append(True)
        service.ingest.consumer._coordinator.coordinator_dead()  # as when a heartbeat's session expired
        await wait_for(lambda: rebuilt(service)["alerts"] >= 1, 40, what="the lost consumer was not rebuilt")
        lost.clear()
        before = service.ingest.commits
        await send_one(kafka_bootstrap, topics["alerts"], b'{"not": "an alert"}')
        await wait_for(lambda: service.ingest.commits > before and service.unready() is None, 60,
                       what="the rebuilt consumer did not commit the alert")
        assert rebuilt(service)["approvals"] == rebuilt(service)["operator"] == 0

