"""TimelineMetrics: what the engine recorded becomes Prometheus samples, counted once durable."""

from __future__ import annotations

from responder.metrics import ALERT_AT, Metrics, TimelineMetrics
from responder.models.timeline import EntryKind, TimelineEntry


def _entry(seq: int, kind: str, **body: object) -> TimelineEntry:
    return TimelineEntry.model_construct(seq=seq, writer="w", at="", kind=kind, incident="i",
                                         body=body, prev="", hash="")  # type: ignore[arg-type]


def test_steps_trips_and_matches_are_counted_when_durable() -> None:
    """Results by runbook/actuator/outcome, failures, guard trips by guard, matches by runbook id (no version)."""
    metrics = Metrics()
    sink = TimelineMetrics(metrics, runbook_of={"i": "leaked-key"}.get)
    entries = [_entry(0, EntryKind.EVENT_MATCHED, runbook="leaked-key@3"),
               _entry(1, EntryKind.GUARD_TRIPPED, guard="quota"),
               _entry(2, EntryKind.STEP_RESULT, actuator="aws.iam.x", status="failed")]
    for e in entries:
        sink.observe(e)
    assert metrics.value("responder_steps_total", runbook="leaked-key", actuator="aws.iam.x", outcome="failed") == 0
    sink.accept([(e, b"") for e in entries])
    assert metrics.value("responder_steps_total", runbook="leaked-key", actuator="aws.iam.x", outcome="failed") == 1
    assert metrics.value("responder_step_failures_total", runbook="leaked-key", actuator="aws.iam.x") == 1
    assert metrics.value("responder_guard_trips_total", guard="quota") == 1
    assert metrics.value("responder_runbook_matches_total", runbook="leaked-key") == 1


def test_alert_to_dispatch_uses_the_appending_task_alert_time() -> None:
    """An intent appended while handling an alert is observed at durability; one with no alert is not."""
    metrics = Metrics()
    sink = TimelineMetrics(metrics, clock=lambda: 100.25)
    token = ALERT_AT.set(100.0)
    sink.observe(_entry(5, EntryKind.STEP_INTENT))
    ALERT_AT.reset(token)
    sink.observe(_entry(6, EntryKind.STEP_INTENT))  # e.g. released by an approval: no alert in hand
    sink.accept([(_entry(5, EntryKind.STEP_INTENT), b""), (_entry(6, EntryKind.STEP_INTENT), b"")])
    assert metrics.value("responder_alert_to_dispatch_seconds_count") == 1
    assert metrics.value("responder_alert_to_dispatch_seconds_sum") == 0.25
