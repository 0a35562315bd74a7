"""The alert consumer's fetch wait: short while records flow, long once idle (responder/ingest/fetchwait.py)."""

from __future__ import annotations

from types import SimpleNamespace

from responder.ingest.fetchwait import FetchWait
from responder.ingest.kafka import KafkaIngest


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _consumer(wait_ms: int) -> SimpleNamespace:
    return SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=wait_ms))


def test_idle_consumer_waits_longer_and_a_record_makes_it_short_again() -> None:
    """No record for a second switches the fetcher to the idle wait; the next record switches it back."""
    clock, consumer = Clock(), _consumer(20)
    wait = FetchWait(consumer, busy_ms=20, idle_ms=250, idle_after=1.0, clock=clock)
    clock.now += 0.5
    wait.observe(0)
    assert consumer._fetcher._fetch_max_wait_ms == 20  # not idle for long enough yet
    clock.now += 0.6
    wait.observe(0)
    assert consumer._fetcher._fetch_max_wait_ms == 250
    wait.observe(3)
    assert consumer._fetcher._fetch_max_wait_ms == 20
    assert wait.switches == 2


def test_a_paused_partition_is_not_idleness() -> None:
    """Empty polls while a partition is paused for backpressure keep the short wait."""
    clock, consumer = Clock(), _consumer(20)
    wait = FetchWait(consumer, busy_ms=20, idle_ms=250, idle_after=1.0, clock=clock)
    clock.now += 5
    wait.observe(0, paused=True)
    assert consumer._fetcher._fetch_max_wait_ms == 20


def test_a_consumer_not_started_yet_is_left_alone() -> None:
    """Before start() aiokafka has no fetcher: nothing is set, and the switch happens once it exists."""
    clock, consumer = Clock(), SimpleNamespace(_fetcher=None)
    wait = FetchWait(consumer, busy_ms=20, idle_ms=250, idle_after=1.0, clock=clock)
    clock.now += 2
    wait.observe(0)
    assert wait.current == 20
    consumer._fetcher = SimpleNamespace(_fetch_max_wait_ms=20)
    wait.observe(0)
    assert consumer._fetcher._fetch_max_wait_ms == 250


async def test_the_alert_consumer_switches_its_fetcher_from_its_polls() -> None:
    """KafkaIngest.poll feeds the fetch wait: an empty poll past the idle time sets the idle wait on the fetcher."""

    ingest = KafkaIngest("127.0.0.1:1", ["alerts"], "g", "dlq", fetch_max_wait_ms=10, fetch_idle_wait_ms=250)
    assert ingest.fetch_wait is not None
    fetcher = SimpleNamespace(_fetch_max_wait_ms=10)
    ingest.consumer._fetcher = fetcher  # what start() creates

    async def nothing(**_: object) -> dict[object, list[object]]:
        return {}

    ingest.consumer.getmany = nothing
    ingest.fetch_wait.idle_after = 0.0
    assert await ingest.poll() == {}
    assert fetcher._fetch_max_wait_ms == 250
    fixed = KafkaIngest("127.0.0.1:1", ["alerts"], "g", "dlq")
    assert fixed.fetch_wait is None  # no idle wait given: the wait stays fixed
    for client in (ingest, fixed):
        client.consumer._fetcher = None
        await client.consumer.stop()
        await client.producer.stop()
