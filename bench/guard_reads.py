"""A protection guard's IAM reads for a step naming many roles: concurrent reads against one read at a time.

Run: PYTHONPATH=. .venv/bin/python bench/guard_reads.py [--roles 50] [--latency 0.02] [--repeat 3]

A moto server holds `--roles` roles; a fault proxy in front of it delays every call by `--latency` seconds, as a
real IAM endpoint's round trip would. `PrincipalForms.forms` reads every role (`iam:GetRole`) as the guard does when
a protected unique id may name one of them, with a fresh reader each time (nothing kept): once with
`CONCURRENCY = 1` (the reads one after another, as before 2026-12-06; the baseline) and once with the shipped bound,
in the same run. Prints the median wall time of each and the ratio (baseline ÷ concurrent: how many times sooner
containment can start). The figure depends on the proxy's latency, not on the machine's speed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from responder.actuators.aws.session import AwsSession
from responder.engine.iamprincipals import PrincipalForms
from responder.sandbox import SANDBOX_CREDENTIALS, AwsSandbox
from responder.sandbox.faults import FaultProxy


class _OneAtATime(PrincipalForms):
    """The reader as it was: one read in flight."""

    CONCURRENCY = 1


async def _median(reader: type[PrincipalForms], aws: AwsSession, keys: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        found = await reader(aws).forms(keys)
        times.append(time.perf_counter() - start)
        if isinstance(found, str):
            raise SystemExit(f"a read failed: {found}")
    return statistics.median(times)


async def _run(roles: int, latency: float, repeat: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    moto = AwsSandbox()
    moto.start()
    proxy = FaultProxy(moto.endpoint_url)
    try:
        proxy.start()
        direct = AwsSession(endpoint_url=moto.endpoint_url, credentials=SANDBOX_CREDENTIALS)
        names = [f"bench-role-{i}" for i in range(roles)]
        for name in names:
            await direct.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}")
        aws = AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS)
        keys = [f"role/{name}" for name in names]
        await PrincipalForms(aws).forms(keys[:1])  # the client made, the connection open
        proxy.latency(latency, n=10**9)
        baseline = await _median(_OneAtATime, aws, keys, repeat)
        concurrent = await _median(PrincipalForms, aws, keys, repeat)
    finally:
        proxy.stop()
        moto.stop()
    print(f"{roles} roles, {latency * 1000:.0f} ms per call at the proxy, median of {repeat}")
    print(f"one at a time (baseline): {baseline * 1000:8.1f} ms")
    print(f"concurrent (CONCURRENCY = {PrincipalForms.CONCURRENCY}): {concurrent * 1000:8.1f} ms")
    print(f"ratio baseline / concurrent: {baseline / concurrent:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(_run(args.roles, args.latency, args.repeat))


if __name__ == "__main__":
    main()
