"""`responder run`: consumers → pipeline → timeline → commit, with graceful shutdown.

`Service` builds its collaborators from settings here; what it does with them is in the mixins it is made of:
`BatchHandling` (responder/service/batches.py: a chunk of records through the pipeline, then its offsets),
`PartitionKeeping` (partitions.py: assignment, recovery, eviction, the fleet's restores), `Running`
(running.py: start, drain, close; the alert loop is `AlertsLoop`, alertsloop.py, the approval and operator loops
`SignedLoops`, signed.py) and `Readiness` (readiness.py: what `/readyz` answers).
`Parts` (parts.py) declares what they share.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence

import structlog

from responder import collector
from responder.actuators.base import AwsCaller
from responder.actuators.context import context_from
from responder.actuators.registry import Registry
from responder.actuators.registry import registry as default_registry
from responder.actuators.retry import VerifySettle
from responder.bounds import revocation_deadline
from responder.catalog import load_runbooks
from responder.catalog.defaults import with_default_escalation
from responder.clock import SteadyClock
from responder.engine.executor import Engine
from responder.engine.fleetguard import FleetGuard
from responder.engine.operator import Operator
from responder.errors import ConfigError
from responder.fleet import FleetState
from responder.fleet_digest import key_fingerprints
from responder.ingest.approvals import ApprovalIngest, KafkaPublisher
from responder.ingest.changelog import Changelog
from responder.ingest.commits import OffsetCommits
from responder.ingest.flow import Flow
from responder.ingest.gate import Gate
from responder.ingest.kafka import KafkaIngest
from responder.ingest.mirror import KafkaMirror
from responder.ingest.security import kafka_client_options
from responder.instruments import HeldPartitions, TimedSync
from responder.metrics import Metrics, TimelineMetrics
from responder.metrics_server import MetricsServer
from responder.models.runbook import Runbook
from responder.normalise import known
from responder.pipeline import Pipeline
from responder.service.batches import BatchHandling
from responder.service.chores import Chores
from responder.service.readiness import Readiness
from responder.service.revocation import warn_if_short
from responder.service.running import Running
from responder.service.wiring import (
    NO_KAFKA,
    approver_keys,
    archiver_from,
    authenticator_from,
    guards_from,
    operator_permissions,
    refuse_notifying_own_topics,
    warn_account_unknown,
    warn_unsigned_triggers,
)
from responder.settings import Settings
from responder.timeline.recorder import Recorder

log = structlog.get_logger(__name__)


class Service(BatchHandling, Running, Readiness):
    """One consumer-group member: handles batches partition by partition, commits after the timeline is durable."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry = default_registry,
        aws: AwsCaller | None = None,
        runbooks: Sequence[Runbook] | None = None,
        clock: Callable[[], float] | None = None,
        metrics_server: MetricsServer | None = None,
    ) -> None:
        if not settings.kafka_bootstrap:
            raise ConfigError(NO_KAFKA)
        key_fingerprints(settings.model_trusted_keys)  # a trusted model key it cannot read: exit 3, naming it
        # every check that can refuse a setting or a runbook (ConfigError, exit 3) runs before any Kafka client is
        # built: a client built and never closed is logged `Unclosed AIOKafkaProducer` when it is collected
        global_guards = guards_from(settings)
        books = with_default_escalation(runbooks if runbooks is not None else
                                        load_runbooks(settings.runbooks_dir, registry),
                                        settings.default_on_failure, registry)
        warn_account_unknown(settings, books)
        refuse_notifying_own_topics(settings, books)
        warn_unsigned_triggers(settings, books, registry)
        if not books:
            log.warning("no_runbooks", runbooks_dir=str(settings.runbooks_dir),
                        detail="every alert will be recorded and matched by nothing")
        unknown = sorted(f for f in settings.topic_formats.values() if not known(f))
        if unknown:
            raise ConfigError(f"topic_formats names unknown formats: {', '.join(unknown)}")
        authenticator = authenticator_from(settings)
        permissions = operator_permissions(settings)  # ConfigError on a key that is no approval key
        self.settings = settings
        # by default windows and deadlines ignore wall-clock steps while running (responder/clock.py)
        self.clock = clock = clock if clock is not None else SteadyClock()
        self.kafka_options = options = kafka_client_options(settings)  # TLS / SASL, for every client below
        self.recorder = Recorder.from_settings(settings, clock=clock)
        self.archiver = archiver_from(settings)
        self.mirror = KafkaMirror(settings.kafka_bootstrap, settings.timeline_mirror_topic, options=options,
                                  max_pending=settings.timeline_mirror_max_pending) \
            if settings.timeline_mirror_topic and not settings.dry_run else None  # a dry run produces nothing
        self.recorder.sinks.extend(s for s in (self.archiver, self.mirror) if s is not None)
        self.publisher = KafkaPublisher(settings.kafka_bootstrap, options=options)
        context = context_from(settings, aws=aws, publisher=self.publisher)
        self.fleet_guard = FleetGuard(context.aws, settings.fleet_guard_table, global_guards.policy.quotas, clock) \
            if settings.fleet_guard_table else None
        self.metrics = Metrics(mirror=self.mirror)
        self.engine = Engine(
            self.recorder, registry, context.aws, dry_run=settings.dry_run,
            guards=global_guards, fleet_guard=self.fleet_guard, publisher=self.publisher,
            requests_topic=settings.approval_requests_topic, approval_keys=approver_keys(settings),
            clock=clock, context=context, verify_settle=VerifySettle(settings.verify_settle_s),
        )
        observed = TimelineMetrics(self.metrics, runbook_of=self._runbook_of)
        self.recorder.observers.append(observed.observe)
        self.recorder.sinks.append(observed)
        self.recorder.store = TimedSync(self.recorder.store, self.metrics.timeline_fsync)
        self.metrics.approvals_parked.set_function(lambda: len(self.engine.state.parked_steps()))
        self.metrics.approval_requests_unsent.set_function(lambda: len(self.engine.decisions.unsent))
        self.pipeline = Pipeline(books, self.engine, max_record_bytes=settings.max_record_bytes,
                                 topic_formats=settings.topic_formats, authenticator=authenticator,
                                 metrics=self.metrics)
        self.shares_metrics_server = metrics_server is not None  # handed in by `rebuilds`: it outlives the service
        self.metrics_server = metrics_server or (
            MetricsServer(self.metrics, self.ready_now, settings.metrics_host, settings.metrics_port,
                          why=self.unready, warning=self.warning)
            if settings.metrics_port is not None else None
        )
        self.ingest = KafkaIngest(
            settings.kafka_bootstrap,
            settings.topics,
            settings.group_id,
            settings.deadletter_topic,
            session_timeout_ms=settings.session_timeout_ms, max_batch=settings.max_batch,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            manual_assignment=settings.kafka_manual_assignment,
            co_partitioned=settings.changelog_topic is not None,
            options=options,
            deadletter_max_bytes=settings.deadletter_max_bytes,
            group_instance_id=settings.kafka_group_instance_id,
            rebalance_timeout_ms=settings.rebalance_timeout_ms,
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            fetch_idle_wait_ms=settings.kafka_fetch_idle_wait_ms,
        )
        self.metrics.registry.register(HeldPartitions(lambda: self.ingest.held))  # read at each scrape
        self.fleet = None
        if settings.changelog_topic:  # fleet mode: state follows its partition; every member reads every decision
            changelog = Changelog(settings.kafka_bootstrap, settings.changelog_topic, options=options,
                                  write_deadline=settings.changelog_write_deadline)
            self.fleet = FleetState(self.engine, changelog, lease=self.ingest.lease)
            self.recorder.barriers.append(self.fleet.on_durable)
            self.metrics.changelog_missing.set_function(lambda: len(self.fleet.short) if self.fleet else 0)
            global_guards.uncounted = self._uncounted  # a quota that cannot be counted yet waits, parked
            global_guards.global_shared = self.fleet_guard is not None
        self.approvals = ApprovalIngest(settings.kafka_bootstrap, settings.approvals_topic,
                                        None if self.fleet else f"{settings.group_id}.approvals",
                                        session_timeout_ms=settings.session_timeout_ms, options=options,
                                        manual_assignment=settings.kafka_manual_assignment or self.fleet is not None,
                                        group_instance_id=f"{settings.kafka_group_instance_id}.approvals"
                                        if settings.kafka_group_instance_id and self.fleet is None else None)
        self._evicted_at, self._chores = clock(), Chores()
        # operator requests (undo, models … --via kafka): executed here, on this service's own timeline
        self.operator = Operator(self.recorder, registry, self.engine.context, keys=self.engine.decisions.keys,
                                 clock=clock, replies=self.fleet_guard,  # completed requests, fleet-wide
                                 permissions=permissions, refusals=self.engine.decisions.refusals,
                                 state=self.engine.state)  # an undone step is not applied again by a later event
        self.engine.decisions.refusals.counted = lambda reason: self.metrics.refused.labels(reason).inc()
        self.operator_ingest = None if settings.dry_run else ApprovalIngest(
            settings.kafka_bootstrap, settings.operator_requests_topic, f"{settings.group_id}.operator",
            session_timeout_ms=settings.session_timeout_ms, manual_assignment=settings.kafka_manual_assignment,
            options=options, group_instance_id=f"{settings.kafka_group_instance_id}.operator"
            if settings.kafka_group_instance_id else None)
        consumers = {"alerts": self.ingest, "approvals": self.approvals, "operator": self.operator_ingest}
        self.metrics.start_at_zero(settings.topics, [name for name, made in consumers.items() if made is not None])
        if self.operator_ingest is not None and not settings.operator_permissions:
            log.warning("operator_permissions_unset", effect="every operator request is refused")
        if self.operator_ingest is not None and self.recorder.signer is None:
            log.warning("operator_replies_unsigned", effect="`--via kafka` refuses them unless told to trust them")
        # offsets committed at most every kafka_commit_interval_ms, after the timeline is durable (commits.py)
        self.commits = OffsetCommits(lambda offsets: self.ingest.commit(offsets), self.recorder.flush,
                                     interval=settings.kafka_commit_interval_ms / 1000)
        self._lock = Gate()  # exclusive: rebalances, evictions, decisions; shared: the partitions' lanes
        self.flow = Flow(self.ingest, self._handle_batch, max_in_flight=settings.max_in_flight,
                         max_batch=settings.max_batch, observe=self.metrics.partitions.flow,
                         on_idle=collector.when_idle)  # young generations collected between chunks, not inside
        self._recovered_at = -1
        self._rebalances = 0
        self._rebalance_error: BaseException | None = None
        self._rebuilding: dict[str, str] = {}
        self._rebuild_budgets = {}
        self._restorers: dict[int, asyncio.Task[None]] = {}
        self._adopting: set[int] = set()
        self._given: set[int] = set()
        self._leaving_unrestored: set[int] = set()
        self.revocation_deadline = revocation_deadline(settings.rebalance_timeout_ms, settings.session_timeout_ms)
        if self.fleet is not None:  # a fleet's revocations are cut past it (revocation.py)
            warn_if_short(settings, self.revocation_deadline)
        self.ready = asyncio.Event()
        self.topics_missing: str | None = None
        self.topics_warning: str | None = None
        self.group_shared: str | None = None
        self._stop = asyncio.Event()
        self.deadlettered = {}
        if metrics_server is not None:  # answers for this service from now on, once it is whole
            metrics_server.attach(self.metrics, self.ready_now, self.unready, warning=self.warning)

    def _runbook_of(self, incident: str) -> str | None:
        """The runbook of a live incident: the `runbook` label of the step metrics."""
        found = self.engine.state.incidents.by_id.get(incident)
        return found.runbook if found is not None else None

    def request_stop(self) -> None:
        """Finish the batch in hand, commit it, then stop."""
        log.info("shutdown_requested")
        self._stop.set()


async def serve(service: Service) -> None:
    """Run the service until SIGTERM or SIGINT, then drain and stop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    try:
        await service.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
