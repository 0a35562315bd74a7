"""What the consumer's fetch wait costs on the embedded broker (Tansu): latency under flow, CPU while idle.

    PYTHONPATH=. .venv/bin/python bench/fetch_wait.py [WAIT_MS ...]   (default: 20 10 5)

For each wait: one consumer on a fresh one-partition topic; first its CPU while idle for 5 s (fetches only),
then 600 records sent one at a time, 1–8 ms apart, each stamped with the time its send was acknowledged;
prints the p50 / p99 from that ack to `getmany` returning the record, and the CPU per record of this process.
Compare the waits with each other within one run (docs/fleet.md, "Latency").
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from responder.ingest.kafka import ensure_topics
from responder.sandbox import Broker

N = 600


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def probe(bootstrap: str, wait: int) -> None:
    topic = f"fetch-wait-{wait}-{random.randrange(10**6)}"
    await ensure_topics(bootstrap, [topic], partitions=1)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-g", fetch_max_wait_ms=wait,
                                auto_offset_reset="latest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await consumer.start()
    await producer.start()
    try:
        await asyncio.sleep(3.0)  # joined and fetching
        start, before = time.perf_counter(), cpu()
        with_records = asyncio.create_task(asyncio.sleep(5.0))
        while not with_records.done():
            await consumer.getmany(timeout_ms=200)
        idle = (cpu() - before) / (time.perf_counter() - start)

        async def send() -> None:
            for _ in range(N):
                await producer.send_and_wait(topic, repr(time.time()).encode())
                await asyncio.sleep(random.uniform(0.001, 0.008))

        before, lat = cpu(), list[float]()
        sender = asyncio.create_task(send())
        while len(lat) < N:
            got = await consumer.getmany(timeout_ms=200)
            now = time.time()
            lat += [now - float(m.value or b"0") for msgs in got.values() for m in msgs]
        await sender
        per_record = (cpu() - before) / N * 1e6
        lat.sort()
        p50, p99 = lat[N // 2] * 1e3, lat[int(N * .99)] * 1e3
        print(f"fetch wait {wait:4d} ms: ack → polled p50 {p50:5.1f} ms, p99 {p99:5.1f} ms | idle consumer CPU "
              f"{idle:5.1%} of a core | {per_record:5.0f} µs CPU/record (producer + consumer)",
              flush=True)
    finally:
        await consumer.stop()
        await producer.stop()


async def main() -> None:
    waits = [int(w) for w in sys.argv[1:]] or [20, 10, 5]
    with Broker() as broker:
        for wait in waits:
            await probe(broker.bootstrap, wait)


if __name__ == "__main__":
    asyncio.run(main())
