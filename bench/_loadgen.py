"""Open-loop load generator for bench/pipeline.py, run as its own process (`make bench` skips `_*.py`).

    python bench/_loadgen.py BOOTSTRAP TOPIC --rate R --count N [--start-at EPOCH] --out FILE.json

Record i is due at `start + i / rate` (start: `--start-at`, or 0.5 s after the producer connected if
later) and is stamped with that *scheduled* time, not the time it was actually sent: a producer that
falls behind does not hide the delay (no coordinated omission). Every record due by now is handed to
the producer in one go, then the loop sleeps until the next one is due.
Writes {"scheduled": {key: epoch}, "cpu_s", "rss_mib", "late_p99_ms"} to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.findings import envelope_bytes, guardduty_finding  # noqa: E402


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would carry over the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def key_of(prefix: str, i: int) -> str:
    """The access key id (and record key) of record i: the actuator reports it, so latency joins on it."""
    return f"AKIA{prefix}{i:012d}"[:20]


async def run(args: argparse.Namespace) -> dict[str, object]:
    template = envelope_bytes(guardduty_finding("AKIAXXXXXXXXXXXXXXXX", finding_id="FINDING-ID-XXXXXXXXXXXXXXXX"))
    recs = []
    for i in range(args.count):
        key = key_of(args.prefix, i)
        value = template.replace(b"AKIAXXXXXXXXXXXXXXXX", key.encode()).replace(
            b"FINDING-ID-XXXXXXXXXXXXXXXX", f"{args.prefix}-{i}".encode())
        recs.append((key.encode(), value))
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=1)
    await producer.start()
    scheduled: dict[str, float] = {}
    late: list[float] = []
    try:
        start = max(args.start_at, time.time() + 0.5)  # never schedule sends before the producer is ready
        delay = start - time.time()
        await asyncio.sleep(delay)
        i = 0
        while i < len(recs):
            now = time.time()
            while i < len(recs) and start + i / args.rate <= now:
                due = start + i / args.rate
                key, value = recs[i]
                scheduled[key.decode()] = due
                late.append(now - due)
                await producer.send(args.topic, value, key=key, headers=[("bench-scheduled", repr(due).encode())])
                i += 1
            if i < len(recs):
                await asyncio.sleep(max(0.0, start + i / args.rate - time.time()))
        await producer.flush()
    finally:
        await producer.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    late.sort()
    return {"scheduled": scheduled, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": peak_rss_mib(),
            "late_p99_ms": late[int(0.99 * (len(late) - 1))] * 1000 if late else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start-at", type=float, default=0.0)
    ap.add_argument("--prefix", default="L")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.write_bytes(orjson.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
