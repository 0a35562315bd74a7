"""A fenced replica rejoins its group in-process, as a Kafka Streams instance does after its tasks were lost.

A replica is fenced (`replica_fenced`, responder/ingest/transactions.py) when another one took its partition while
it was paused or starved past its session: its next changelog write or offset commit is refused, so it stops
before the actuator call that intent was for. Its in-memory state is stale from then on. `serve_rejoining` drops
the whole service (state, clients, producers, the timeline file's lock) and builds a new one from the same
settings, which joins the group again and restores whatever partitions it is given from the changelog (a single
instance, with no changelog, recovers its state from its own timeline instead, as at any start: `replica_rejoining`
and `/readyz` say which).

A partition's changelog transaction that failed for good without a fence (`TransactionFailed`: aiokafka's producer
died, as when a killed broker ends its sender routine) is handled the same way (`reason=transaction_failed`), not by
a new producer in place: initialising the transactional id again after the group may have moved the partition would
fence its rightful owner. The aborted records are redone by the partition's next owner, from the intents committed
before acting and the offsets last committed (a step key's result, or `verify()`, keeps each effect once).

A service that cannot reach Kafka (`BrokerUnreachable`: no broker answered within `kafka_connect_timeout`, or the
cluster answered and was not ready within its deadline) once its settings reached it is handled the same way too
(`reason=kafka_unreachable`): one built after a rejoin, at its start or later, and the first one once a client of it
started (`reached_kafka`, responder/service/running.py), as when a consumer rebuilt after a dead coordinator starts
again during a cluster outage. The cluster is down, not the settings bad, so it is no bad setting (exit 3) but one
more rejoin. A first service that never reached Kafka is not: a bootstrap never reached is a bad setting, and
`responder run` exits 3 as before. A changelog write outside transactions not acknowledged within its deadline
(`ChangelogWriteTimedOut`, written to a partition the service owned) is the same cut-off Kafka, handled the same way
since 2026-12-07 (exit 3 before).

Only those are handled so: any other failure (a restore's ChangelogError, another ConfigError too), or a stop requested
meanwhile, ends the loop as before. More than `rejoins` of them within an hour end it with the kind of the last one,
`ReplicaFenced`, `TransactionFailed` or `StillUnreachable` (a TransactionFailed), which `responder run` turns into exit
75 (EX_TEMPFAIL), for a supervisor to start the process again: a replica fenced or failed that often is starved or cut
off, and a fresh process is the better cure.

The metrics server (`/healthz`, `/readyz`, `/metrics`) is the process's, not a service's: `rebuilds` hands the same one
to each service it builds, which answers for it while it runs. Between two services `/healthz` stays 200 (the process is
alive and rejoining: a liveness probe must not kill it), `/readyz` is 503 saying so, and `/metrics` holds a fresh
`Metrics()`: `responder_replica_rejoins_total` and the series without labels (at zero; the start time the rejoin's), but
no labelled one; the next service's counters start from zero, as after any restart, except that one, which goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from responder.metrics import Metrics
from responder.metrics_server import MetricsServer
from responder.service.core import Service
from responder.service.rejoinreasons import WHY, WINDOW_S, error_line, exhausted, rejoin_reason, stopped
from responder.settings import Settings

log = structlog.get_logger(__name__)

HEALTHY_S = 60.0
"""A service ready this many seconds when it fails ran healthy: the next rejoin waits `backoff` again, not the delay
doubled by the rejoins before it. Longer than a flapping replica's cycle (the 10 s backoff at most, a session timeout
of 10 to 45 s, the 30 s connect timeout of a start during an outage, never ready)."""
def health_server(settings: Settings) -> MetricsServer | None:
    """The process's metrics server (None when `metrics_port` is unset), for `rebuilds(metrics_server=...)`: each
    service built attaches it; the first one starts it where a lone service starts its own (after recovery), and
    `serve_rejoining` stops it when serving ends."""
    if settings.metrics_port is None:
        return None
    return MetricsServer(Metrics(), lambda: False, settings.metrics_host, settings.metrics_port,
                         why=lambda: "starting")


def rebuilds(settings: Settings, **kwargs: Any) -> Callable[[Service | None], Service]:
    """What `serve_rejoining` builds services with: the first from `settings`; each one after a fence with the
    runbooks the first one loaded (a rejoin is no hot reload: the directory may have changed under a running
    fleet, whose digest must not move) and without `fleet_adopt_digest` (only a deliberate start adopts). A
    `metrics_server` in `kwargs` is handed to every one of them (see `health_server`), and each one's
    `responder_replica_rejoins_total` goes on from the fenced one's, so the counter never falls."""
    def build(previous: Service | None) -> Service:
        if previous is None:
            return Service(settings, **kwargs)
        service = Service(settings.model_copy(update={"fleet_adopt_digest": False}),
                          **{**kwargs, "runbooks": list(previous.engine.runbooks.values())})
        # one count for the process: the new service's counter starts where the fenced one's ended, plus this one
        service.metrics.rejoins.inc(previous.metrics.value("responder_replica_rejoins_total") + 1)
        return service
    return build


def _recovers(service: object) -> str:
    """How the service built after `service` gets its state back: a fleet replica's from the changelog, a single
    instance's (no changelog) from its own timeline, as at any start."""
    if getattr(service, "fleet", "") is None:  # no changelog (a stand-in without `fleet` reads as a replica)
        return "recovers it from its timeline"
    return "restores from the changelog"


def _rejoining(health: MetricsServer, rejoin: int, rejoins: int, delay: float, reason: str = "fenced",
               recovers: str = "restores from the changelog") -> None:
    """Between two services: /readyz says why it is 503 (`reason`: see `WHY`) and how the next one gets its state
    (`recovers`: see `_recovers`), and /metrics shows a fresh registry: the rejoin count and the unlabelled series (at
    zero, the start time aside), no labelled one (the dropped service's partition gauges are another replica's now, or
    soon)."""
    why = (f"rejoining after {WHY[reason]} ({rejoin} of {rejoins} rejoins this hour): the state was dropped; a new "
           f"member joins the group in {delay:g} s and {recovers}")
    between = Metrics()
    between.rejoins.inc(health.metrics.value("responder_replica_rejoins_total") + 1)  # as the next one will have
    health.attach(between, lambda: False, functools.partial(str, why))


async def serve_rejoining(build: Callable[[Service | None], Service], *, rejoins: int, backoff: float = 1.0,
                          stop: asyncio.Event | None = None) -> None:
    """Run `build(None)` until SIGTERM or SIGINT, as `serve` does; when it ends fenced, with a failed transaction or
    a changelog write past its deadline, or cannot reach Kafka once its settings reached it (built after a rejoin, or
    `reached_kafka`: `rejoin_reason`), build and run a new one (`build(the dropped one)`, see `rebuilds`) after
    `backoff` seconds (doubled after each rejoin, at most 10; `backoff` again when the one that failed was ready
    `HEALTHY_S`), at most `rejoins` times an hour for all kinds together. A stop asked for meanwhile ends serving
    cleanly: the partitions are another replica's already, or their uncommitted records are redone by their next
    owner, as after a crash. `stop`, when given, is one more way to ask for it: setting it does what SIGTERM does
    (for a caller that must not signal its own process, as a test under pytest-xdist). A metrics server the services
    share (`shares_metrics_server`) is this loop's: it says "rejoining" between two services, and is stopped when
    serving ends, however it ends."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    current: list[Service] = []

    def on_signal() -> None:
        stopping.set()
        for service in current:
            service.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    watching = None if stop is None else asyncio.ensure_future(_when_set(stop, on_signal))
    recent: deque[tuple[float, str]] = deque()  # (when, reason) of each rejoin within the window
    delay, previous = backoff, None
    health: MetricsServer | None = None
    try:
        while not stopping.is_set():
            current[:] = [build(previous)]
            if getattr(current[0], "shares_metrics_server", False):
                health = current[0].metrics_server
            try:
                await current[0].run()
                return
            except BaseException as exc:
                reached = previous is not None or bool(getattr(current[0], "reached_kafka", False))
                reason = rejoin_reason(exc, rebuilt=reached)
                if reason is None:
                    raise
                if stopping.is_set():
                    stopped(reason, exc)
                    return
                now = time.monotonic()
                if (since := getattr(current[0], "ready_since", None)) is not None and now - since >= HEALTHY_S:
                    delay = backoff  # it ran healthy: this failure is not the last one's again
                while recent and now - recent[0][0] > WINDOW_S:
                    recent.popleft()
                recent.append((now, reason))
                if len(recent) > rejoins:
                    raise exhausted([r for _, r in recent], rejoins, error_line(exc)) from exc
                recovers = _recovers(current[0])
                log.warning("replica_rejoining", reason=reason, rejoin=len(recent), of=rejoins, in_s=delay,
                            error=error_line(exc), detail=f"state dropped; a new member joins the group and {recovers}")
                if health is not None:
                    _rejoining(health, len(recent), rejoins, delay, reason, recovers)
            previous = current.pop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(10.0, delay * 2)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        try:
            if watching is not None:
                watching.cancel()
                await asyncio.wait([watching])  # its cancellation, not ours: ours is raised, never swallowed
        finally:  # a cancel of ours meanwhile too: the metrics server is stopped however serving ends
            if health is not None:
                await health.stop()


async def _when_set(event: asyncio.Event, then: Callable[[], None]) -> None:
    """`then()` once `event` is set (`serve_rejoining`'s `stop`)."""
    await event.wait()
    then()
