"""A protection guard's reads through AWS: concurrent reads against one read at a time.

Run: PYTHONPATH=. .venv/bin/python bench/guard_reads.py [--roles 50] [--latency 0.02] [--repeat 3] [--kinds]

A moto server holds `--roles` roles; a fault proxy in front of it delays every call by `--latency` seconds, as a
real IAM endpoint's round trip would. `PrincipalForms.forms` reads every role (`iam:GetRole`) as the guard does when
a protected unique id may name one of them, with a fresh reader each time (nothing kept): once with
`CONCURRENCY = 1` (the reads one after another, as before 2026-12-06; the baseline) and once with the shipped bound,
in the same run. Prints the median wall time of each and the ratio (baseline ÷ concurrent: how many times sooner
containment can start). The figure depends on the proxy's latency, not on the machine's speed.

`--kinds`: one step (`aws.kms.disable_key` naming a KMS key and a role) under protected ids that may name a KMS alias
and a role's unique id, and a protected tag: `Guards.protected` reads the three kinds (KMS aliases, the IAM role, the
key's tags), once with the kinds read one after another (the baseline, as before 2026-12-06: `in_order` replaced by
a sequential one) and once as shipped (together), fresh readers each time, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.actuators.aws.session import AwsSession
from responder.engine import guards as guards_module
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.iamprincipals import PrincipalForms
from responder.engine.inorder import in_order
from responder.engine.kmsaliases import KeyAliases
from responder.engine.tagreads import ResourceTags
from responder.models.event import Event, Severity, SeverityLabel
from responder.models.runbook import Protected, Runbook
from responder.sandbox import SANDBOX_CREDENTIALS, AwsSandbox
from responder.sandbox.faults import FaultProxy

T = TypeVar("T")


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


@contextlib.contextmanager
def _moto_behind_proxy() -> Iterator[tuple[AwsSession, AwsSession, FaultProxy]]:
    """(a session straight to a moto server, one through a fault proxy before it, the proxy); both stopped after."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    moto = AwsSandbox()
    moto.start()
    proxy = FaultProxy(moto.endpoint_url)
    try:
        proxy.start()
        yield (AwsSession(endpoint_url=moto.endpoint_url, credentials=SANDBOX_CREDENTIALS),
               AwsSession(endpoint_url=proxy.endpoint_url, credentials=SANDBOX_CREDENTIALS), proxy)
    finally:
        proxy.stop()
        moto.stop()


async def _run(roles: int, latency: float, repeat: int) -> None:
    with _moto_behind_proxy() as (direct, aws, proxy):
        names = [f"bench-role-{i}" for i in range(roles)]
        for name in names:
            await direct.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}")
        keys = [f"role/{name}" for name in names]
        await PrincipalForms(aws).forms(keys[:1])  # the client made, the connection open
        proxy.latency(latency, n=10**9)
        baseline = await _median(_OneAtATime, aws, keys, repeat)
        concurrent = await _median(PrincipalForms, aws, keys, repeat)
    print(f"{roles} roles, {latency * 1000:.0f} ms per call at the proxy, median of {repeat}")
    print(f"one at a time (baseline): {baseline * 1000:8.1f} ms")
    print(f"concurrent (CONCURRENCY = {PrincipalForms.CONCURRENCY}): {concurrent * 1000:8.1f} ms")
    print(f"ratio baseline / concurrent: {baseline / concurrent:.2f}")


async def _in_turn(reads: Sequence[Callable[[], Awaitable[T]]], refuses: Callable[[T], bool],
                   at_once: int | None = None) -> list[T]:
    """`in_order` as the kinds were read before: one after another, up to the first that refuses."""
    out: list[T] = []
    for read in reads:
        out.append(await read())
        if refuses(out[-1]):
            break
    return out


async def _kinds(latency: float, repeat: int) -> None:
    with _moto_behind_proxy() as (direct, aws, proxy):
        key = (await direct.call("kms", "create_key"))["KeyMetadata"]["Arn"]
        await direct.call("iam", "create_role", RoleName="bench-worker", AssumeRolePolicyDocument="{}")
        params = {"key_id": key, "role_name": "bench-worker"}
        runbook = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                          "steps": [{"id": "s", "actuator": "aws.kms.disable_key", "with": params}]})
        event = Event(id="e", source="guardduty", type="t", severity=Severity(score=8, label=SeverityLabel.HIGH),
                      time=datetime.now(UTC), account="123456789012", incident_key="k")
        policy = GuardPolicy(protected=Protected(ids=["alias/prod-*", "AROAPROTECTED0000000:*"],  # matching neither
                                                 tags={"responder:protected": "*"}))

        async def once() -> None:
            guards = Guards(policy, aliases=KeyAliases(aws), principals=PrincipalForms(aws), tags=ResourceTags(aws))
            hit = await guards.protected(runbook, "aws.kms.disable_key", key, params, event)
            if hit is not None:
                raise SystemExit(f"refused: {hit}")

        await once()  # the clients made, the connections open
        proxy.latency(latency, n=10**9)
        times: dict[str, list[float]] = {"one kind at a time (baseline)": [], "kinds together": []}
        for _ in range(repeat):
            for label, reader in zip(times, (_in_turn, in_order), strict=True):
                guards_module.in_order = reader  # type: ignore[assignment]
                start = time.perf_counter()
                await once()
                times[label].append(time.perf_counter() - start)
        guards_module.in_order = in_order
    medians = {label: statistics.median(t) for label, t in times.items()}
    print(f"one step, 3 kinds of reads (KMS aliases, IAM role, KMS key tags), {latency * 1000:.0f} ms per call at the "
          f"proxy, median of {repeat}")
    for label, median in medians.items():
        print(f"{label}: {median * 1000:8.1f} ms")
    baseline, together = medians.values()
    print(f"ratio baseline / together: {baseline / together:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kinds", action="store_true", help="one step's three kinds of reads, not many roles")
    args = parser.parse_args()
    asyncio.run(_kinds(args.latency, args.repeat) if args.kinds else _run(args.roles, args.latency, args.repeat))


if __name__ == "__main__":
    main()
