"""A service's life: check and recover, start the clients, run the alert, approval and operator loops, drain, close.

`Running` is mixed into `Service` (responder/service/core.py). The alert loop (`AlertsLoop`, alertsloop.py) polls
and hands each partition's records to `Flow`, whose lanes call `BatchHandling._handle_batch`. Decisions and operator
requests have their own loops (`SignedLoops`, signed.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

import structlog

from responder import collector
from responder.exception_groups import cancel_requests
from responder.fleet_digest import fleet_digest
from responder.ingest import txnprobe
from responder.ingest.approvals import ApprovalIngest, KafkaPublisher
from responder.ingest.clients import CONNECT_TIMEOUT
from responder.ingest.kafka import KafkaIngest, ensure_topics
from responder.ingest.mirror import KafkaMirror
from responder.ingest.security import check_connection
from responder.ingest.topics import RETRY_SECONDS, await_topics, check_topics, needed_topics, notification_topics
from responder.service.alertsloop import AlertsLoop
from responder.service.signed import SignedLoops
from responder.service.starts import all_started
from responder.threadpools import ARCHIVE, pool, run_in
from responder.timeline.archive import Archiver

log = structlog.get_logger(__name__)


class Running(AlertsLoop, SignedLoops):
    """Start, consume until asked to stop, drain and close (mixed into `Service`)."""

    topic_retry_s = RETRY_SECONDS  # between two checks of the topics it writes to, while one is missing

    async def _prepare(self) -> None:
        """Everything before the clients start: refuse bad TLS/SASL, recover (a fleet member: start its changelog
        and settle its transactions, then refuse another fleet digest, which holds whether it has them), listen."""
        await check_connection(self.settings.kafka_bootstrap or "", self.kafka_options)  # bad TLS/SASL
        if self.fleet_guard is not None:
            await self.fleet_guard.ensure_table()
            await self.fleet_guard.refresh()
        if self.fleet is None:
            self._recover()
        else:
            wait = self.settings.kafka_connect_timeout
            await self.fleet.changelog.start(wait, wait_set_by=CONNECT_TIMEOUT)
            self.fleet.changelog.txn = await txnprobe.choose(
                self.settings.kafka_transactions, str(self.settings.kafka_bootstrap), self.fleet.changelog.topic,
                self.settings.group_id, options=self.kafka_options, deadline=wait, wait_set_by=CONNECT_TIMEOUT)
            if self.fleet_guard is not None:  # other runbooks/settings, or no transactions where the fleet has them
                digest = fleet_digest(self.engine.runbooks.values(), self.settings,
                                      transactions=self.fleet.changelog.txn is not None)
                await self.fleet_guard.check_digest(digest, self.recorder.writer, self.settings.fleet_adopt_digest)
        collector.tune(self.settings.max_batch)
        if self.archiver is not None:
            await run_in(pool(ARCHIVE), self.archiver.catch_up, self.recorder.store.read().splitlines())
        if self.metrics_server is not None and not self.metrics_server.listening:  # a rebuilt one kept its port
            await self.metrics_server.start()

    async def run(self) -> None:
        """Recover, consume until asked to stop, drain, close."""
        try:
            await self._prepare()
        except BaseException:  # bad TLS/SASL, another fleet digest, a broken timeline, a metrics port in use...
            try:
                await self.close_unstarted()
            except Exception as exc:  # noqa: BLE001 - the start-up's error is the one raised (what to fix)
                log.error("service_close_failed", error=f"{type(exc).__name__}: {exc}")
            raise
        shippers = [s for s in (self.archiver, self.mirror) if s is not None]
        async with asyncio.TaskGroup() as shipping:  # the archive and mirror drain after the recorder closes
            for shipper in shippers:
                shipping.create_task(shipper.run())
            failing = True  # until the loops end without an error: then a teardown failure is the one to raise
            try:
                if await self._writable_topics():  # False: stopped while a topic it writes to was missing
                    await self._consume_until_stopped()
                failing = False
            finally:
                self.ready.clear()
                cancels = cancel_requests()  # Python 3.11 leaves the loops' TaskGroup's own cancel in it: not a new one
                try:
                    await self._close_started(shippers)
                except (Exception, asyncio.CancelledError) as exc:  # a stray CancelledError (aiokafka's fetcher) too
                    if not failing or cancel_requests() > cancels:
                        raise  # a cancellation asked for during the teardown is passed on, not taken for a stray one
                    # the error that stopped the service (a fence) is the one raised, not a teardown's after it
                    log.error("service_close_failed", error=f"{type(exc).__name__}: {exc}")
        log.info("service_stopped")

    async def _consume_until_stopped(self) -> None:
        """Start the clients (the groups join at once: after a crash each may wait for its dead member's
        session), then run the alert, approval and operator loops until asked to stop or one fails."""
        wait = self.settings.kafka_connect_timeout  # RESPONDER_KAFKA_CONNECT_TIMEOUT, which each start names
        await self.publisher.start(wait, wait_set_by=CONNECT_TIMEOUT)
        self.reached_kafka = True  # these settings work (the topics checked too): a later BrokerUnreachable rejoins
        if self.operator_ingest is not None:
            await ensure_topics(str(self.settings.kafka_bootstrap), [
                self.settings.operator_requests_topic, self.settings.operator_replies_topic],
                options=self.kafka_options)
        # each start bounded, and cancelled by a stop (responder/service/starts.py): aiokafka's waits for an assignment
        approvals = functools.partial(self._started, self.approvals, "approvals", functools.partial(
            self.approvals.start, wait, wait_set_by=CONNECT_TIMEOUT))
        # a fleet member's decisions consumer (no group: nothing to wait for) fixes what it reads again, its end
        # offsets, before its alerts group joins: a decision sent while that join moves partitions is new to it
        first = self.approvals.reads_all
        if first and not await approvals():
            return
        starts = [] if first else [approvals()]
        starts.append(self._started(self.ingest, "alerts", functools.partial(
            self.ingest.start, wait, wait_set_by=CONNECT_TIMEOUT)))
        if self.operator_ingest is not None:
            starts.append(self._started(self.operator_ingest, "operator", functools.partial(
                self.operator_ingest.start, wait, wait_set_by=CONNECT_TIMEOUT)))
        if not await all_started(starts):
            return  # a stop came first: the started clients are closed as after a run
        if self._rebalance_error is not None:  # a manual assignment runs its callback inside start()
            raise self._rebalance_error
        self.ready_since = time.monotonic()  # a long healthy run resets the rejoins' backoff (rejoin.py)
        self.ready.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._alerts_loop())
            tg.create_task(self._approvals_loop())
            if self.operator_ingest is not None:
                tg.create_task(self._operator_loop(self.operator_ingest))

    async def _writable_topics(self) -> bool:
        """Wait until every topic the service writes to exists (responder/ingest/topics.py; the log and `/readyz`
        say which is missing and how to create it); False when asked to stop first."""
        def report(reason: str | None) -> None:
            self.topics_missing = reason

        def warn(reason: str | None) -> None:
            self.topics_warning = reason

        notifications = notification_topics(self.engine.runbooks.values())
        needed, bootstrap = needed_topics(self.settings, notifications), str(self.settings.kafka_bootstrap)
        return await await_topics(
            lambda: check_topics(bootstrap, needed, self.settings.topics, options=self.kafka_options,
                                 deadline=self.settings.kafka_connect_timeout,
                                 wait_set_by=CONNECT_TIMEOUT),
            self._stop, report, retry_s=self.topic_retry_s, warn=warn)

    async def _close_started(self, shippers: list[Archiver | KafkaMirror]) -> None:
        """Make the fleet's state durable while this replica is still a member of its group, stop the clients, make
        what they left durable, stop the changelog and the metrics server, close the timeline and the shippers, in
        that order. Each step runs even when one before it failed, and the first failure is raised once all ran
        (later ones are logged): a fenced replica's flush fails, and its timeline lock, port and producers must
        still be released before `serve_rejoining` builds the next service (tests/unit/test_rejoin.py).

        A fleet member flushes before its alert consumer leaves the group: once it left, the group gives its
        partitions to another member, whose restore would not read a changelog write landing after it, and its lease
        has ended (`MembershipLease.stop`): nothing of its partitions is written after that. The flush's changelog
        writes are bounded by their deadline; a stalled timeline disk holds it (as without a fleet) until aiokafka,
        polled no more, leaves the group itself after the poll interval, which ends the lease too."""
        clients: list[KafkaIngest | ApprovalIngest | KafkaPublisher] = [self.ingest, self.approvals]
        if self.operator_ingest is not None:
            clients.append(self.operator_ingest)
        self._stop.set()  # an assignment during the teardown (a join in progress) starts no restore
        steps: list[Callable[[], Awaitable[None] | None]] = [self._end_restore]  # started before the loops ran
        fleet, member_flush_failed = self.fleet, False  # a failed flush fails the next one: raised once, by the first

        async def as_member() -> None:
            nonlocal member_flush_failed
            try:
                await self.recorder.flush()
            except BaseException:
                member_flush_failed = True
                raise

        async def what_is_left() -> None:
            if not member_flush_failed:
                await self.recorder.flush()

        if fleet is not None:  # still a member: its lease asked as it stands
            steps.append(as_member)
        steps += [client.stop for client in (*clients, self.publisher)]
        steps.append(self.metrics.partitions.clear)  # out of the group: its partitions' series are others' now
        steps.append(self.engine.decisions.refusals.close)  # the counted refusals' summary, before the last flush
        if fleet is not None:  # what the clients' stop and the summary appended (nothing of the partitions' in the
            steps += [what_is_left, fleet.changelog.stop]  # common case: the loops had ended; their lease has ended)
        if self.metrics_server is not None and not self.shares_metrics_server:
            steps.append(self.metrics_server.stop)
        steps += [self.recorder.close, *(shipper.close for shipper in shippers)]
        await _each(steps)

    async def close_unstarted(self) -> None:
        """Close the Kafka clients `__init__` built, for a service that never started them (or failed to start), and
        release the timeline (what recovery appended made durable, its lock released, nothing sealed).

        aiokafka warns `Unclosed AIOKafkaConsumer` when one is collected unclosed, even if it never connected. Each
        is closed even when one before it fails to; the first failure is raised once all were (later ones logged).
        The lock is released so that a service built next in this process (`serve_rejoining`) can open the file.
        """
        steps: list[Callable[[], Awaitable[None] | None]] = [self.recorder.release]  # before the mirror's producer
        steps += [client.stop for client in (self.ingest, self.approvals, self.operator_ingest, self.publisher)
                  if client is not None]
        if self.mirror is not None:
            steps.append(self.mirror.producer.stop)
        if self.fleet is not None:
            steps.append(self.fleet.changelog.stop)
        await _each(steps)


async def _each(steps: list[Callable[[], Awaitable[None] | None]]) -> None:
    """Run every step, in order, even when one before it failed; then raise the first failure (later ones are
    logged): a teardown leaves nothing open because of another part's error."""
    first: BaseException | None = None
    for step in steps:
        try:
            done = step()
            if done is not None:
                await done
        except BaseException as exc:  # noqa: BLE001 - raised below, once every step ran
            if first is not None:
                log.error("service_close_step_failed", error=f"{type(exc).__name__}: {exc}")
            first = first or exc
    if first is not None:
        raise first
