"""bench/pipeline.py's throughput phases time a drain from the service's first poll, as the baseline does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import pipeline as bench_pipeline


class Clock:
    """Stands for `time` in bench/pipeline.py: a wall and a CPU clock that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now

    def process_time(self) -> float:
        return self.now


class DrainedAtOnce:
    """A service whose first poll brings every record and whose one chunk takes a second: its counters go from 0
    to all at once (what the real one does when the records fit one poll, as at `--events 2000`)."""

    def __init__(self, clock: Clock, n: int) -> None:
        self.clock, self.n = clock, n
        self.ready, self.stopped = asyncio.Event(), asyncio.Event()
        self.ingest = SimpleNamespace(poll=self.poll)
        self.engine = SimpleNamespace(actions=0)
        self.pipeline = SimpleNamespace(counters=SimpleNamespace(records=0, matched=0))

    async def poll(self, timeout_ms: int = 200) -> dict[Any, list[int]]:
        return {("t", 0): list(range(self.n))}

    async def run(self) -> None:
        self.ready.set()
        batch = await self.ingest.poll()
        self.clock.now += 1.0  # the chunk's decoding, matching and commit
        self.pipeline.counters.records += sum(map(len, batch.values()))
        await self.stopped.wait()

    def request_stop(self) -> None:
        self.stopped.set()


async def test_a_drain_of_one_chunk_is_timed_from_the_poll_that_brought_it(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    """All n records counted at once after one second of work give n events/s and 1/n s of CPU each, not ~0/s."""
    clock = Clock()
    svc = DrainedAtOnce(clock, 2000)
    monkeypatch.setattr(bench_pipeline, "time", clock)
    monkeypatch.setattr(bench_pipeline, "Service", lambda *args, **kwargs: svc)
    rate, cpu_us = await bench_pipeline.pipeline("127.0.0.1:1", "nomatch", 2000, tmp_path, acting=False)
    assert (rate, cpu_us) == (2000.0, 500.0)
