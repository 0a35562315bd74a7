"""Prometheus metrics of `responder run`, and the small HTTP endpoint that serves them.

Stage counters are incremented by the pipeline and service; what the engine did (steps and step failures, guard
trips, matches, alert → dispatch) is read off the timeline by `TimelineMetrics`, so the engine itself exports
nothing and the step counts always agree with the `step.result` entries.

`/metrics` (Prometheus text format), `/healthz` (the loop answers) and `/readyz` (consuming) are served
on `metrics_host:metrics_port` (127.0.0.1 by default) when `metrics_port` is set, by `responder.metrics_server`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from responder.engine.approvals import TIMED_OUT
from responder.models.timeline import EntryKind, TimelineEntry
from responder.partition_series import PartitionSeries

# when the record being handled reached Kafka (epoch seconds); set by the pipeline for its task
ALERT_AT: ContextVar[float | None] = ContextVar("responder_alert_at", default=None)
DISPATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FSYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The service's counters, in their own registry (so several services can live in one process)."""

    def __init__(self, mirror: Any = None) -> None:
        """`mirror`: the timeline's Kafka mirror (`responder.ingest.mirror.KafkaMirror`), read at each scrape."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter("responder_records", "Raw records consumed", ["topic"], registry=self.registry)
        self.events = Counter("responder_events", "Events normalised", ["source"], registry=self.registry)
        self.matched = Counter("responder_events_matched", "Events that matched at least one runbook",
                               registry=self.registry)
        self.deadlettered = Counter("responder_deadlettered", "Records sent to the dead-letter topic", ["reason"],
                                    registry=self.registry)
        self.authenticated = Counter("responder_records_authenticated", "Records with a valid HMAC signature",
                                     ["key_id"], registry=self.registry)
        r = self.registry
        self.partitions = PartitionSeries(r)  # consumer lag and backpressure, per partition, removed as it leaves
        self.event_outcomes = Counter("responder_event_outcomes", "Events by source and outcome (matched, unmatched)",
                                      ["source", "outcome"], registry=r)
        self.runbook_matches = Counter("responder_runbook_matches", "Events matched, by runbook", ["runbook"],
                                       registry=r)
        self.steps = Counter("responder_steps", "Step results by runbook, actuator and outcome (ok, failed, ...)",
                             ["runbook", "actuator", "outcome"], registry=r)
        self.guard_trips = Counter("responder_guard_trips", "Guards that refused automatic execution", ["guard"],
                                   registry=r)
        self.approvals_parked = Gauge("responder_approvals_parked", "Steps waiting for a human decision",
                                      registry=r)
        self.approval_requests_unsent = Gauge(
            "responder_approval_requests_unsent", "Parked steps whose approval request Kafka did not take: published "
            "again every 30 s, none of them in `approvals pending` until then (approval_request_unsent)", registry=r)
        self.alert_to_dispatch = Histogram("responder_alert_to_dispatch_seconds",
                                           "From the alert reaching Kafka to its step's intent being durable",
                                           buckets=DISPATCH_BUCKETS, registry=r)
        self.timeline_fsync = Histogram("responder_timeline_fsync_seconds", "Timeline write + fdatasync",
                                        buckets=FSYNC_BUCKETS, registry=r)
        self.step_failures = Counter("responder_step_failures", "Step results that failed or were refused",
                                     ["runbook", "actuator"], registry=self.registry)
        self.escalation_failures = Counter("responder_escalation_failures", "on_failure (escalation) step results "
                                           "that failed, were refused or timed out, and failures no escalation step "
                                           "could tell anyone of (escalation.missed): a failure nobody was told of",
                                           ["runbook", "actuator"], registry=r)
        self.refused = Counter("responder_decisions_refused", "Decisions and operator requests refused (forged, "
                               "replayed, malformed, ...), by reason class: recorded or only counted", ["reason"],
                               registry=r)
        self.started = Gauge("responder_start_time_seconds", "When this service's counters started from zero (epoch "
                             "seconds): the process start, or its rebuild after a fence", registry=r)
        self.started.set(time.time())
        self.changelog_missing = Gauge("responder_changelog_partitions_missing", "Alert partitions not consumed: "
                                       "the changelog has no partition for them and growing it failed (fleet mode, "
                                       "docs/fleet.md)", registry=r)
        self.group_shared = Gauge("responder_group_shared_without_fleet", "1 while other members share this "
                                  "replica's consumer group but RESPONDER_CHANGELOG_TOPIC is unset (not a fleet: "
                                  "approvals reach the wrong replica, docs/fleet.md)", registry=r)
        self.consumer_rebuilds = Counter("responder_consumer_rebuilds", "Consumers closed and created again after "
                                         "their group coordinator died (alerts, approvals, operator)", ["consumer"],
                                         registry=r)
        if mirror is not None:
            Gauge("responder_timeline_mirror_pending", "Timeline lines durable and not in the Kafka mirror yet",
                  registry=r).set_function(lambda: mirror.pending)
            Gauge("responder_timeline_mirror_dropped", "Timeline lines the mirror topic refused for good (too large, "
                  "or another refusal of the line for 30 s): logged, never mirrored",
                  registry=r).set_function(lambda: mirror.dropped)
            Gauge("responder_timeline_mirror_overflowed", "Timeline lines dropped from the Kafka mirror's full queue "
                  "(timeline_mirror_max_pending): never mirrored", registry=r).set_function(lambda: mirror.overflowed)
        self.rejoins = Counter("responder_replica_rejoins", "Times this process rejoined its group after a fence or "
                               "a failed changelog transaction (carried from service to service: "
                               "responder/service/rejoin.py)", registry=r)

    def start_at_zero(self, topics: Iterable[str], consumers: Iterable[str]) -> None:
        """The labelled series an alert rule reads from the start, at 0 before the first count: records per topic
        (`ResponderNoEvents`: with no series, `sum(increase(...)) == 0` is empty, never true) and rebuilds per consumer
        (`ResponderConsumerRebuilt`: a series first scraped at 1 shows no `increase()`)."""
        for topic in topics:
            self.records.labels(topic)
        for consumer in consumers:
            self.consumer_rebuilds.labels(consumer)

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample (`responder_deadlettered_total`, reason=...), 0 when absent."""
        got = self.registry.get_sample_value(name, labels)
        return float(got) if got is not None else 0.0

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe(a)` for each amount in order, with one update per bucket where this prometheus_client's
    `Histogram` keeps what `_fold` writes: the same bucket counts and the same float sum (added in the same order),
    without `observe`'s two locked updates and its Python loop over the bounds per amount. Whether it does is asked
    once per histogram class (`_folds`); a class whose internals differ (another prometheus_client release) is
    observed one amount at a time, never written wrongly. Amounts are numbers, never NaN (`observe` puts NaN in no
    bucket)."""
    kind = type(histogram)
    folds = _FOLDS.get(kind)
    if folds is None:
        folds = _FOLDS[kind] = _folds(kind)
    if folds:
        _fold(histogram, amounts)
    else:
        for amount in amounts:
            histogram.observe(amount)


def _fold(histogram: Histogram, amounts: Sequence[float]) -> None:
    """The adapter over prometheus_client's own fields of an unlabelled histogram (`_upper_bounds`, `_buckets`,
    `_sum`: `observe` puts an amount in the first bucket whose bound is ≥ it)."""
    bounds: Sequence[float] = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = histogram._sum.get()
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1
        total += amount
    histogram._sum.set(total)
    for bucket, n in zip(histogram._buckets, counts, strict=True):
        if n:
            bucket.inc(n)


_FOLDS: dict[type[Histogram], bool] = {}  # histogram class → whether `_fold` gives its `observe`'s samples
_PROBE = (0.0, 0.005, 0.0051, 0.1, 0.2, 0.3, 61.5, 1e6)  # on a bound, past one, past the last; an order-bound sum


def _folds(kind: type[Histogram]) -> bool:
    """Whether `_fold` into a `kind` gives the samples `observe` of each amount in turn gives (tried on two
    unregistered histograms: bucket counts, count and sum bit for bit)."""
    try:
        each, folded = (kind("probe", "", buckets=DISPATCH_BUCKETS, registry=None) for _ in range(2))
        for amount in _PROBE:
            each.observe(amount)
        _fold(folded, _PROBE)
        seen = [[(s.name, s.labels, s.value) for s in family.samples if not s.name.endswith("_created")]
                for h in (each, folded) for family in h.collect()]
    except Exception:  # noqa: BLE001 - other fields, or none: `observe` one amount at a time
        return False
    return len(seen) == 2 and seen[0] == seen[1]


FAILED_OUTCOMES = frozenset({"failed", "refused"})
# the kinds `TimelineMetrics` reads, as plain module constants: on Python 3.11 each `EntryKind.X` read goes through
# `EnumType.__getattr__`'s Python-level hook (≈ 0.5 µs), and `accept` compares every durable entry with them
_STEP_RESULT, _STEP_INTENT = EntryKind.STEP_RESULT, EntryKind.STEP_INTENT
_ESCALATION_MISSED, _GUARD_TRIPPED, _EVENT_MATCHED = EntryKind.ESCALATION_MISSED, EntryKind.GUARD_TRIPPED, \
    EntryKind.EVENT_MATCHED


class TimelineMetrics:
    """Counts what the engine recorded: a Recorder observer (at append) and durable sink (after the fsync).

    `runbook_of(incident id)` names the runbook of a step result's incident (the engine's state knows every live
    incident, recovered and handed-over ones included); "" when it does not (an operator command's step).
    """

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time,
                 runbook_of: Callable[[str], str | None] | None = None) -> None:
        self.metrics = metrics
        self.clock = clock
        self.runbook_of = runbook_of
        self._alert_at: dict[int, float] = {}
        self._children: dict[tuple[Any, ...], Any] = {}  # labelled children: labels() costs ~5 us per entry

    def _inc(self, metric: Counter, *labels: str, amount: int = 1) -> None:
        child = self._children.get((metric, *labels))
        if child is None:
            child = self._children[(metric, *labels)] = metric.labels(*labels)
        child.inc(amount)

    def observe(self, entry: TimelineEntry) -> None:
        """At append, in the appending task: remember when the alert behind a step intent arrived."""
        if entry.kind == _STEP_INTENT:
            at = ALERT_AT.get()
            if at is not None:
                self._alert_at[entry.seq] = at

    def accept(self, items: Sequence[tuple[TimelineEntry, bytes]]) -> None:
        """Durable entries: count steps, trips and matches; an intent durable now is a dispatch.

        Counts are summed over the batch and added once per label set, and the alert → dispatch samples in one
        `observe_all` (the same totals at every scrape: a scrape runs on the loop, never inside this call); the
        intents of the batch became durable at one moment, so the clock is read once for them.
        """
        m, counts, now, waited = self.metrics, dict[tuple[Any, ...], int](), None, list[float]()
        for entry, _ in items:
            kind = entry.kind
            if kind == _STEP_RESULT:
                body: dict[str, Any] = entry.body
                incident = entry.incident
                runbook = (self.runbook_of(incident) if self.runbook_of and incident else None) or ""
                actuator, outcome = str(body.get("actuator", "")), str(body.get("status", ""))
                key: tuple[Any, ...] = (m.steps, runbook, actuator, outcome)
                counts[key] = counts.get(key, 0) + 1
                if outcome in FAILED_OUTCOMES:
                    key = (m.step_failures, runbook, actuator)
                    counts[key] = counts.get(key, 0) + 1
                # `<escalation>.<failed step>` (step ids are kebab-case) that failed, or lapsed: nobody was told
                if (outcome in FAILED_OUTCOMES or body.get("code") == TIMED_OUT) and "." in str(body.get("step", "")):
                    key = (m.escalation_failures, runbook, actuator)
                    counts[key] = counts.get(key, 0) + 1
            elif kind == _ESCALATION_MISSED and not entry.body.get("dry_run"):
                # a failure no escalation step told anyone of: labelled with the failed step's actuator
                runbook = (self.runbook_of(entry.incident) if self.runbook_of and entry.incident else None) or ""
                key = (m.escalation_failures, runbook, str(entry.body.get("actuator", "")))
                counts[key] = counts.get(key, 0) + 1
            elif kind == _STEP_INTENT:
                at = self._alert_at.pop(entry.seq, None)
                if at is not None:
                    now = self.clock() if now is None else now
                    waited.append(max(0.0, now - at))
            elif kind == _GUARD_TRIPPED:
                key = (m.guard_trips, str(entry.body.get("guard", "")))
                counts[key] = counts.get(key, 0) + 1
            elif kind == _EVENT_MATCHED:
                key = (m.runbook_matches, str(entry.body.get("runbook", "")).split("@", 1)[0])
                counts[key] = counts.get(key, 0) + 1
        for (metric, *labels), n in counts.items():
            self._inc(metric, *labels, amount=n)
        if waited:
            observe_all(m.alert_to_dispatch, waited)
