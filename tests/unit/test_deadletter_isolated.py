"""A dead letter that cannot be sent fails its chunk without cutting the chunk's other keys short: their tasks run
to their end (an actuator call under way completes and is recorded), the failed key handles nothing after its
record, then the chunk raises the send's error; a TimelineError still cancels the other keys at once, and so does a
cancellation from outside, after which the chunk raises the send's error, not the cancel
(responder/service/batches.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError

from responder.errors import TimelineError
from responder.exception_groups import only
from responder.ingest.flow import Flow
from responder.models.event import RawRecord
from responder.pipeline import Prepared
from responder.service import Service, batches
from responder.settings import Settings
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import BATCH_RUNBOOK

POISON, LATER, SLOW = "AKIAAAAAAAAAAAAAAA01", "AKIAAAAAAAAAAAAAAA02", "AKIABBBBBBBBBBBBBB01"
LANES = ["batch", "traced"]


class _SlowIam(FakeIam):
    """Deactivating SLOW waits until released; says whether that call completed or was cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = asyncio.Event(), asyncio.Event()
        self.slow_call: list[str] = []
        for key in (POISON, LATER, SLOW):
            self.add_key("ml-training", key)

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Dispatch one fake API call; the deactivation of SLOW suspends until `release`."""
        if operation == "update_access_key" and kwargs["AccessKeyId"] == SLOW:
            self.entered.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.slow_call.append("cancelled")
                raise
            self.slow_call.append("completed")
        return await super().call(service, operation, **kwargs)


class _Unpaused:
    """A consumer that flow control never needs to pause here."""

    def pause(self, partitions: Any) -> None:
        """Pause nothing."""

    def resume(self, partitions: Any) -> None:
        """Resume nothing."""


Served = tuple[Service, _SlowIam]


def _record(offset: int, key: str, value: bytes) -> RawRecord:
    return RawRecord(topic="a", partition=0, offset=offset, key=key.encode(), value=value)


def _finding(key_id: str) -> bytes:
    return envelope_bytes(guardduty_finding(key_id, finding_id=f"finding-{key_id}"))


def _chunk() -> dict[Any, list[RawRecord]]:
    """Key "a": a finding on POISON with an element of unknown shape (acted on, then dead-lettered), then a finding on
    LATER; key "b": a finding on SLOW."""
    partly_bad = b"[" + _finding(POISON) + b', {"unknown": "shape"}]'
    return {("a", 0): [_record(0, "a", partly_bad), _record(1, "b", _finding(SLOW)), _record(2, "a", _finding(LATER))]}


@contextlib.asynccontextmanager
async def _service(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, lane: str) -> AsyncIterator[Served]:
    """The service (unstarted) on a `_SlowIam`, closed after (SLOW's call released first)."""
    if lane == "traced":  # one task per key of RawRecords through `pipeline.handle`, as with a tracer installed
        monkeypatch.setattr(batches, "active", lambda: True)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                        kafka_commit_interval_ms=0)
    iam = _SlowIam()
    service = Service(settings, aws=iam, runbooks=[BATCH_RUNBOOK])
    try:
        yield service, iam
    finally:
        iam.release.set()
        await service.close_unstarted()
        service.recorder.close()


def _unsendable(service: Service, after: asyncio.Event) -> tuple[asyncio.Event, list[dict[Any, int]]]:
    """Dead letters fail, once `after` is set, as past the send deadline; returns the event set when one did, and the
    offsets committed."""
    failed = asyncio.Event()
    committed: list[dict[Any, int]] = []

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        await after.wait()
        failed.set()
        raise NodeNotReadyError("node 1")

    async def commit(offsets: dict[Any, int]) -> None:
        committed.append(dict(offsets))

    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    service.ingest.commit = commit  # type: ignore[method-assign]
    return failed, committed


def _unwritable(monkeypatch: pytest.MonkeyPatch, service: Service, key: bytes, after: asyncio.Event, *,
                grouped: bool = False) -> None:
    """The stage of a record with Kafka key `key` raises TimelineError once `after` is set (either lane); with
    `grouped`, inside an ExceptionGroup (as a task group within the stage would raise it)."""
    act, handle = service.pipeline.act, service.pipeline.handle

    async def unwritable(record: RawRecord) -> None:
        if record.key == key:
            await after.wait()
            if grouped:
                raise ExceptionGroup("a stage's task group", [TimelineError("disk full")])
            raise TimelineError("disk full")

    async def act_or_fail(item: Prepared) -> None:
        await unwritable(item.record)
        await act(item)

    async def handle_or_fail(record: RawRecord) -> list[Any]:
        await unwritable(record)
        return await handle(record)

    monkeypatch.setattr(service.pipeline, "act", act_or_fail)
    monkeypatch.setattr(service.pipeline, "handle", handle_or_fail)


async def _slow_result(service: Service) -> list[str]:
    """The statuses of SLOW's step results, once the recorder has written what it holds (as a stop does)."""
    await service.recorder.flush()
    return [str(e.body.get("status")) for e in service.recorder.entries()
            if e.kind == "step.result" and SLOW in str(e.body)]


@pytest.mark.parametrize("lane", LANES)
async def test_an_unsent_dead_letter_lets_the_other_keys_finish_then_fails_the_chunk(tmp_path, monkeypatch, lane):
    """An unsent dead letter lets the other key's AWS call finish and be written, then fails the chunk uncommitted."""
    async with _service(tmp_path, monkeypatch, lane) as (service, iam):
        failed, committed = _unsendable(service, iam.entered)  # key b is in its call
        chunk = asyncio.create_task(service._handle_batch(_chunk()))
        await failed.wait()
        iam.release.set()
        with pytest.raises(ExceptionGroup) as raised:
            await chunk
        assert only(raised.value, NodeNotReadyError) is not None  # the error leaves the chunk as before
        assert iam.slow_call == ["completed"]
        assert await _slow_result(service) == ["ok"]
        assert iam.keys[SLOW]["Status"] == "Inactive"
        assert iam.keys[POISON]["Status"] == "Inactive"  # its good finding acted before the dead letter
        assert iam.keys[LATER]["Status"] == "Active"  # key a's record after the one not dead-lettered
        assert committed == []
        assert service.unready() == "stopping"


@pytest.mark.parametrize("grouped", [False, True], ids=["bare", "in-a-group"])
@pytest.mark.parametrize("lane", LANES)
async def test_a_timeline_error_still_cancels_the_other_keys_at_once(tmp_path, monkeypatch, lane, grouped):
    """A TimelineError in one key's stage at once cancels the other key's AWS call and is raised; no dead letter."""
    async with _service(tmp_path, monkeypatch, lane) as (service, iam):
        sent: list[int] = []

        async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
            sent.append(record.offset)

        _unwritable(monkeypatch, service, b"a", iam.entered, grouped=grouped)
        service.ingest.deadletter = deadletter  # type: ignore[method-assign]
        with pytest.raises(ExceptionGroup) as raised:
            await service._handle_batch(_chunk())
        assert only(raised.value, TimelineError) is not None
        assert iam.slow_call == ["cancelled"]
        assert await _slow_result(service) == []
        assert sent == []
        assert service.unready() == "stopping"


async def test_a_stop_still_cancels_the_keys_a_failed_dead_letter_waits_for(tmp_path, monkeypatch):
    """A cancel from outside after a failed dead letter cancels the awaited calls and raises the send's error."""
    async with _service(tmp_path, monkeypatch, "batch") as (service, iam):
        failed, committed = _unsendable(service, iam.entered)  # key b is in its call
        chunk = asyncio.create_task(service._handle_batch(_chunk()))
        await failed.wait()
        chunk.cancel()
        with pytest.raises(ExceptionGroup) as raised:
            await chunk
        assert only(raised.value, NodeNotReadyError) is not None
        assert iam.slow_call == ["cancelled"]
        assert await _slow_result(service) == []
        assert committed == []
        assert service.unready() == "stopping"


async def test_a_stop_past_the_drain_deadline_ends_with_the_unsent_dead_letter(tmp_path, monkeypatch):
    """A stop's drain deadline passing after a failed dead letter cancels the lane and raises the send's error."""
    async with _service(tmp_path, monkeypatch, "batch") as (service, iam):
        failed, committed = _unsendable(service, iam.entered)  # key b is in its call
        flow = Flow(_Unpaused(), service._handle_batch, max_in_flight=1000, max_batch=10, slow_after=0,
                    drain_deadline=0)  # the lane awaits its chunk at once; the stop cancels it at once
        flow.submit(_chunk())
        await failed.wait()
        with pytest.raises(ExceptionGroup) as raised:
            await flow.close()
        assert only(raised.value, NodeNotReadyError) is not None
        assert iam.slow_call == ["cancelled"]
        assert committed == []


@pytest.mark.parametrize("lane", LANES)
async def test_a_timeline_error_after_an_unsent_dead_letter_is_raised_with_it(tmp_path, monkeypatch, lane):
    """A TimelineError after an unsent dead letter makes the chunk raise both errors together."""
    async with _service(tmp_path, monkeypatch, lane) as (service, iam):
        now = asyncio.Event()
        now.set()
        failed, committed = _unsendable(service, now)
        _unwritable(monkeypatch, service, b"b", failed)
        with pytest.raises(ExceptionGroup) as raised:
            await service._handle_batch(_chunk())
        assert sorted(type(e).__name__ for e in raised.value.exceptions) == ["NodeNotReadyError", "TimelineError"]
        assert iam.keys[LATER]["Status"] == "Active"
        assert committed == []
