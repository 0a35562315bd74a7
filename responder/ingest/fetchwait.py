"""The alert consumer's fetch wait, short while records flow and long once the consumer has been idle.

A fetch waits at most `fetch_max_wait_ms` for records. Apache Kafka answers it as soon as one record arrives,
so there the wait only sets how often an idle consumer asks (and its CPU). The embedded Tansu broker holds a
fetch for most of the wait even when records arrive meanwhile, so there the wait is a floor under every alert's
latency (docs/kafka.md). One fixed value trades the two: short is fast on Tansu and costs CPU while idle, long
is cheap while idle and slow on Tansu.

So the wait adapts: `busy_ms` while records keep coming, `idle_ms` once no record came for `idle_after`
seconds (and no partition is paused for backpressure, which is not idleness). The first record after a quiet
spell waits for at most one idle fetch on Tansu; on Apache Kafka it waits for nothing. aiokafka reads the wait
from its fetcher when it builds each fetch request, so a change applies from the next fetch on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

IDLE_AFTER = 1.0  # seconds without a record before a consumer counts as idle


class FetchWait:
    """Sets an aiokafka consumer's fetch wait from what its polls return."""

    def __init__(self, consumer: Any, *, busy_ms: int, idle_ms: int, idle_after: float = IDLE_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.consumer, self.busy_ms, self.idle_ms = consumer, busy_ms, max(busy_ms, idle_ms)
        self.idle_after, self.clock = idle_after, clock
        self._last = clock()
        self.current = busy_ms
        self.switches = 0

    def observe(self, records: int, paused: bool = False) -> None:
        """A poll returned `records` records (`paused`: some partition is paused for backpressure)."""
        now = self.clock()
        if records or paused:
            self._last = now
            self._set(self.busy_ms)
        elif now - self._last >= self.idle_after:
            self._set(self.idle_ms)

    def _set(self, wait_ms: int) -> None:
        if wait_ms == self.current:
            return
        fetcher = getattr(self.consumer, "_fetcher", None)  # created by start(); aiokafka has no public setter
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            return
        fetcher._fetch_max_wait_ms = wait_ms
        self.current = wait_ms
        self.switches += 1
        log.debug("kafka_fetch_wait", wait_ms=wait_ms)
