"""HTTP intake benchmark: webhook requests/s to acknowledged, against a plain aiokafka producer, same run.

    PYTHONPATH=. .venv/bin/python bench/intake.py [--rate 300] [--seconds 4] [--overload 4] [--connections 64]

The embedded broker runs in its own process, `responder intake` in another (uvicorn, as deployed), and
this process is the open-loop load generator: request i is due at t0 + i/rate whatever happened to the
earlier ones, and its latency is measured from that due time (no coordinated omission). Each request
carries a distinct GuardDuty finding, so every one is produced (no redelivery). The baseline is a plain
aiokafka producer (acks=all) in this process sending the same records at the same rate, each awaited
for its ack, with as many in flight as the HTTP pool has connections. Two phases: steady (--rate, below
capacity: latency) and saturation (--rate × --overload: throughput). Printed: acknowledged/s, p50/p99
for both, and the ratio intake / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from responder.ingest.kafka import ensure_topics
from responder.sandbox import Broker, lifeline
from tests.findings import envelope_bytes, guardduty_finding

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-not-a-secret"


def bodies(n: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """(kafka key, body) per request, each a distinct finding."""
    out = []
    for i in range(n):
        key = f"AKIA{prefix}{i:012d}"[:20]
        out.append((key.encode(), envelope_bytes(guardduty_finding(key, finding_id=f"{prefix}-{i}"))))
    return out


class Pool:
    """Up to `size` keep-alive HTTP/1.1 connections (a fleet of senders); a request waits for a free one."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.slots = asyncio.Semaphore(size)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes) -> int:
        async with self.slots:
            return await self._post(path, body)

    async def _post(self, path: str, body: bytes) -> int:
        while self.idle:  # a kept-alive connection the server closed while idle is retried on a fresh one
            conn = self.idle.pop()
            try:
                return await self._exchange(conn, path, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                conn[1].close()
        return await self._exchange(await asyncio.open_connection("127.0.0.1", self.port), path, body)

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str, body: bytes) -> int:
        reader, writer = conn
        writer.write((f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                      f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        self.idle.append(conn)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


Result = tuple[float, list[float], int]


async def open_loop(send, items: list[tuple[bytes, bytes]], rate: float) -> Result:
    """Fire `send(key, body)` at the due times; (acknowledged/s, latencies from due time, failures)."""
    latencies: list[float] = []
    failures = 0

    async def one(due: float, key: bytes, body: bytes) -> None:
        nonlocal failures
        try:
            ok = await send(key, body)
        except Exception:  # noqa: BLE001 - any send failure is counted as not acknowledged; the run goes on
            ok = False
        if ok:
            latencies.append(time.perf_counter() - due)
        else:
            failures += 1

    t0 = time.perf_counter() + 0.05
    tasks = []
    for i, (key, body) in enumerate(items):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, key, body)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, latencies, failures


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else float("nan")


async def baseline(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]], rate: float, senders: int):
    """The same open loop through a plain producer, at most `senders` records in flight (like the HTTP pool)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    slots = asyncio.Semaphore(senders)
    await producer.start()
    try:
        async def send(key: bytes, body: bytes) -> bool:
            async with slots:
                await producer.send_and_wait(topic, body, key=key)
            return True

        return await open_loop(send, items, rate)
    finally:
        await producer.stop()


def start_intake(bootstrap: str, topic: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "PYTHONPATH": str(ROOT), "RESPONDER_KAFKA_BOOTSTRAP": bootstrap, "RESPONDER_INTAKE_TOPIC": topic,
        "RESPONDER_LOG_LEVEL": "warning", "RESPONDER_EVENT_SIGNING_KEYS": '{"intake": "bench-signing"}',
        "RESPONDER_INTAKE_SIGNING_KEY_ID": "intake",
        "RESPONDER_INTAKE_SOURCES": orjson.dumps({"bench": {"auth": "bearer", "keys": {"b": TOKEN},
                                                            "rate_per_s": 1e9, "burst": 10**9}}).decode(),
    }
    prof = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    return lifeline.popen([sys.executable, *prof, "-m", "responder", "intake", "--port", str(port)], env=env,
                          cwd=ROOT)


async def wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            if b" 200 " in await reader.read():
                writer.close()
                return
            writer.close()
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the intake did not become ready")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def line(name: str, rate: float, lat: list[float], failures: int) -> str:
    return (f"{name:<34} {rate:8,.0f} acked/s | p50 {pct(lat, 0.5):7.2f} ms | p99 {pct(lat, 0.99):7.2f} ms | "
            f"failed {failures}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=300.0, help="offered requests/s in the steady phase (open loop)")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--connections", type=int, default=64, help="concurrent sender connections")
    ap.add_argument("--overload", type=float, default=4.0, help="saturation phase offers rate × this")
    args = ap.parse_args()
    with Broker() as broker:
        bs = broker.bootstrap
        await ensure_topics(bs, ["bench-intake", "bench-base"], partitions=3)
        port = free_port()
        proc = start_intake(bs, "bench-intake", port)
        try:
            await wait_ready(port)
            pool = Pool(port, args.connections)

            async def post(key: bytes, body: bytes) -> bool:
                return await pool.post("/v1/events/bench", body) == 202

            await open_loop(post, bodies(200, "W"), 200)  # warm-up: connections and code paths
            for phase, offered in (("steady", args.rate), ("saturation", args.rate * args.overload)):
                count = int(offered * args.seconds)
                base = await baseline(bs, "bench-base", bodies(count, f"B{phase[0]}"), offered, args.connections)
                mine = await open_loop(post, bodies(count, f"I{phase[0]}"), offered)
                report(phase, offered, count, args.seconds, base, mine)
            pool.close()
        finally:
            proc.terminate()
            proc.wait(15)


def report(phase: str, offered: float, count: int, seconds: float, base: Result, mine: Result) -> None:
    print(f"[{phase}] offered {offered:,.0f} req/s for {seconds:g}s ({count} requests), open loop, latency from due "
          "time")
    print(line("  baseline aiokafka send_and_wait", *base))
    print(line("  intake POST → 202 (after broker ack)", *mine))
    print(f"  ratio intake / baseline: acknowledged/s {mine[0] / base[0]:.2f} | p50 latency "
          f"{statistics.median(mine[1]) / statistics.median(base[1]):.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
