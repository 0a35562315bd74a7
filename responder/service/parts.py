"""The collaborators one `Service` holds, declared once for the mixins that share them.

`Service.__init__` (responder/service/core.py) builds them; `BatchHandling`, `PartitionKeeping`, `Running` and
`Readiness` are mixed into `Service` and read them straight off the instance, so a batch costs no indirection.
`acting` is how the decisions, timeouts and steps taken up again hold the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from responder.actuators.retry import settling
from responder.engine.executor import Engine
from responder.engine.fleetguard import FleetGuard
from responder.engine.operator import Operator
from responder.fleet import FleetState
from responder.ingest.approvals import ApprovalIngest, KafkaPublisher
from responder.ingest.commits import OffsetCommits
from responder.ingest.coordinator import RebuildBudget
from responder.ingest.flow import Flow
from responder.ingest.gate import Gate
from responder.ingest.kafka import KafkaIngest
from responder.ingest.mirror import KafkaMirror
from responder.ingest.security import KafkaOptions
from responder.metrics import Metrics
from responder.metrics_server import MetricsServer
from responder.pipeline import Pipeline
from responder.service.chores import Chores
from responder.settings import Settings
from responder.timeline.archive import Archiver
from responder.timeline.recorder import Recorder


class Parts:
    """What a service is made of: settings, clients, engine, pipeline, timeline, and its run state."""

    settings: Settings
    clock: Callable[[], float]
    kafka_options: KafkaOptions  # TLS / SASL, for every Kafka client
    recorder: Recorder
    archiver: Archiver | None
    mirror: KafkaMirror | None
    publisher: KafkaPublisher
    fleet_guard: FleetGuard | None
    metrics: Metrics
    engine: Engine
    pipeline: Pipeline
    metrics_server: MetricsServer | None
    shares_metrics_server: bool  # handed in by `rebuilds`: outlives the service, which neither stops it nor owns it
    reached_kafka: bool = False  # its publisher started, after the topic check: its settings work (rejoin.py)
    ready_since: float | None = None  # when it last became ready (time.monotonic): rejoin.py's backoff resets by it
    ingest: KafkaIngest
    fleet: FleetState | None  # fleet mode: state follows its partition
    approvals: ApprovalIngest
    operator: Operator
    operator_ingest: ApprovalIngest | None  # None in a dry run
    commits: OffsetCommits
    flow: Flow
    ready: asyncio.Event
    topics_missing: str | None  # why it does not consume yet: a topic it writes to is missing (/readyz says it)
    topics_warning: str | None  # a runbook's notification topic is missing (/readyz shows it while ready)
    group_shared: str | None  # others share its group outside fleet mode (partitions.py; /readyz shows it while ready)
    deadlettered: dict[str, int]  # records dead-lettered (or, in a dry run, recorded as rejected) by reason
    _lock: Gate  # exclusive: rebalances, evictions, decisions (`acting`); shared: the partitions' lanes
    _stop: asyncio.Event
    _evicted_at: float
    _chores: Chores  # the alert loop's eviction and idle flush, run beside it (chores.py)
    _recovered_at: int  # the timeline's next sequence number at the last recovery
    _rebalances: int  # rebalance callbacks run so far (revocations and assignments)
    _rebalance_error: BaseException | None  # what a rebalance callback raised; the next chunk and poll raise it
    _rebuilding: dict[str, str]  # consumers being rebuilt after their group coordinator died, and why (consumers.py)
    _rebuild_budgets: dict[str, RebuildBudget]  # each consumer's rebuilds since it last committed (consumers.py)
    _restorers: dict[int, asyncio.Task[None]]  # a fleet's restore of each assigned or failed partition (background)
    _given: set[int]  # the partition numbers assigned to this service, as its rebalance callbacks were told
    _leaving_unrestored: set[int]  # revoked before their state was in: their quota windows were never counted
    _adopting: set[int]  # partitions whose restore merges under the gate: a revocation waits for it, not cancels it


@contextlib.asynccontextmanager
async def acting(gate: Gate) -> AsyncIterator[None]:
    """`gate` exclusively, for what may act outside a lane (a decision, an `on_timeout`, a step taken up again): never
    while a revocation hands its partition over, nor beside a chunk's half. Once a released step's read-back waits to
    settle (`settling`), the gate is let down to its shared side (`Gate.downgrade`) until the block ends: the lanes
    of every partition go on meanwhile, and a rebalance or an eviction still waits for it."""
    async with gate:
        held = True

        async def let_lanes_in() -> None:
            if held:  # a task the block started and outlived it never touches the gate
                await gate.downgrade()

        try:
            with settling(let_lanes_in):
                yield
        finally:
            held = False
