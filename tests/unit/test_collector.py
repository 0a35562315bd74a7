"""The collector's idle collections: young generations in quiet moments, generation 2 left to CPython."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from responder import collector
from responder.ingest.flow import Flow
from responder.models.event import RawRecord
from responder.service import Service
from responder.settings import Settings
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import BATCH_RUNBOOK


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations collected while the test runs, with the service's thresholds and the collector on."""
    taken: list[int] = []
    thresholds, enabled = gc.get_threshold(), gc.isenabled()

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            taken.append(info["generation"])

    gc.set_threshold(*collector.THRESHOLDS)
    gc.enable()
    gc.collect()
    gc.callbacks.append(seen)
    try:
        yield taken
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


def young(n: int) -> list[list[int]]:
    """n new container objects, tracked by the collector."""
    return [[i] for i in range(n)]


def test_an_idle_moment_collects_generation_zero_once_enough_objects_wait(collections: list[int]) -> None:
    """Below IDLE_YOUNG pending objects nothing is collected; above it, generation 0 and nothing older."""
    gc.collect()
    collections.clear()
    kept = young(collector.IDLE_YOUNG // 2)
    assert collector.when_idle() is None
    kept += young(collector.IDLE_YOUNG)
    assert collector.when_idle() == 0
    assert collections == [0]
    assert gc.get_count()[0] < collector.IDLE_YOUNG
    assert kept


def test_generation_one_is_taken_when_due_and_generation_two_never(collections: list[int]) -> None:
    """Idle collections take generation 1 when it is due and stop before they would make generation 2 due."""
    gc.collect()
    collections.clear()
    kept = []
    for _ in range(collector.THRESHOLDS[1] * collector.THRESHOLDS[2]):
        kept.append(young(collector.IDLE_YOUNG))
        if collector.when_idle() is None:
            break
    assert 2 not in collections
    assert 0 in collections
    assert 1 in collections
    second = gc.get_count()[2]
    assert second + 1 >= collector.THRESHOLDS[2]  # stopped where CPython's own collection takes over


def test_a_disabled_collector_is_left_alone(collections: list[int]) -> None:
    """With the collector disabled (a test, a profiler), an idle moment collects nothing."""
    gc.disable()
    kept = young(collector.IDLE_YOUNG * 2)
    assert collector.when_idle() is None
    assert collections == []
    assert kept


class _Consumer:
    def pause(self, partitions: Any) -> None: ...

    def resume(self, partitions: Any) -> None: ...


async def test_flow_is_idle_only_with_no_chunk_in_hand_or_queued() -> None:
    """Flow.idle() is false from submit until the lane has handled its records; on_idle is called then, once."""
    handled: list[int] = []
    idle_calls: list[bool] = []

    async def handle(batch: dict[Any, list[RawRecord]]) -> None:
        handled.extend(len(rs) for rs in batch.values())
        assert not idle_calls  # not while a chunk is in hand

    flow = Flow(_Consumer(), handle, max_in_flight=100, max_batch=10, on_idle=lambda: idle_calls.append(flow.idle()))
    assert flow.idle()
    record = RawRecord(topic="t", partition=0, offset=0, key=None, value=b"{}", headers=(), timestamp_ms=0)
    flow.submit({"tp0": [record]})
    assert not flow.idle()
    for _ in range(100):  # the lane runs once the loop gets control, and ends a few steps after its handler
        if flow.idle():
            break
        await asyncio.sleep(0)
    assert handled == [1]
    assert flow.idle()
    assert idle_calls == [True]
    await flow.close()


def test_generation_zero_threshold_scales_with_the_chunk_within_its_bounds() -> None:
    """Generation 0 collects above PEAK_PER_RECORD objects per chunk record, between 50,000 and MOST_YOUNG."""
    assert collector.thresholds(10) == collector.THRESHOLDS
    assert collector.thresholds(2_000) == (collector.PEAK_PER_RECORD * 2_000, *collector.THRESHOLDS[1:])
    assert collector.thresholds(1_000_000) == (collector.MOST_YOUNG, *collector.THRESHOLDS[1:])


async def test_a_full_chunk_of_acting_records_sets_off_no_collection_inside_it(tmp_path: Any,
                                                                              collections: list[int]) -> None:
    """A full chunk of acting records is handled without a generation-0 collection inside it."""
    size = 600  # its peak is above the old fixed threshold of 50,000 objects
    iam = FakeIam()
    keys = [f"AKIA{i:016d}" for i in range(size)]
    for key in keys:
        iam.add_key("ml-training", key)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        max_batch=size)
    service = Service(settings, aws=iam, runbooks=[BATCH_RUNBOOK])

    async def commit(offsets: dict[Any, int]) -> None:
        """Nothing to commit to."""

    service.ingest.commit = commit  # type: ignore[method-assign]
    chunk = [RawRecord(topic="a", partition=0, offset=i, key=k.encode(), value=envelope_bytes(guardduty_finding(k)))
             for i, k in enumerate(keys)]
    gc.set_threshold(*collector.thresholds(settings.max_batch))
    gc.collect()
    collections.clear()
    await service._handle_batch({("a", 0): chunk})
    assert service.engine.actions == size
    assert collections == []
    await service.close_unstarted()
    service.recorder.close()
