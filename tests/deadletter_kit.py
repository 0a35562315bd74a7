"""Dead letters that cannot be sent, without Kafka: a fake IAM whose deactivations of some keys wait until released, a
service (unstarted) on it, findings to put in a chunk, dead letters that fail (and commits recorded), stages that
raise TimelineError, and the step results a key got (tests/unit/test_deadletter_isolated.py and
tests/unit/test_deadletter_lanes.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError

from responder.errors import TimelineError
from responder.models.event import RawRecord
from responder.pipeline import Prepared
from responder.service import Service, batches
from responder.settings import Settings
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import BATCH_RUNBOOK

POISON, LATER, SLOW = "AKIAAAAAAAAAAAAAAA01", "AKIAAAAAAAAAAAAAAA02", "AKIABBBBBBBBBBBBBB01"
HELD, AFTER = "AKIACCCCCCCCCCCCCC01", "AKIACCCCCCCCCCCCCC02"  # another partition's keys
LANES = ["batch", "traced"]


class HeldIam(FakeIam):
    """Deactivating a key of `held` waits until its `release` is set; `held_calls` says whether each such call
    completed or was cancelled."""

    def __init__(self, held: tuple[str, ...] = (SLOW,)) -> None:
        super().__init__()
        self.entered = {key: asyncio.Event() for key in held}
        self.release = {key: asyncio.Event() for key in held}
        self.held_calls: dict[str, list[str]] = {key: [] for key in held}
        for key in (POISON, LATER, SLOW, HELD, AFTER):
            self.add_key("ml-training", key)

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Dispatch one fake API call; the deactivation of a held key suspends until released."""
        key = kwargs.get("AccessKeyId", "")
        if operation == "update_access_key" and key in self.release:
            self.entered[key].set()
            try:
                await self.release[key].wait()
            except asyncio.CancelledError:
                self.held_calls[key].append("cancelled")
                raise
            self.held_calls[key].append("completed")
        return await super().call(service, operation, **kwargs)


class Unpaused:
    """A consumer that flow control never needs to pause here."""

    def pause(self, partitions: Any) -> None:
        """Pause nothing."""

    def resume(self, partitions: Any) -> None:
        """Resume nothing."""


Served = tuple[Service, HeldIam]


def record(offset: int, key: str, value: bytes, partition: int = 0) -> RawRecord:
    """A record of topic "a"."""
    return RawRecord(topic="a", partition=partition, offset=offset, key=key.encode(), value=value)


def finding(key_id: str) -> bytes:
    """A GuardDuty finding on access key `key_id`."""
    return envelope_bytes(guardduty_finding(key_id, finding_id=f"finding-{key_id}"))


def partly_bad(key_id: str) -> bytes:
    """A finding on `key_id` (acted on) beside an element of unknown shape (then dead-lettered)."""
    return b"[" + finding(key_id) + b', {"unknown": "shape"}]'


@contextlib.asynccontextmanager
async def served(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, lane: str = "batch", *,
                 held: tuple[str, ...] = (SLOW,), **settings: Any) -> AsyncIterator[Served]:
    """The service (unstarted) on a `HeldIam`, committing at once unless `settings` say otherwise, closed after (every
    held call released first)."""
    if lane == "traced":  # one task per key of RawRecords through `pipeline.handle`, as with a tracer installed
        monkeypatch.setattr(batches, "active", lambda: True)
    iam = HeldIam(held)
    service = Service(Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", topics=["a"],
                               **{"kafka_commit_interval_ms": 0, **settings}), aws=iam, runbooks=[BATCH_RUNBOOK])
    try:
        yield service, iam
    finally:
        for release in iam.release.values():
            release.set()
        await service.close_unstarted()
        service.recorder.close()


def unsendable(service: Service, after: asyncio.Event, error: Exception | None = None
               ) -> tuple[asyncio.Event, list[dict[Any, int]]]:
    """Dead letters fail, once `after` is set, as past the send deadline (or with `error`); returns the event set when
    one did, and the offsets committed."""
    failed = asyncio.Event()
    committed: list[dict[Any, int]] = []

    async def deadletter(record: RawRecord, reason: str, detail: str) -> None:
        await after.wait()
        failed.set()
        raise error or NodeNotReadyError("node 1")

    async def commit(offsets: dict[Any, int]) -> None:
        committed.append(dict(offsets))

    service.ingest.deadletter = deadletter  # type: ignore[method-assign]
    service.ingest.commit = commit  # type: ignore[method-assign]
    return failed, committed


def unwritable(monkeypatch: pytest.MonkeyPatch, service: Service, key: bytes, after: asyncio.Event, *,
               grouped: bool = False) -> None:
    """The stage of a record with Kafka key `key` raises TimelineError once `after` is set (either lane); with
    `grouped`, inside an ExceptionGroup (as a task group within the stage would raise it)."""
    act, handle = service.pipeline.act, service.pipeline.handle

    async def failing(record: RawRecord) -> None:
        if record.key == key:
            await after.wait()
            if grouped:
                raise ExceptionGroup("a stage's task group", [TimelineError("disk full")])
            raise TimelineError("disk full")

    async def act_or_fail(item: Prepared) -> None:
        await failing(item.record)
        await act(item)

    async def handle_or_fail(record: RawRecord) -> list[Any]:
        await failing(record)
        return await handle(record)

    monkeypatch.setattr(service.pipeline, "act", act_or_fail)
    monkeypatch.setattr(service.pipeline, "handle", handle_or_fail)


async def results_of(service: Service, key_id: str) -> list[str]:
    """The statuses of `key_id`'s step results, once the recorder has written what it holds (as a stop does)."""
    await service.recorder.flush()
    return [str(e.body.get("status")) for e in service.recorder.entries()
            if e.kind == "step.result" and key_id in str(e.body)]
