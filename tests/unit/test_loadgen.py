"""bench/_loadgen.py, the latency benchmark's load generator: same records, same partitions, none lost in batches."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from tests.findings import envelope_bytes, guardduty_finding

_spec = importlib.util.spec_from_file_location("bench_loadgen", Path(__file__).parents[2] / "bench" / "_loadgen.py")
assert _spec is not None
assert _spec.loader is not None
loadgen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loadgen)


class FakeProducer:
    """create_batch/send_batch of AIOKafkaProducer with real batch builders; remembers what was submitted."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, Any]] = []

    def create_batch(self) -> Any:
        return BatchBuilder(16384, 0)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert topic == "lat"
        self.sent.append((partition, batch))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def contents(batch: Any) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) of each record in a built batch."""
    records = MemoryRecords(bytes(batch._build())).next_batch()
    assert records is not None
    return [(r.key, r.value, list(r.headers)) for r in records]


def test_partition_is_the_default_partitioners() -> None:
    """Each record key goes to the partition aiokafka's DefaultPartitioner picks, for 3 and for 8 partitions."""
    for partitions in ([0, 1, 2], list(range(8))):
        keys = [loadgen.key_of("L", i).encode() for i in range(3000)]
        mine = [loadgen.partition_of(k, partitions) for k in keys]
        assert mine == [DefaultPartitioner()(k, partitions, partitions) for k in keys]
        assert set(mine) == set(partitions)


def test_records_are_the_findings_envelopes() -> None:
    """Record i is byte for byte the envelope tests.findings builds for its key and finding id."""
    recs = loadgen.records(loadgen.template(), "L", 5, [0, 1, 2])
    for i, (partition, key, value) in enumerate(recs):
        assert key == loadgen.key_of("L", i).encode()
        assert value == envelope_bytes(guardduty_finding(key.decode(), finding_id=f"L-{i}"))
        assert partition == loadgen.partition_of(key, [0, 1, 2])


async def test_a_record_joins_its_partitions_open_batch_until_the_producer_takes_it() -> None:
    """Records join their partition's untaken batch; once it is built (taken) the next starts a new one; none lost."""
    producer = FakeProducer()
    batches = loadgen.Batches(producer, "lat")
    head = [("bench-scheduled", b"1.5")]
    await batches.add(0, b"k0", b"v0", head)
    await batches.add(1, b"k1", b"v1", head)
    await batches.add(0, b"k2", b"v2", head)
    assert [p for p, _ in producer.sent] == [0, 1]
    first = contents(producer.sent[0][1])  # the sender takes partition 0's batch: it is built and closed
    await batches.add(0, b"k3", b"v3", head)
    await batches.add(1, b"k4", b"v4", head)
    assert [p for p, _ in producer.sent] == [0, 1, 0]
    assert first == [(b"k0", b"v0", head), (b"k2", b"v2", head)]
    assert contents(producer.sent[1][1]) == [(b"k1", b"v1", head), (b"k4", b"v4", head)]
    assert contents(producer.sent[2][1]) == [(b"k3", b"v3", head)]
    assert len(batches.delivered) == 3
