"""`responder run`: consumers → pipeline → timeline → commit, with graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from pydantic import ValidationError

from responder import collector
from responder.actuators.aws.archive import S3Archive
from responder.actuators.base import AwsCaller
from responder.actuators.context import context_from
from responder.actuators.registry import Registry
from responder.actuators.registry import registry as default_registry
from responder.auth import KEY_ID_HEADER, SIGNATURE_HEADER, ApproverKeys
from responder.catalog import load_runbooks
from responder.clock import SteadyClock
from responder.engine.executor import Engine
from responder.engine.fleetguard import FleetGuard
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.operator import Operator
from responder.errors import ConfigError, EventRejected, TimelineError
from responder.fleet import FleetState, fleet_digest, partition_numbers
from responder.ingest import transactions
from responder.ingest.approvals import ApprovalIngest, KafkaPublisher
from responder.ingest.authn import RecordAuthenticator
from responder.ingest.changelog import Changelog
from responder.ingest.commits import OffsetCommits
from responder.ingest.flow import Flow, Gate
from responder.ingest.kafka import KafkaIngest, ensure_topics
from responder.ingest.mirror import KafkaMirror
from responder.ingest.security import check_connection, kafka_client_options
from responder.metrics import Metrics, MetricsServer, TimedSync, TimelineMetrics
from responder.models.event import RawRecord
from responder.models.runbook import Protected, Quota, Runbook
from responder.models.timeline import EntryKind
from responder.normalise import known
from responder.pipeline import Pipeline, Prepared
from responder.settings import Settings
from responder.timeline.archive import Archiver
from responder.timeline.recorder import Recorder
from responder.tracing import active, traced

log = structlog.get_logger(__name__)

NO_KAFKA = (
    "no Kafka configured: set RESPONDER_KAFKA_BOOTSTRAP=host:port (or kafka_bootstrap in the file named by "
    "RESPONDER_CONFIG), or run `responder run --sandbox` to start the embedded broker and a local AWS API"
)


def guards_from(settings: Settings) -> Guards:
    """The global guards configured in settings (a bad quota is a ConfigError at start-up)."""
    try:
        quotas = [Quota.model_validate(q) for q in settings.guard_quotas]
    except ValidationError as exc:
        raise ConfigError(f"RESPONDER_GUARD_QUOTAS: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    return Guards(GuardPolicy(
        quotas=quotas,
        max_targets=settings.guard_max_targets,
        protected=Protected(ids=settings.protected_ids, tags=settings.protected_tags),
        kill_switch=settings.kill_switch, kill_switch_file=settings.kill_switch_file,
    ))


def authenticator_from(settings: Settings) -> RecordAuthenticator:
    """Record signature checks: the keys, where signatures are required, and which sources each key may sign."""
    unknown = sorted(set(settings.event_signing_key_sources) - set(settings.event_signing_keys))
    if unknown:
        raise ConfigError(f"RESPONDER_EVENT_SIGNING_KEY_SOURCES names keys that are not configured: {unknown}")
    return RecordAuthenticator({k: v.get_secret_value() for k, v in settings.event_signing_keys.items()},
                               settings.require_signature, settings.event_signing_key_sources)


def archiver_from(settings: Settings) -> Archiver | None:
    """The segment archiver, when an archive is configured (segments are sealed at signed checkpoints)."""
    archive = S3Archive.from_settings(settings)
    if archive is None:
        return None
    if not settings.timeline_signing_key:
        raise ConfigError("timeline_archive needs timeline_signing_key: segments are sealed at signed checkpoints")
    return Archiver(archive)


class Service:
    """One consumer-group member: handles batches partition by partition, commits after the timeline is durable."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry = default_registry,
        aws: AwsCaller | None = None,
        runbooks: Sequence[Runbook] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not settings.kafka_bootstrap:
            raise ConfigError(NO_KAFKA)
        self.settings = settings
        # by default windows and deadlines ignore wall-clock steps while running (responder/clock.py)
        self.clock = clock = clock if clock is not None else SteadyClock()
        self.kafka_options = options = kafka_client_options(settings)  # TLS / SASL, for every client below
        self.recorder = Recorder.from_settings(settings, clock=clock)
        self.archiver = archiver_from(settings)
        self.mirror = KafkaMirror(settings.kafka_bootstrap, settings.timeline_mirror_topic, options=options) \
            if settings.timeline_mirror_topic and not settings.dry_run else None  # a dry run produces nothing
        self.recorder.sinks.extend(s for s in (self.archiver, self.mirror) if s is not None)
        self.publisher = KafkaPublisher(settings.kafka_bootstrap, options=options)
        context = context_from(settings, aws=aws, publisher=self.publisher)
        global_guards = guards_from(settings)
        self.fleet_guard = FleetGuard(context.aws, settings.fleet_guard_table, global_guards.policy.quotas) \
            if settings.fleet_guard_table else None
        self.metrics = Metrics()
        self.engine = Engine(
            self.recorder, registry, context.aws, dry_run=settings.dry_run,
            guards=global_guards, fleet_guard=self.fleet_guard, publisher=self.publisher,
            requests_topic=settings.approval_requests_topic,
            approval_keys=ApproverKeys({k: v.get_secret_value() for k, v in settings.approval_keys.items()},
                                       identities=settings.approver_identities,
                                       max_lifetime=settings.approval_decision_max_lifetime),
            clock=clock, context=context,
        )
        books = list(runbooks) if runbooks is not None else load_runbooks(settings.runbooks_dir, registry)
        if not books:
            log.warning("no_runbooks", runbooks_dir=str(settings.runbooks_dir),
                        detail="every alert will be recorded and matched by nothing")
        unknown = sorted(f for f in settings.topic_formats.values() if not known(f))
        if unknown:
            raise ConfigError(f"topic_formats names unknown formats: {', '.join(unknown)}")
        observed = TimelineMetrics(self.metrics, runbook_of=self._runbook_of)
        self.recorder.observers.append(observed.observe)
        self.recorder.sinks.append(observed)
        self.recorder.store = TimedSync(self.recorder.store, self.metrics.timeline_fsync)
        self.metrics.approvals_parked.set_function(lambda: len(self.engine.state.parked_steps()))
        authenticator = authenticator_from(settings)
        self.pipeline = Pipeline(books, self.engine, max_record_bytes=settings.max_record_bytes,
                                 topic_formats=settings.topic_formats, authenticator=authenticator,
                                 metrics=self.metrics)
        self.metrics_server = (
            MetricsServer(self.metrics, self.ready_now, settings.metrics_host, settings.metrics_port)
            if settings.metrics_port is not None else None
        )
        self.ingest = KafkaIngest(
            settings.kafka_bootstrap,
            settings.topics,
            settings.group_id,
            settings.deadletter_topic,
            session_timeout_ms=settings.session_timeout_ms,
            max_batch=settings.max_batch,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            manual_assignment=settings.kafka_manual_assignment,
            co_partitioned=settings.changelog_topic is not None,
            options=options,
            deadletter_max_bytes=settings.deadletter_max_bytes,
            group_instance_id=settings.kafka_group_instance_id,
            rebalance_timeout_ms=settings.rebalance_timeout_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            fetch_idle_wait_ms=settings.kafka_fetch_idle_wait_ms,
        )
        self.fleet: FleetState | None = None
        if settings.changelog_topic:  # fleet mode: state follows its partition; every member reads every decision
            self.fleet = FleetState(self.engine, Changelog(settings.kafka_bootstrap, settings.changelog_topic,
                                                           options=options))
            self.recorder.barriers.append(self.fleet.on_durable)
        self.approvals = ApprovalIngest(settings.kafka_bootstrap, settings.approvals_topic,
                                        None if self.fleet else f"{settings.group_id}.approvals",
                                        session_timeout_ms=settings.session_timeout_ms,
                                        manual_assignment=settings.kafka_manual_assignment or self.fleet is not None,
                                        options=options,
                                        group_instance_id=f"{settings.kafka_group_instance_id}.approvals"
                                        if settings.kafka_group_instance_id and self.fleet is None else None)
        self._evicted_at = clock()
        # operator requests (undo, models … --via kafka): executed here, on this service's own timeline
        self.operator = Operator(self.recorder, registry, self.engine.context, keys=self.engine.decisions.keys,
                                 clock=clock, replies=self.fleet_guard)  # completed requests, fleet-wide
        self.operator_ingest = None if settings.dry_run else ApprovalIngest(
            settings.kafka_bootstrap, settings.operator_requests_topic, f"{settings.group_id}.operator",
            session_timeout_ms=settings.session_timeout_ms, manual_assignment=settings.kafka_manual_assignment,
            options=options, group_instance_id=f"{settings.kafka_group_instance_id}.operator"
            if settings.kafka_group_instance_id else None)
        # offsets committed at most every kafka_commit_interval_ms, after the timeline is durable (commits.py)
        self.commits = OffsetCommits(lambda offsets: self.ingest.commit(offsets), self.recorder.flush,
                                     interval=settings.kafka_commit_interval_ms / 1000)
        self._lock = Gate()  # exclusive: rebalances, evictions, decisions; shared: the partitions' lanes
        self.flow = Flow(self.ingest, self._handle_batch, max_in_flight=settings.max_in_flight,
                         max_batch=settings.max_batch, observe=self.metrics.partition_flow,
                         on_idle=collector.when_idle)  # young generations collected between chunks, not inside
        self._recovered_at = -1
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.deadlettered: dict[str, int] = {}

    def _runbook_of(self, incident: str) -> str | None:
        """The runbook of a live incident: the `runbook` label of the step metrics."""
        found = self.engine.state.incidents.by_id.get(incident)
        return found.runbook if found is not None else None

    def ready_now(self) -> bool:
        """Whether the service is consuming and its timeline takes writes (what `/readyz` reports).

        A full or failing timeline disk stalls the recorder: no step acts without a durable intent and no offset
        is committed, so the service is unready until the write goes through (tests/faults/test_disk_faults.py).
        """
        restoring = self.fleet is not None and bool(self.fleet.failed)  # a partition whose state is not restored
        return self.ready.is_set() and not self._stop.is_set() and self.recorder.stalled is None and not restoring

    def request_stop(self) -> None:
        """Finish the batch in hand, commit it, then stop."""
        log.info("shutdown_requested")
        self._stop.set()

    def _recover(self) -> None:
        recovered = self.engine.recover()
        self.operator.recover(self.recorder.entries())
        self._recovered_at = self.recorder.next_seq
        state = self.engine.state
        log.info("timeline_recovered", entries=recovered, inflight=len(state.inflight()),
                 parked=len(state.parked_steps()))

    async def _on_assigned(self, partitions: list[Any]) -> None:
        """Partitions moved to us: make the timeline durable and rebuild in-flight state before consuming."""
        self.commits.forget(partitions)  # offsets marked under an earlier assignment are not ours to commit
        async with self._lock:
            await self.recorder.flush()
            if self.fleet is not None:  # restore each partition's state from the changelog; pause what fails
                failed = await self.fleet.assign(partition_numbers(partitions))
                self.ingest.pause([tp for tp in partitions if tp.partition in failed])
            elif self.recorder.next_seq != self._recovered_at:
                self._recover()

    async def _on_revoked(self, partitions: list[Any]) -> None:
        """Partitions leave: finish the batch in hand, make its state durable (changelog included), forget it."""
        self.flow.drop(partitions)  # their queued records are the new owner's
        if self.fleet is None:
            await self.commits.commit(partitions)  # what this member handled of them, durable first
            return
        async with self._lock:  # the chunks in hand finish first
            await self.recorder.flush()
            await self.commits.commit(partitions)  # what this member handled of them
            self.fleet.revoke(partition_numbers(partitions))
            await self.fleet.close(partition_numbers(partitions))

    async def _evict(self) -> None:
        """Every `evict_every` seconds, forget closed incidents (in a fleet, tombstoning their changelog records)."""
        if self.clock() - self._evicted_at < self.settings.evict_every:
            return
        self._evicted_at = self.clock()
        async with self._lock:
            gone = await self.fleet.evict() if self.fleet is not None else self.engine.evict()
        if gone:
            log.info("incidents_evicted", count=len(gone), open=len(self.engine.state.incidents.all()))

    async def _fleet_upkeep(self) -> None:
        """Retry partitions whose restore failed."""
        if self.fleet is not None and self.fleet.failed:
            async with self._lock:
                failed = set(self.fleet.failed)
                still = await self.fleet.assign(failed)
                self.ingest.resume([tp for tp in self.ingest.assigned() if tp.partition in failed - still])

    async def close_unstarted(self) -> None:
        """Close the Kafka clients `__init__` built, for a service that never started them (or failed to start).

        aiokafka warns `Unclosed AIOKafkaConsumer` when one is collected unclosed, even if it never connected.
        """
        for client in (self.ingest, self.approvals, self.operator_ingest, self.publisher):
            if client is not None:
                await client.stop()
        if self.mirror is not None:
            await self.mirror.producer.stop()
        if self.fleet is not None:
            await self.fleet.changelog.stop()

    async def _prepare(self) -> None:
        """Everything before the clients start: refuse bad TLS/SASL or another fleet digest, recover, listen."""
        await check_connection(self.settings.kafka_bootstrap or "", self.kafka_options)  # bad TLS/SASL
        if self.fleet_guard is not None:
            await self.fleet_guard.ensure_table()
            await self.fleet_guard.refresh()
            if self.fleet is not None:  # a replica with other runbooks/settings than the fleet's is refused
                await self.fleet_guard.check_digest(fleet_digest(self.engine.runbooks.values(), self.settings),
                                                    self.recorder.writer, self.settings.fleet_adopt_digest)
        if self.fleet is None:
            self._recover()
        else:
            await self.fleet.changelog.start()
            self.fleet.changelog.txn = await transactions.choose(
                self.settings.kafka_transactions, str(self.settings.kafka_bootstrap), self.fleet.changelog.topic,
                self.settings.group_id, options=self.kafka_options)
        collector.tune()
        if self.archiver is not None:
            await asyncio.to_thread(self.archiver.catch_up, self.recorder.store.read().splitlines())
        if self.metrics_server is not None:
            await self.metrics_server.start()

    async def run(self) -> None:
        """Recover, consume until asked to stop, drain, close."""
        try:
            await self._prepare()
        except BaseException:  # bad TLS/SASL, another fleet digest, a broken timeline, a metrics port in use...
            await self.close_unstarted()
            raise
        shippers = [s for s in (self.archiver, self.mirror) if s is not None]
        async with asyncio.TaskGroup() as shipping:  # the archive and mirror drain after the recorder closes
            for shipper in shippers:
                shipping.create_task(shipper.run())
            try:
                wait = self.settings.kafka_connect_timeout
                await self.publisher.start(wait)
                if self.operator_ingest is not None:
                    await ensure_topics(str(self.settings.kafka_bootstrap), [
                        self.settings.operator_requests_topic, self.settings.operator_replies_topic],
                        options=self.kafka_options)
                # the groups join at once: after a crash each may wait for its dead member's session
                await asyncio.gather(self.approvals.start(wait), self.ingest.start(wait),
                                     *([self.operator_ingest.start(wait)] if self.operator_ingest is not None else []))
                self.ready.set()
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._alerts_loop())
                    tg.create_task(self._approvals_loop())
                    if self.operator_ingest is not None:
                        tg.create_task(self._operator_loop(self.operator_ingest))
            finally:
                self.ready.clear()
                clients: list[KafkaIngest | ApprovalIngest | KafkaPublisher] = [self.ingest, self.approvals]
                if self.operator_ingest is not None:
                    clients.append(self.operator_ingest)
                for client in (*clients, self.publisher):
                    await client.stop()
                if self.fleet is not None:
                    await self.recorder.flush()
                    await self.fleet.changelog.stop()
                if self.metrics_server is not None:
                    await self.metrics_server.stop()
                self.recorder.close()
                for shipper in shippers:
                    shipper.close()
        log.info("service_stopped")

    async def _alerts_loop(self) -> None:
        try:
            await self._consume()
        except BaseException:
            await self.flow.close(cancel=True)
            await self.commits.cancel()  # nothing more is committed once the service failed
            raise
        await self.flow.close()  # chunks in hand finish; queued records are redelivered
        await self.commits.close()  # every record handled is committed, its entries durable first

    async def _consume(self) -> None:
        while not self._stop.is_set():
            await self._evict()
            if self.fleet is not None:
                await self._fleet_upkeep()
            batch = await self.ingest.poll()
            if self.fleet_guard is not None:  # the fleet's kill switch, read once per poll and after it, so a
                await self.fleet_guard.refresh()  # record is never acted on with a switch read before it arrived
            for (topic, partition), behind in self.ingest.lag().items():
                self.metrics.consumer_lag.labels(topic, str(partition)).set(behind)
            self.flow.submit(batch)  # each partition in its lane; paused while its in-flight budget is full
            self.commits.tick()  # the offsets the lanes handled, when kafka_commit_interval_ms has passed
            if not batch:  # idle: a due checkpoint still seals the tail (and ships its segment)
                await self.recorder.flush()

    async def _approvals_loop(self) -> None:
        """Signed decisions in, `on_timeout` applied to parked steps whose deadline passed."""
        while not self._stop.is_set():
            batch = await self.approvals.poll()
            for records in batch.values():
                for record in records:
                    try:
                        ids = signature(record)
                        with traced("responder.decision", record.headers):  # its entries carry the decision's trace
                            if self.fleet is None:
                                await self.engine.decide(record.value, *ids)
                            else:  # the owner of the incident acts; others hold it until the partition comes
                                async with self._lock:
                                    await self.fleet.decide(record.value, *ids)
                    except Exception:  # one bad decision (even a bug) must not stop the approvals consumer
                        log.exception("approval_failed", offset=record.offset)
            await self.engine.expire()
            await self.recorder.flush()
            await self.approvals.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    async def _operator_loop(self, ingest: ApprovalIngest) -> None:
        """Signed operator requests in: run under the batch lock (one writer), recorded, answered on the replies."""
        while not self._stop.is_set():
            batch = await ingest.poll()
            for records in batch.values():
                for record in records:
                    try:
                        async with self._lock:
                            reply = await self.operator.handle(record.value, *signature(record))
                        if reply is not None:
                            await self.publisher.publish(self.settings.operator_replies_topic, reply.id.encode(),
                                                         reply.model_dump_json().encode())
                    except Exception:  # one bad request (even a bug) must not stop the operator consumer
                        log.exception("operator_request_failed", offset=record.offset)
            await ingest.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    async def _handle_batch(self, batch: dict[Any, list[RawRecord]]) -> None:
        async with self._lock.shared():
            if self.fleet is not None:  # a partition revoked since the poll is its new owner's now
                batch = {tp: rs for tp, rs in batch.items() if tp.partition in self.fleet.owned}
            if active():  # one span per record around all of its stages, as before
                groups: Sequence[Sequence[RawRecord | Prepared]] = [g for rs in batch.values() for g in by_key(rs)]
            else:
                groups = await self._prepare_batch(batch)
            if groups:
                async with asyncio.TaskGroup() as tg:
                    for same_key in groups:
                        tg.create_task(self._handle_partition(same_key))
            txn = self.fleet.changelog.txn if self.fleet is not None else None
            if txn is not None:  # the batch's last changelog records and its offsets: one transaction
                with txn.hold(tp.partition for tp in batch):
                    await self.recorder.flush()
                    await txn.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                return
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            if self.fleet is not None or not self.commits.interval:  # in a fleet the chunk's state reaches the
                await self.recorder.flush()  # changelog before the gate lets a rebalance or an eviction in
            if self.commits.interval:  # committed with the others, after a flush (responder/ingest/commits.py)
                self.commits.handled(offsets)
                return
        await self.ingest.commit(offsets)

    async def _prepare_batch(self, batch: dict[Any, list[RawRecord]]) -> list[list[Prepared]]:
        """Decode and match every record inline (no task, no await per record); only the records that matched
        are returned, grouped by key in order, to act concurrently. Poison is dead-lettered here."""
        found, failed = self.pipeline.prepare_batch(r for records in batch.values() for r in records)
        for record, exc in failed:
            await self._failed(record, exc)
        groups: dict[bytes | None, list[Prepared]] = {}
        for prepared in found:
            groups.setdefault(prepared.record.key, []).append(prepared)
        self.pipeline.publish_counts()
        return list(groups.values())

    async def _handle_partition(self, records: Sequence[RawRecord | Prepared]) -> None:
        for item in records:
            record = item.record if isinstance(item, Prepared) else item
            try:
                if isinstance(item, Prepared):
                    await self.pipeline.act(item)
                else:
                    await self.pipeline.handle(item)
            except Exception as exc:  # noqa: BLE001 - see _failed
                await self._failed(record, exc)

    async def _failed(self, record: RawRecord, exc: Exception) -> None:
        """A stage raised: poison and bugs are dead-lettered, not retried; a timeline failure stops the service."""
        if isinstance(exc, TimelineError):
            raise exc  # nothing may be committed once the record cannot be written: stop, redeliver on restart
        if isinstance(exc, EventRejected):
            await self._reject(record, exc.reason_code, exc.detail)
            return
        log.error("record_failed", topic=record.topic, offset=record.offset, exc_info=exc)
        await self._reject(record, "internal", f"{exc.__class__.__name__}: {exc}")

    async def _reject(self, record: RawRecord, reason: str, detail: str) -> None:
        self.deadlettered[reason] = self.deadlettered.get(reason, 0) + 1
        self.metrics.deadlettered.labels(reason).inc()
        self.pipeline.counters.rejected[reason] = self.pipeline.counters.rejected.get(reason, 0) + 1
        if self.settings.dry_run:  # a dry run never produces: the would-be dead letter is recorded instead
            self.recorder.append(EntryKind.RECORD_REJECTED, {
                "topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": reason,
                "detail": detail[:2000], "dry_run": True, "deadletter_topic": self.settings.deadletter_topic})
            log.warning("record_rejected_dry_run", reason=reason, topic=record.topic, offset=record.offset)
            return
        await self.ingest.deadletter(record, reason, detail)


def signature(record: RawRecord) -> tuple[str | None, str | None]:
    """The record's signing key id and signature headers, as text."""
    key_id, sig = record.header(KEY_ID_HEADER), record.header(SIGNATURE_HEADER)
    return (key_id.decode(errors="replace") if key_id else None, sig.decode(errors="replace") if sig else None)


def by_key(records: list[RawRecord]) -> list[list[RawRecord]]:
    """Split a partition's batch by record key, keeping order within each key.

    Records with the same key (the incident key) are handled in order; different keys run
    concurrently so their intents share one group-commit fsync. The engine also serialises
    work per incident, so a producer that keys records differently cannot make it act twice.
    """
    groups: dict[bytes | None, list[RawRecord]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    return list(groups.values())


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
