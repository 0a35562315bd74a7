"""Open-loop load generator for bench/pipeline.py, run as its own process (`make bench` skips `_*.py`).

    python bench/_loadgen.py BOOTSTRAP TOPIC --rate R --count N [--start-at EPOCH] [--template FILE] [--tick-ms T]
                             --out FILE.json

Record i is due at `start + i / rate` (start: `--start-at`, or 0.5 s after the producer connected if
later) and is stamped with that *scheduled* time (header `bench-scheduled`), not the time it was actually
sent: a producer that falls behind does not hide the delay (no coordinated omission), and how late each
record was handed over is reported (`late_p99_ms`). Each loop turn hands every record due by now to the
producer, then sleeps until the next one is due.

It stands for producers that run on other machines, so it is kept cheap. Record i's key and value are
built before the load from the envelope template (`--template`, written by the parent, so this process
does not import `tests.findings` → `responder.demo` → boto3: ~1.6 s of CPU), and its partition is
computed once, as aiokafka's default partitioner would (murmur2 of the key). A due record is appended
straight to its partition's open batch (`create_batch`/`send_batch`): the batch the producer has not
taken yet, as `send()` would, or a new one, timestamped when appended. So there is no per-record
`send()` (its coroutine, futures and accumulator look-ups) and no record waits for a later request.
What is left during the load is the loop's wake-up per record and a produce request per batch; `--tick-ms T`
wakes at most every T ms (fewer of both), so a record may wait up to T ms, counted in its latency.

Writes {"scheduled": {key: epoch}, "cpu_s", "startup_cpu_s", "load_cpu_s", "load_s", "batches",
"rss_mib", "late_p99_ms"} to FILE: `load_cpu_s` is the CPU from the first send to the end of the flush,
`startup_cpu_s` everything before the first send (imports, building the records, connecting).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

ROOT = Path(__file__).resolve().parent.parent
KEY_MARK, ID_MARK = b"AKIAXXXXXXXXXXXXXXXX", b"FINDING-ID-XXXXXXXXXXXXXXXX"


def template() -> bytes:
    """The EventBridge envelope records are made from (slow: imports tests.findings, so the parent calls it)."""
    sys.path.insert(0, str(ROOT))
    from tests.findings import envelope_bytes, guardduty_finding

    return envelope_bytes(guardduty_finding(KEY_MARK.decode(), finding_id=ID_MARK.decode()))


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would carry over the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def key_of(prefix: str, i: int) -> str:
    """The access key id (and record key) of record i: the actuator reports it, so latency joins on it."""
    return f"AKIA{prefix}{i:012d}"[:20]


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka's DefaultPartitioner (and the Java client's) picks for `key`."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def records(template: bytes, prefix: str, count: int, partitions: list[int]) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of each record, the value being the template with its key and finding id."""
    out = []
    for i in range(count):
        key = key_of(prefix, i).encode()
        value = template.replace(KEY_MARK, key).replace(ID_MARK, f"{prefix}-{i}".encode())
        out.append((partition_of(key, partitions), key, value))
    return out


class Producer(Protocol):
    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]: ...


class Batches:
    """The open batch of each partition: a record joins it until the producer takes it, then starts a new one."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self.open: dict[int, Any] = {}
        self.delivered: list[asyncio.Future[Any]] = []

    async def add(self, partition: int, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Append the record, timestamped now; a full or already built batch is replaced by a new one."""
        batch = self.open.get(partition)
        if batch is not None and batch.append(timestamp=None, key=key, value=value, headers=headers) is not None:
            return
        batch = self.open[partition] = self.producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
            raise ValueError(f"a record of {len(value)} bytes does not fit in an empty batch")
        self.delivered.append(await self.producer.send_batch(batch, self.topic, partition=partition))


async def run(args: argparse.Namespace) -> dict[str, object]:
    envelope = args.template.read_bytes() if args.template else template()
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=1)  # as before
    await producer.start()
    scheduled: dict[str, float] = {}
    late: list[float] = []
    try:
        recs = records(envelope, args.prefix, args.count, sorted(await producer.partitions_for(args.topic)))
        batches = Batches(producer, args.topic)
        start = max(args.start_at, time.time() + 0.5)  # never schedule sends before the producer is ready
        await asyncio.sleep(start - time.time())
        startup_cpu, load_wall = time.process_time(), time.perf_counter()
        i, n, rate, tick = 0, len(recs), args.rate, args.tick_ms / 1000
        while i < n:
            now = time.time()
            while i < n and (due := start + i / rate) <= now:
                partition, key, value = recs[i]
                scheduled[key.decode()] = due
                late.append(now - due)
                await batches.add(partition, key, value, [("bench-scheduled", repr(due).encode())])
                i += 1
            if i < n:
                await asyncio.sleep(max(start + i / rate, now + tick) - time.time())
        await producer.flush()
        await asyncio.gather(*batches.delivered)  # raises if a batch failed
        load_cpu, load_wall = time.process_time() - startup_cpu, time.perf_counter() - load_wall
    finally:
        await producer.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    late.sort()
    return {"scheduled": scheduled, "cpu_s": cpu, "startup_cpu_s": startup_cpu, "load_cpu_s": load_cpu,
            "load_s": load_wall, "batches": len(batches.delivered), "rss_mib": peak_rss_mib(),
            "late_p99_ms": late[int(0.99 * (len(late) - 1))] * 1000 if late else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start-at", type=float, default=0.0)
    ap.add_argument("--prefix", default="L")
    ap.add_argument("--tick-ms", type=float, default=0.0, help="wake at most this often (default 0: as each "
                    "record falls due); a record then waits up to this long, counted in its latency")
    ap.add_argument("--template", type=Path, help="the envelope template (default: built here, ~1.6 s of CPU)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.write_bytes(orjson.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
