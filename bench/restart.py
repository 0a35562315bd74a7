"""Restart after SIGKILL: seconds from the restart to the first record (or first action), per group set-up.

Run: `PYTHONPATH=. .venv/bin/python bench/restart.py [--rounds 2] [--service]`. Starts the embedded
broker (Tansu), and for each configuration runs a consumer-group member in a child process, waits
until it consumes, SIGKILLs it, starts a fresh one in the same group and times start → first record.
With `--service` the member is the real `responder run` (both of its consumer groups) against a
moto server, and the time is restart → the `step.result` of a finding published while it was dead.
Compares dynamic membership (the dead member's session must expire, then the group rebalances),
static membership (`group_instance_id`, KIP-345: the restarted member takes its old place) and a
shorter session timeout. Prints seconds per configuration and the ratio to the baseline of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from restart_service import measure_service  # bench/ is on sys.path as the script directory

from responder.ingest.kafka import ensure_topics, publish
from responder.sandbox import lifeline
from responder.sandbox.broker import Broker

CHILD = """
import asyncio, sys, time
from aiokafka import AIOKafkaConsumer
async def main():
    bootstrap, topic, group, session, instance = sys.argv[1:6]
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=int(session),
                         heartbeat_interval_ms=max(100, int(session) // 6),
                         group_instance_id=instance or None)
    await c.start()
    while True:
        got = await c.getmany(timeout_ms=200)
        if any(got.values()):
            print("consumed", flush=True)
            await asyncio.sleep(3600)
asyncio.run(main())
"""

CONFIGS = {
    "dynamic, session 10000 ms (before)": (10_000, False),
    "static group_instance_id, session 10000 ms": (10_000, True),
    "dynamic, session 6000 ms": (6_000, False),
    "static group_instance_id, session 6000 ms": (6_000, True),
}


def _member(bootstrap: str, topic: str, group: str, session: int, instance: str) -> subprocess.Popen[bytes]:
    return lifeline.popen(
        [sys.executable, "-c", CHILD, bootstrap, topic, group, str(session), instance],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _until_consumed(proc: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    start = time.monotonic()
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() - start < timeout:
        line = proc.stdout.readline()
        if line.startswith(b"consumed"):
            return time.monotonic() - start
        time.sleep(0.02)
    raise SystemExit("a member never consumed")


def measure(bootstrap: str, session: int, static: bool) -> float:
    """SIGKILL a consuming member, restart it, seconds to its first record."""
    topic, group = f"restart-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(bootstrap, [topic], partitions=3))
    asyncio.run(publish(bootstrap, topic, [b"x"] * 30))
    instance = f"responder-{uuid.uuid4().hex[:6]}" if static else ""
    first = _member(bootstrap, topic, group, session, instance)
    _until_consumed(first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = _member(bootstrap, topic, group, session, instance)
    try:
        return _until_consumed(second)
    finally:
        second.kill()
        second.wait()


def main() -> None:
    """Measure every configuration `--rounds` times and print the medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--service", action="store_true", help="time the real service to its first action")
    args = parser.parse_args()
    broker = Broker()
    bootstrap = broker.start()
    run = measure_service if args.service else measure
    what = "action" if args.service else "record"
    try:
        results = {}
        for name, (session, static) in CONFIGS.items():
            times = sorted(run(bootstrap, session, static) for _ in range(args.rounds))
            results[name] = times[len(times) // 2]
            print(f"{name:45s} restart → first {what} {results[name]:6.1f} s  (runs: "
                  f"{', '.join(f'{t:.1f}' for t in times)})", flush=True)
        base = next(iter(results.values()))
        for name, value in results.items():
            print(f"{name:45s} ratio to baseline {value / base:5.2f}")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
