"""Metrics that read or time other parts of the service: the fsync timer around the timeline's store, and the
partitions held until their state is restored, read at each scrape (see responder/metrics.py for the registry)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, Metric


class TimedSync:
    """Wraps a timeline store so every `sync` (fdatasync) is timed into `responder_timeline_fsync_seconds`."""

    def __init__(self, store: Any, histogram: Histogram) -> None:
        self.store = store
        self.histogram = histogram

    def read(self) -> bytes:
        """Delegate."""
        return bytes(self.store.read())

    def write(self, data: bytes) -> None:
        """Delegate."""
        self.store.write(data)

    def sync(self) -> None:
        """Delegate, timed."""
        with self.histogram.time():
            self.store.sync()

    def close(self) -> None:
        """Delegate."""
        self.store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class HeldPartitions:
    """`responder_partition_held{topic,partition}`: 1 for each partition paused until its state is restored (a fleet
    replica restoring it from the changelog, or retrying a restore that failed), read from `held` at each scrape, so
    it is never stale; no sample for the others. Backpressure pauses are `responder_partition_paused`."""

    def __init__(self, held: Callable[[], Collection[tuple[str, int]]]) -> None:
        self.held = held

    def describe(self) -> list[Metric]:
        """No description up front: the samples are read at each scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The held partitions now."""
        family = GaugeMetricFamily("responder_partition_held", "1 while the partition is held until its state is "
                                   "restored", labels=["topic", "partition"])
        for topic, partition in sorted(self.held()):
            family.add_metric([topic, str(partition)], 1)
        yield family
