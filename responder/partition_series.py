"""The per-partition series of `responder run` (consumer lag, backpressure), in the service's registry
(responder/metrics.py), and their end: a partition that leaves this replica takes its series with it.

A gauge keeps a label set's last value until it is removed, so a partition revoked while it lagged would show that lag
for ever on its old owner, and `max by (topic, partition) (responder_consumer_lag)` (`ResponderConsumerLagHigh`)
would never clear once another replica caught up. aiokafka revokes every partition at each rebalance, also those it
assigns straight back: the service removes a partition's label sets when the assignment that follows its revocation
(a rebalance, or the consumer rebuilt) leaves it out (`PartitionKeeping._on_assigned`), and all of them once its alert
consumer stopped; only then, never per record. One given back keeps its series (the lag as last seen until fetched
again: a restoring partition of a fleet is not fetched), so no gap restarts a rule's `for`.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class PartitionSeries:
    """`responder_consumer_lag`, `responder_partition_in_flight`, `responder_partition_paused` and
    `responder_partition_pauses_total`, each labelled `topic`, `partition`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.lag = Gauge("responder_consumer_lag", "Records behind the partition's high watermark",
                         ["topic", "partition"], registry=r)
        self.in_flight = Gauge("responder_partition_in_flight", "Records polled and not yet committed",
                               ["topic", "partition"], registry=r)
        self.paused = Gauge("responder_partition_paused", "1 while the partition is paused (backpressure)",
                            ["topic", "partition"], registry=r)
        self.pauses = Counter("responder_partition_pauses", "Times a partition was paused (backpressure)",
                              ["topic", "partition"], registry=r)

    def flow(self, tp: Any, in_flight: int, paused: bool, changed: bool) -> None:
        """A partition's backpressure state (the flow control's observer)."""
        labels = (str(tp[0]), str(tp[1]))
        self.in_flight.labels(*labels).set(in_flight)
        self.paused.labels(*labels).set(1 if paused else 0)
        if changed and paused:
            self.pauses.labels(*labels).inc()

    def forget(self, partitions: Iterable[Any]) -> None:
        """Partitions (`(topic, partition)` pairs, TopicPartitions) left this replica: no series of theirs from now
        on (the pauses counter too: it starts from 0 again if they come back, a reset `rate()` allows for)."""
        for tp in partitions:
            labels = (str(tp[0]), str(tp[1]))
            for metric in (self.lag, self.in_flight, self.paused, self.pauses):
                with suppress(KeyError):  # a label set it never had (prometheus_client < 0.22 raises)
                    metric.remove(*labels)

    def clear(self) -> None:
        """Every partition left (the alert consumer stopped): no partition series at all."""
        for metric in (self.lag, self.in_flight, self.paused, self.pauses):
            metric.clear()
