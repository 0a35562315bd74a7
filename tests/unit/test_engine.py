"""The engine against a fake IAM: intent before result, idempotency, recovery, retries."""

from __future__ import annotations

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.normalise import normalise
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam, FakePublisher
from tests.findings import envelope_bytes, guardduty_finding

KEY = "AKIAABCDEFGHIJKLMNOP"


def _pipeline(iam: FakeIam, store: MemoryStore, runbooks_dir, dry_run: bool = False) -> Pipeline:
    engine = Engine(Recorder(store), registry, iam, dry_run=dry_run,
                    context=ActuationContext(aws=iam, publisher=FakePublisher()))
    engine.recover()
    return Pipeline(load_runbooks(runbooks_dir, registry), engine)


def _kinds(store: MemoryStore) -> list[str]:
    return [e.kind for e in Recorder(store).entries()]


async def test_intent_is_durable_before_the_cloud_call(runbooks_dir):
    """The step.intent entry is synced before UpdateAccessKey is called."""
    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    synced_at_call: list[int] = []
    original = iam.call

    async def spy(service, operation, **kw):
        if operation == "update_access_key":
            synced_at_call.append(store.synced)
        return await original(service, operation, **kw)

    iam.call = spy  # type: ignore[method-assign]
    p = _pipeline(iam, store, runbooks_dir)
    from responder.models import RawRecord

    await p.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY))))
    await p.engine.recorder.flush()
    durable = store.read()[: synced_at_call[0]]
    assert b'"kind":"step.intent"' in durable
    assert b'"kind":"step.result"' not in durable
    assert iam.keys[KEY]["Status"] == "Inactive"


async def test_redelivery_after_restart_does_not_act_again(runbooks_dir):
    """A new engine recovered from the timeline skips a step that already has a result."""
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    rec = RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY)))
    first = _pipeline(iam, store, runbooks_dir)
    await first.handle(rec)
    await first.engine.recorder.flush()
    second = _pipeline(iam, store, runbooks_dir)
    await second.handle(rec)
    assert iam.count("update_access_key") == 1
    assert second.engine.state.results()


async def test_intent_without_result_is_resolved_by_verify(runbooks_dir):
    """After a crash between intent and result, a state already reached is recorded as recovered, not redone."""
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    rec = RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY)))
    crashed = _pipeline(iam, store, runbooks_dir)
    crashed.engine.recorder.append = _drop_results(crashed.engine.recorder.append)  # type: ignore[method-assign]
    await crashed.handle(rec)
    await crashed.engine.recorder.flush()
    assert "step.result" not in _kinds(store)
    calls = iam.count("update_access_key")
    again = _pipeline(iam, store, runbooks_dir)
    assert again.engine.state.inflight()
    await again.handle(rec)
    await again.engine.recorder.flush()
    assert iam.count("update_access_key") == calls
    results = [e.body for e in Recorder(store).entries() if e.kind == "step.result"]
    assert results[-1]["recovered"] is True


def _drop_results(append):
    def wrapped(kind, body, incident=None):
        if kind == "step.result":
            return None
        return append(kind, body, incident)

    return wrapped


async def test_throttling_is_retried_then_succeeds(runbooks_dir):
    """Two throttled calls are retried and the key still ends Inactive with one ok result."""
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    iam.throttle_next = 2
    p = _pipeline(iam, store, runbooks_dir)
    await p.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY))))
    await p.engine.recorder.flush()
    assert iam.keys[KEY]["Status"] == "Inactive"
    results = [e.body for e in Recorder(store).entries() if e.kind == "step.result"]
    assert [(r["step"], r["status"]) for r in results] == [
        ("deactivate-key", "ok"), ("revoke-sessions", "ok"), ("notify-oncall", "ok")]


async def test_dry_run_plans_and_calls_nothing(runbooks_dir):
    """With dry_run the step is recorded as planned with concrete params and no API call is made."""
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, store, runbooks_dir, dry_run=True)
    await p.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY))))
    await p.engine.recorder.flush()
    planned = [e.body for e in Recorder(store).entries() if e.kind == "step.planned"]
    assert planned[0]["params"] == {"user_name": "ml-training", "access_key_id": KEY}
    assert iam.calls == []


def test_normalise_reads_key_and_user():
    """The EventBridge-wrapped finding yields the access key with its user name."""
    [event] = normalise(envelope_bytes(guardduty_finding(KEY, "bob")))
    key = event.view()["resource"]["access_key"]
    assert key["id"] == KEY
    assert key["attributes"]["user_name"] == "bob"


async def test_concurrent_events_of_one_incident_act_once(runbooks_dir):
    """Two findings for the same key handled concurrently open one incident and deactivate the key once."""
    import asyncio

    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, store, runbooks_dir)
    a = RawRecord(topic="t", key=b"a", value=envelope_bytes(guardduty_finding(KEY, finding_id="f1")))
    b = RawRecord(topic="t", key=b"b", value=envelope_bytes(guardduty_finding(KEY, finding_id="f2")))
    await asyncio.gather(p.handle(a), p.handle(b))
    await p.engine.recorder.flush()
    kinds = _kinds(store)
    assert kinds.count("incident.opened") == 1
    assert kinds.count("incident.joined") == 1
    assert iam.count("update_access_key") == 1


async def test_a_forged_failing_event_does_not_block_the_real_one(runbooks_dir):
    """A forged finding naming the right key but a wrong user fails; the genuine finding still deactivates it."""
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, store, runbooks_dir)
    forged = guardduty_finding(KEY, "nobody", finding_id="forged")
    await p.handle(RawRecord(topic="t", value=envelope_bytes(forged)))
    assert iam.keys[KEY]["Status"] == "Active"
    await p.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY, finding_id="real"))))
    await p.engine.recorder.flush()
    assert iam.keys[KEY]["Status"] == "Inactive"


async def test_future_dated_event_cannot_hold_an_incident_open(runbooks_dir):
    """An event dated in 2099 is clamped to now plus the allowed skew for incident windows."""
    from datetime import UTC, datetime, timedelta

    from responder.engine.executor import MAX_CLOCK_SKEW
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, store, runbooks_dir)
    future = guardduty_finding(KEY, updated="2099-01-01T00:00:00.000Z")
    [incident] = await p.handle(RawRecord(topic="t", value=envelope_bytes(future)))
    assert incident.last_seen <= datetime.now(UTC) + timedelta(seconds=MAX_CLOCK_SKEW + 5)


async def test_the_steps_of_a_future_dated_event_see_its_clamped_time(runbooks_dir):
    """The runbook's steps run with the clamped event: its time and the view templates read are no later than now."""
    from datetime import UTC, datetime, timedelta

    from responder.engine.executor import MAX_CLOCK_SKEW
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, store, runbooks_dir)
    seen = []
    run_from = p.engine.run_from

    async def spy(rb, incident, event, **kw):
        seen.append(event)
        await run_from(rb, incident, event, **kw)

    p.engine.run_from = spy
    future = guardduty_finding(KEY, updated="2099-01-01T00:00:00.000Z")
    await p.handle(RawRecord(topic="t", value=envelope_bytes(future)))
    latest = datetime.now(UTC) + timedelta(seconds=MAX_CLOCK_SKEW + 5)
    assert seen
    assert all(e.time <= latest for e in seen)
    assert all(datetime.fromisoformat(e.view()["time"]) <= latest for e in seen)


async def test_an_actuator_crashing_unexpectedly_still_gets_a_failed_result(runbooks_dir):
    """A bug inside apply() is recorded as a failed step.result instead of leaving an orphan intent."""
    from responder.models import RawRecord

    iam, store = FakeIam(), MemoryStore()
    iam.add_key("ml-training", KEY)
    original = iam.call

    async def broken(service, operation, **kw):
        if operation == "update_access_key":
            raise KeyError("boom")
        return await original(service, operation, **kw)

    iam.call = broken  # type: ignore[method-assign]
    p = _pipeline(iam, store, runbooks_dir)
    await p.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY))))
    await p.engine.recorder.flush()
    [first] = [e.body for e in Recorder(store).entries() if e.kind == "step.result"][:1]
    assert first["status"] == "failed"
    assert first["code"] == "KeyError"
    assert not p.engine.state.inflight()
