"""Cloud API faults through the proxy in front of moto: the real Service on the real broker, effects counted in moto."""

from __future__ import annotations

import pytest

from responder.models.timeline import EntryKind
from responder.sandbox.faults import FaultProxy
from responder.timeline.chain import parse_lines
from tests.faults.cloud import cloud_fault_run, step_results
from tests.faults.table import record

pytestmark = pytest.mark.integration

SHORT = {
    "throttle 50% for 3 s": lambda p: p.throttle(3.0, 0.5),
    "5xx burst of 5": lambda p: p.errors(5),
    "reset 4 connections": lambda p: p.resets(4),
    "apply, drop 3 replies": lambda p: p.drops(3),
    "latency 1.5 s > 1 s call timeout, 2 calls": lambda p: p.latency(1.5, 2),
}


@pytest.mark.parametrize("fault", list(SHORT))
async def test_cloud_fault_loses_nothing_and_acts_once(fault, kafka_bootstrap, moto_server, topics, unique, tmp_path):
    """Under each cloud API fault every finding's action happens exactly once in moto (0 lost, 0 duplicated)."""
    moto_server.reset()
    row, proxy, _ = await cloud_fault_run(kafka_bootstrap, moto_server, topics, unique, tmp_path,
                                          fault=f"cloud: {fault}", arm=SHORT[fault])
    record(row)
    assert sum(proxy.injected.values()) > 0, "the fault never fired"
    assert (row.lost, row.duplicates) == (0, 0), row


@pytest.mark.soak
@pytest.mark.timeout(1800)
@pytest.mark.parametrize(("fault", "arm"), [
    ("throttle 50% for 60 s", lambda p: p.throttle(60.0, 0.5)),
    ("latency 10 s on 3 calls (under the 20 s call timeout)", lambda p: p.latency(10.0, 3)),
    ("5xx burst of 20", lambda p: p.errors(20)),
])
async def test_cloud_fault_long_form(fault, arm, kafka_bootstrap, moto_server, topics, unique, tmp_path):
    """60 s of throttling, 10 s latency or a long 5xx burst on keyed findings loses and duplicates no action."""
    moto_server.reset()
    row, _, _ = await cloud_fault_run(kafka_bootstrap, moto_server, topics, unique, tmp_path, fault=f"cloud: {fault}",
                                      arm=arm, events=30, retries=10, call_timeout=20.0, step_timeout=300.0,
                                      keyed=True)
    record(row)
    assert (row.lost, row.duplicates) == (0, 0), row


async def test_access_denied_is_permanent_recorded_and_escalated(kafka_bootstrap, moto_server, topics, unique,
                                                                 tmp_path):
    """AccessDenied on a step is tried once, recorded as a permanent failure, and on_failure runs the escalation."""
    moto_server.reset()

    def deny(p: FaultProxy) -> None:
        p.deny(1000)

    row, proxy, service = await cloud_fault_run(kafka_bootstrap, moto_server, topics, unique, tmp_path,
                                                fault="cloud: AccessDenied on the step", arm=deny, events=3)
    row.expected, row.lost = 0, 0  # the denied action must not happen; the escalation must
    record(row)
    assert row.done == 0
    failed = step_results(service, "put-marker")
    assert len(failed) == 3
    assert all(b["status"] == "failed" and b["permanent"] is True and b["code"] == "AccessDenied"
               for b in failed.values()), failed
    assert proxy.injected["deny"] == 3, "AccessDenied was retried"
    escalated = step_results(service, "escalate")
    assert len(escalated) == 3
    assert all(b["status"] == "ok" for b in escalated.values())
    timeline = service.settings.timeline_path.read_bytes().splitlines()
    denied = [e for e in parse_lines(timeline)
              if e.kind == EntryKind.STEP_RESULT and e.body.get("code") == "AccessDenied"]
    assert len(denied) == 3
