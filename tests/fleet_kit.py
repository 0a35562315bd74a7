"""Fleet mode without Kafka: kits as replicas writing a compacted changelog held in memory, findings sent as records
of a partition, a quota's runs counted, a fleet service whose changelog reads fail or wait, a recording consumer,
stale fences, a settle held, a fleet guard whose global quota is full, a publisher whose Kafka is down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import TopicPartition
from pydantic import JsonValue

from responder.actuators.retry import VerifySettle
from responder.engine.guards import GuardPolicy, Trip
from responder.engine.quotas import QuotaRun
from responder.engine.snapshot import EngineSnapshot
from responder.errors import BrokerUnavailable
from responder.errors_kafka import ChangelogError
from responder.fleet import FleetState
from responder.models.approval import REQUESTS_TOPIC
from responder.models.event import RawRecord
from responder.models.runbook import Quota
from responder.models.step import StepResult
from responder.models.timeline import TimelineEntry
from responder.service import Service
from responder.settings import Settings
from tests.fakes import Waits
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import DEACTIVATE_STEPS, ECHO, KEY, WIPE, Kit, make_kit

COOLDOWN_RB = ECHO.format(guards="window: 5m\ncooldown: 1h")
IAM_QUOTA = Quota(actuator="aws.iam.*", max=5, window=3600)
OTHER = "AKIAOTHEROTHEROTHER1"
FIVE_AN_HOUR = "guards: {quotas: [{actuator: test.*, max: 5, window: 1h}]}"
UNRESTORED = "partition(s) 1 are not restored yet (their quota windows are not in)"
APPROVED_ON_TIMEOUT = WIPE.replace("test.wipe", "test.echo").replace("approvers", "required: true, approvers") \
    % "approve"


class CompactedChangelog:
    """The latest value per key of each partition, as compaction leaves it (None: a tombstone)."""

    txn = None  # no Kafka transactions

    def __init__(self) -> None:
        self.keys: dict[int, dict[str, EngineSnapshot | None]] = {}
        self.tombstones: list[tuple[int, str]] = []

    async def read(self, partition: int) -> list[EngineSnapshot]:
        return [s for s in self.keys.get(partition, {}).values() if s is not None]

    def deadline(self) -> float:
        """No deadline: these writes never wait."""
        return float("inf")

    async def write(self, partition: int, slices: dict[str, EngineSnapshot | None],
                    quotas: list[QuotaRun] | None = None, urgent: bool = False, until: float | None = None) -> None:
        self.keys.setdefault(partition, {}).update(slices)
        if quotas is not None:
            self.keys[partition]["~quotas"] = EngineSnapshot(quotas=quotas)
        self.tombstones += [(partition, k) for k, s in slices.items() if s is None]

    def closed(self, partition: int) -> list[str]:
        """The live `~closed#` keys of `partition`."""
        return [k for k, s in self.keys.get(partition, {}).items() if k.startswith("~closed#") and s is not None]


class FlakyChangelog:
    """Fails to read partition 1 until `healed`."""

    txn = None  # no Kafka transactions

    def __init__(self) -> None:
        self.healed = False
        self.written: list[tuple[int, dict[str, EngineSnapshot | None]]] = []

    async def read(self, partition: int) -> list[EngineSnapshot]:
        if partition == 1 and not self.healed:
            raise ChangelogError("changelog t[1] record b'k' does not parse: ('incidents',): bad")
        return []

    def deadline(self) -> float:
        """No deadline: these writes never wait."""
        return float("inf")

    async def write(self, partition: int, slices: dict[str, EngineSnapshot | None], quotas: object = None,
                    urgent: bool = False, until: float | None = None) -> None:
        self.written.append((partition, dict(slices)))


def fleet_service(tmp_path: Path) -> Service:
    """A fleet-mode Service (changelog topic set; no Kafka reached) with no runbooks."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog")
    return Service(settings, runbooks=[])


class RecordingConsumer:
    """What KafkaIngest asks of aiokafka's consumer to pause and resume: the calls, in order."""

    def __init__(self, assigned: list[TopicPartition]) -> None:
        self.assigned, self.calls = set(assigned), []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The metadata: the assigned partitions of `topic` (no other member holds any)."""
        return {tp.partition for tp in self.assigned if tp.topic == topic} or None

    def pause(self, *tps: TopicPartition) -> None:
        self.calls.append(("pause", sorted(tps)))

    def resume(self, *tps: TopicPartition) -> None:
        self.calls.append(("resume", sorted(tps)))


@contextlib.asynccontextmanager
async def with_recording_consumer(service: Service,
                                  partitions: list[TopicPartition]) -> AsyncIterator[RecordingConsumer]:
    """`service` with a recording consumer in place of aiokafka's (assigned `partitions`); closed after."""
    real, consumer = service.ingest.consumer, RecordingConsumer(partitions)
    service.ingest.consumer = consumer  # type: ignore[assignment]
    try:
        yield consumer
    finally:
        service.ingest.consumer = real
        service.recorder.close()
        await service.close_unstarted()


class SlowChangelog(FlakyChangelog):
    """Partition 1 does not parse; the reads of `slow` partitions wait for `go`, noting whether they were cancelled."""

    def __init__(self, slow: frozenset[int] = frozenset({0, 1})) -> None:
        super().__init__()
        self.slow, self.go, self.reading, self.cancelled = slow, asyncio.Event(), asyncio.Event(), []

    async def read(self, partition: int) -> list[EngineSnapshot]:
        self.reading.set()
        try:
            if partition in self.slow:
                await self.go.wait()
        except asyncio.CancelledError:
            self.cancelled.append(partition)
            raise
        return await super().read(partition)


def slow_service(tmp_path: Path, slow: frozenset[int] = frozenset({0, 1})) -> tuple[Service, SlowChangelog]:
    """A fleet service whose changelog reads are `SlowChangelog`'s."""
    service, log = fleet_service(tmp_path), SlowChangelog(slow)
    assert service.fleet is not None
    service.fleet.changelog.read = log.read  # type: ignore[method-assign]
    return service, log


async def send_from(kit: Kit, partition: int, finding: str) -> None:
    """Handle the kit's finding (id `finding`) as a record of `partition`, and flush."""
    assert kit.pipeline is not None
    value = envelope_bytes(guardduty_finding(KEY, "ml-training", finding_id=finding))
    await kit.pipeline.handle(RawRecord(topic="t", partition=partition, value=value))
    await kit.engine.recorder.flush()


def quota_member(tmp_path: Path, name: str, log: CompactedChangelog, owned: set[int]) -> tuple[Kit, FleetState]:
    """A replica owning `owned`, whose durable entries write the changelog (as the service wires it)."""
    (tmp_path / name).mkdir()
    kit = make_kit(tmp_path / name, {"rb": DEACTIVATE_STEPS}, policy=GuardPolicy(quotas=[IAM_QUOTA]))
    kit.iam.add_key("other", OTHER)
    fleet = FleetState(kit.engine, log)  # type: ignore[arg-type]
    fleet.owned = set(owned)
    kit.engine.recorder.barriers.append(fleet.on_durable)
    return kit, fleet


async def send_to(kit: Kit, partition: int, key: str = KEY, user: str = "ml-training") -> None:
    """Handle one finding as a record of `partition`, and flush."""
    assert kit.pipeline is not None
    value = envelope_bytes(guardduty_finding(key, user))
    await kit.pipeline.handle(RawRecord(topic="t", partition=partition, value=value))
    await kit.engine.recorder.flush()


def count_iam_quota(kit: Kit) -> int:
    """The runs counted in the kit's `IAM_QUOTA` window now."""
    return kit.engine.state.windows.count("*", "aws.iam.*", 3600, kit.clock.now)


async def in_flight_finding(kit: Kit, key: str, user: str) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Send a finding of partition 0 whose update_access_key call blocks until the returned event is set; returns
    once its call is under way (its intent durable)."""
    gate, called, real = asyncio.Event(), asyncio.Event(), kit.iam.call

    async def call(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        if operation == "update_access_key" and kw.get("AccessKeyId") == key:
            called.set()  # the intent is durable (its changelog written) before the call
            await gate.wait()
        return await real(service, operation, **kw)

    kit.iam.call = call  # type: ignore[method-assign]
    task = asyncio.create_task(send_to(kit, 0, key, user))
    await called.wait()
    return task, gate


def fail_permanently(kit: Kit) -> None:
    """Every update_access_key call from now on finds its key gone (NoSuchEntity: a permanent failure)."""
    real = kit.iam.call

    async def fails(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        if operation == "update_access_key":
            kit.iam.keys.pop(kw["AccessKeyId"], None)
        return await real(service, operation, **kw)

    kit.iam.call = fails  # type: ignore[method-assign]


async def restored_kit(member: tuple[Kit, FleetState], partitions: list[int]) -> Kit:
    """The member's kit once `partitions` are restored from its changelog, in that order."""
    kit, fleet = member
    for partition in partitions:
        slices = await fleet.fetch(partition)
        assert slices is not None
        fleet.adopt(partition, slices)
    return kit


def from_partition(kit: Kit, partition: int) -> list[TimelineEntry]:
    """The kit's durable entries, as if its records had come from `partition` (the kit's carry no origin)."""
    entries = list(kit.engine.recorder.entries())
    for entry in entries:
        if entry.kind == "event.received":
            entry.body["origin"] = {"partition": partition}
    return entries


def durable_entry(kind: str, event: str, incident: str | None = None, partition: int = 4) -> TimelineEntry:
    """A durable entry of `kind` about `event` (an `event.received` carries its record's origin, topic a)."""
    body: dict[str, JsonValue] = {"event_id": event}
    if kind == "event.received":
        body["origin"] = {"topic": "a", "partition": partition, "offset": 0}
    return TimelineEntry.model_construct(seq=0, writer="w", at="", kind=kind, incident=incident, body=body,
                                         prev="", hash="")


async def parked_uncounted(tmp_path: Path, guards: str = FIVE_AN_HOUR, **kw: object) -> Kit:
    """A kit whose one step was parked because its quota could not be counted."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards=guards)}, **kw)
    kit.engine.guards.uncounted = lambda: UNRESTORED
    await kit.send()
    return kit


class Held:
    """A settle's sleep that waits until the test lets it go (`go`), with the Waits' clock: no time passes."""

    def __init__(self) -> None:
        self.waits, self.waiting, self.go = Waits(), asyncio.Event(), asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        """Note the wait, say so, and wait for the test."""
        self.waiting.set()
        await self.go.wait()
        await self.waits.sleep(seconds)

    def settle(self) -> VerifySettle:
        """A 5 s settle sleeping here."""
        return VerifySettle(5.0, sleep=self.sleep, clock=self.waits.clock)


class StaleLeaderLog:
    """One partition whose new leader's high watermark trails the acknowledged records until it is fetched from."""

    def __init__(self, values: list[tuple[bytes, bytes | None]], visible: int) -> None:
        self.records, self.visible = list(values), visible

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send_and_wait(self, topic: str, value: bytes | None, *, key: bytes, partition: int,
                            headers: Any = ()) -> Any:
        self.records.append((key, value))
        return SimpleNamespace(offset=len(self.records) - 1)


class StaleConsumer:
    """Serves the log up to its visible high watermark, which catches up after the first fetch."""

    log: StaleLeaderLog

    def __init__(self, **_: Any) -> None:
        self.at = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, _: Any) -> None: ...

    async def seek_to_beginning(self, _: Any) -> None:
        self.at = 0

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tps[0]: self.log.visible}

    def highwater(self, _: Any) -> int:
        return self.log.visible

    async def position(self, _: Any) -> int:
        return self.at

    async def getmany(self, tp: Any, **_: Any) -> dict[Any, list[Any]]:
        got = [SimpleNamespace(key=k, value=v) for k, v in self.log.records[self.at:self.log.visible]]
        self.at = self.log.visible
        self.log.visible = len(self.log.records)  # the followers fetched: the watermark is current again
        return {tp: got} if got else {}


class FakeFleetGuard:
    """A fleet guard whose global quota is full or not; remembers the step keys that took a slot."""

    killed = False

    def __init__(self, full: bool) -> None:
        self.full, self.taken = full, []

    async def acquire(self, actuator: str, key: str, now: float, *, again: bool = False) -> Trip | None:
        if self.full:
            return Trip("quota", f"fleet-wide: {actuator} is full")
        self.taken.append(key)
        return None

    async def settle(self, key: str, result: StepResult) -> None:
        """A step's result: the real guard gives back a permanent failure's slots; this one keeps `taken`."""


def publisher_down(kit: Kit) -> list[int]:
    """Kafka down for `kit`'s publisher: each publication raises BrokerUnavailable (as at its deadline), counted."""
    tried: list[int] = []

    async def refused(*_: Any, **__: Any) -> None:
        tried.append(1)
        raise BrokerUnavailable("Kafka did not acknowledge a record within 20s")

    kit.publisher.publish = refused  # type: ignore[method-assign]
    return tried


def requests_published(kit: Kit) -> list[str]:
    """The request ids published to the approval requests topic."""
    return [orjson.loads(v)["request_id"] for t, _, v in kit.publisher.sent if t == REQUESTS_TOPIC]
