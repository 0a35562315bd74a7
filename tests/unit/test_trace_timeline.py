"""The alert's trace id on every timeline entry it causes, a later decision's trace beside it, step metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from responder.metrics import Metrics, TimelineMetrics
from responder.models import RawRecord
from responder.models.approval import REQUESTS_TOPIC
from responder.timeline import Recorder
from responder.tracing import stamped, trace_id_of
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, MISSING_KEY, Kit, decision, make_kit
from tests.kit import WIPE as APPROVED_WIPE

ALERT = "4bf92f3577b34da6a3ce929d0e0e4736"
DECISION = "0af7651916cd43dd8448eb211c80319c"
WIPE = APPROVED_WIPE % "deny"
NOTIFY = """\
  - id: tell
    actuator: notify.kafka.publish_message
    with: {topic: notes, title: "wiped"}
"""


async def _send(kit: Kit, trace: str | None, key: str = KEY) -> None:
    headers = ((("traceparent", f"00-{trace}-00f067aa0ba902b7-01".encode()),) if trace else ())
    assert kit.pipeline is not None
    await kit.pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(key)), headers=headers))
    await kit.engine.recorder.flush()


def _incident(kit: Kit) -> str:
    return next(iter(kit.engine.state.incidents.by_id))


async def test_every_entry_an_alert_causes_carries_its_trace(tmp_path):
    """Received, matched, opened, intent, failed result, escalation and its step: all carry the alert's trace id."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE})
    await _send(kit, ALERT, MISSING_KEY)
    entries = list(Recorder(kit.store).entries())
    kinds = [e.kind for e in entries]
    assert {"event.received", "event.matched", "incident.opened", "step.intent", "step.result",
            "step.escalated"} <= set(kinds)
    assert kinds.count("step.result") == 2  # the failed deactivation and the escalation's echo
    assert [e.kind for e in entries if e.body.get("trace_id") != ALERT] == []
    assert all("event_trace_id" not in e.body for e in entries)


async def test_the_stamp_ends_with_the_record(tmp_path):
    """Entries appended after a record was handled (here: another alert's) do not inherit its trace id."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS})
    await _send(kit, ALERT)
    other = "1" * 32
    await _send(kit, other, MISSING_KEY)
    traces = [e.body.get("trace_id") for e in Recorder(kit.store).entries()]
    assert traces.count(ALERT) + traces.count(other) == len(traces)
    assert traces.index(other) > max(i for i, t in enumerate(traces) if t == ALERT)


async def test_a_later_decision_links_its_own_trace_and_the_alerts(tmp_path):
    """After a restart, the decision's entries and the steps it releases carry its trace and the alert's."""
    kit = make_kit(tmp_path, {"rb": WIPE})
    await _send(kit, ALERT)
    [requested] = kit.entries("approval.requested")
    assert requested["trace_id"] == ALERT
    kit.start()  # the parked step (and its alert's trace) is read back from the timeline
    with stamped(DECISION):  # as the service's approvals loop does for the decision's Kafka record
        assert await kit.engine.decide(*decision(kit, _incident(kit), "wipe"))
    later = [e for e in Recorder(kit.store).entries() if e.seq > max(e.seq for e in Recorder(kit.store).entries()
                                                                      if e.kind == "approval.requested")]
    assert [e.kind for e in later] == ["approval.decided", "step.intent", "step.result", "step.intent",
                                       "step.result", "approval.settled"]
    assert {(e.body["trace_id"], e.body["event_trace_id"]) for e in later} == {(DECISION, ALERT)}


async def test_a_decision_without_a_trace_and_a_timeout_carry_the_alerts(tmp_path):
    """A decision that came with no trace context, and an expiry, are recorded in the alert's trace alone."""
    kit = make_kit(tmp_path, {"a": WIPE})
    await _send(kit, ALERT)
    assert await kit.engine.decide(*decision(kit, _incident(kit), "wipe", verdict="deny"))
    [decided] = kit.entries("approval.decided")
    assert decided["trace_id"] == ALERT
    assert "event_trace_id" not in decided
    (tmp_path / "2").mkdir()
    kit2 = make_kit(tmp_path / "2", {"a": WIPE})
    await _send(kit2, ALERT)
    kit2.clock.now += 3600
    assert await kit2.engine.expire() == 1
    [expired] = kit2.entries("approval.expired")
    [denied] = kit2.entries("step.result")
    assert (expired["trace_id"], denied["trace_id"], denied["status"]) == (ALERT, ALERT, "denied")


async def test_step_metrics_agree_with_the_timeline_after_failures(tmp_path):
    """Steps by runbook/actuator/outcome and step failures, counted from the timeline, match its step.result entries."""
    kit = make_kit(tmp_path, {"contain": DEACTIVATE_STEPS + ESCALATE})
    metrics = Metrics()
    kit.engine.recorder.sinks.append(TimelineMetrics(
        metrics, runbook_of=lambda i: kit.engine.state.incidents.by_id[i].runbook))
    await _send(kit, None)
    await _send(kit, None, MISSING_KEY)
    results = [e.body for e in Recorder(kit.store).entries() if e.kind == "step.result"]
    expected = Counter((str(b["actuator"]), str(b["status"])) for b in results)
    assert expected == {("aws.iam.deactivate_access_key", "ok"): 1, ("aws.iam.deactivate_access_key", "failed"): 1,
                        ("test.echo", "ok"): 1}
    for (actuator, outcome), n in expected.items():
        assert metrics.value("responder_steps_total", runbook="contain", actuator=actuator, outcome=outcome) == n
    assert metrics.value("responder_step_failures_total", runbook="contain",
                         actuator="aws.iam.deactivate_access_key") == 1
    assert metrics.value("responder_step_failures_total", runbook="contain", actuator="test.echo") == 0


async def test_requests_and_notifications_carry_the_alerts_trace(tmp_path):
    """An approval request and a Kafka notification sent for the alert carry a traceparent with its trace id."""
    sent: list[tuple[str, list[tuple[str, bytes]]]] = []

    class Capture:
        async def publish(self, topic, key, value, headers=()):
            sent.append((topic, list(headers)))

    kit = make_kit(tmp_path, {"rb": WIPE + NOTIFY})
    kit.engine.publisher = kit.engine.decisions.publisher = Capture()
    kit.engine.context = replace(kit.engine.context, publisher=Capture())
    await _send(kit, ALERT)
    assert await kit.engine.decide(*decision(kit, _incident(kit), "wipe"))
    assert [topic for topic, _ in sent] == [REQUESTS_TOPIC, "notes"]
    assert [trace_id_of(headers) for _, headers in sent] == [ALERT, ALERT]
