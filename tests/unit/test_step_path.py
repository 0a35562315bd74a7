"""The acting path's plumbing, kept while it was flattened: log context, first-attempt retries, step timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import structlog

from responder.errors import TransientActuationError
from responder.models.event import RawRecord
from tests.findings import envelope_bytes, guardduty_finding
from tests.kit import KEY, Kit, make_kit

STEP = """\
steps:
  - id: deactivate
    actuator: aws.iam.deactivate_access_key
    retries: {retries}
    timeout: {timeout}
    with:
      user_name: "${{event.resource.access_key.attributes.user_name}}"
      access_key_id: "${{event.resource.access_key.id}}"
"""


def _on_update(iam: Any, effect: Any) -> list[dict[str, Any]]:
    """Run `effect()` (awaited) before each UpdateAccessKey; the log context seen at each call."""
    original, seen = iam.call, []

    async def call(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        if operation == "update_access_key":
            seen.append(structlog.contextvars.get_contextvars())
            await effect(len(seen))
        return dict(await original(service, operation, **kw))

    iam.call = call
    return seen


async def _nothing(n: int) -> None:
    return None


async def _times_out(kit: Kit, effect: Any) -> None:
    """Send the finding, `effect` run before each UpdateAccessKey: the step's one result is a transient Timeout."""
    _on_update(kit.iam, effect)
    await asyncio.wait_for(kit.send(), 10)
    [result] = kit.entries("step.result")
    assert (result["status"], result["code"], result["permanent"]) == ("failed", "Timeout", False)


async def test_a_step_logs_with_its_incident_runbook_and_event_and_unbinds_them_after(tmp_path: Path) -> None:
    """The actuator runs with incident, runbook and event_id in the log context; they are gone once it returns."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})
    seen = _on_update(kit.iam, _nothing)
    await kit.send()
    [opened] = kit.entries("incident.opened")
    [context] = seen
    incident = next(iter(kit.engine.state.incidents.by_id))
    assert (context["incident"], context["runbook"], context["event_id"]) == (incident, "rb", opened["event_id"])
    assert not {"incident", "runbook", "event_id"} & structlog.contextvars.get_contextvars().keys()


async def test_a_transient_first_attempt_without_retries_fails_once_as_transient(tmp_path: Path) -> None:
    """retries: 0 — a transient error on the first attempt fails the step (not permanent), with one call."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})

    async def throttled(n: int) -> None:
        raise TransientActuationError("Rate exceeded", code="Throttling")

    seen = _on_update(kit.iam, throttled)
    await kit.send()
    [result] = kit.entries("step.result")
    assert (result["status"], result["code"], result["permanent"], len(seen)) == ("failed", "Throttling", False, 1)


async def test_a_transient_first_attempt_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    """retries: 2 — a transient error on the first attempt is retried (verify asked first), and the step succeeds."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=2, timeout=30)})

    async def first_throttled(n: int) -> None:
        if n == 1:
            raise TransientActuationError("Rate exceeded", code="Throttling")

    seen = _on_update(kit.iam, first_throttled)
    await kit.send()
    [result] = kit.entries("step.result")
    assert (result["status"], len(seen), kit.iam.keys[KEY]["Status"]) == ("ok", 2, "Inactive")


async def test_a_step_that_outlasts_its_timeout_fails_with_timeout(tmp_path: Path) -> None:
    """A step whose actuator hangs fails at its own timeout, recorded as a transient Timeout."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=0.05)})

    async def hang(n: int) -> None:
        await asyncio.sleep(30)

    await _times_out(kit, hang)
    assert kit.iam.keys[KEY]["Status"] == "Active"


async def test_a_step_blocked_past_its_timeout_before_suspending_times_out_at_its_first_wait(tmp_path: Path) -> None:
    """The deadline counts from the step's start: time spent before the actuator's first suspension counts."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=0.1)})

    async def block_then_wait(n: int) -> None:
        time.sleep(0.3)  # noqa: ASYNC251 - holds the loop past the deadline, then waits within a fresh timeout
        await asyncio.sleep(0.01)

    await _times_out(kit, block_then_wait)


async def test_a_step_whose_actuator_never_suspends_schedules_no_timeout_timer(tmp_path: Path) -> None:
    """An actuator done without a suspension runs with no timer: a timeout could never have interrupted it."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})
    loop, timers = asyncio.get_running_loop(), []
    call_at = loop.call_at

    def counted(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        if isinstance(getattr(callback, "__self__", None), asyncio.Timeout):
            timers.append(when)
        return call_at(when, callback, *args, **kw)

    loop.call_at = counted  # type: ignore[method-assign]
    try:
        await kit.send()
    finally:
        del loop.call_at
    [result] = kit.entries("step.result")
    assert (result["status"], timers) == ("ok", [])


async def test_a_step_that_suspends_then_outlasts_its_timeout_is_cancelled_at_the_deadline(tmp_path: Path) -> None:
    """An actuator past its first suspension is still bounded: a later wait that outlasts the deadline fails it."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=0.05)})

    async def wait_then_hang(n: int) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(30)

    await _times_out(kit, wait_then_hang)
    assert kit.iam.keys[KEY]["Status"] == "Active"


async def test_a_slow_verify_after_an_applied_change_is_not_failed_by_the_steps_timeout(tmp_path: Path) -> None:
    """The timeout bounds apply and its retries, not verify: a change made in time is recorded ok, verified."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=1.0)})
    original, updated = kit.iam.call, []

    async def call(service: str, operation: str, **kw: Any) -> dict[str, Any]:
        if operation == "update_access_key":
            updated.append(operation)
        elif operation == "list_access_keys" and updated:  # verify's read, after the change: past the deadline
            await asyncio.sleep(1.2)
        return dict(await original(service, operation, **kw))

    kit.iam.call = call
    await asyncio.wait_for(kit.send(), 10)
    [result] = kit.entries("step.result")
    assert (result["status"], result["changed"], result["verified"]) == ("ok", True, True)
    assert kit.iam.keys[KEY]["Status"] == "Inactive"


async def test_the_actuator_runs_with_the_records_trace_id_in_the_log_context(tmp_path: Path) -> None:
    """The pipeline binds the trace id of the record's traceparent for the step's logs, as structlog's own."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})
    seen = _on_update(kit.iam, _nothing)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert kit.pipeline is not None
    await kit.pipeline.handle(RawRecord(topic="t", value=envelope_bytes(guardduty_finding(KEY, "ml-training")),
                                        headers=(("traceparent", f"00-{trace}-00f067aa0ba902b7-01".encode()),)))
    await kit.engine.recorder.flush()
    [context] = seen
    assert context["trace_id"] == trace


def test_the_step_path_keeps_no_cells_while_a_step_waits() -> None:
    """`_run_step` and `_execute` make no closure cells: containers the collector walks per step in flight."""
    from responder.engine import runner
    from responder.engine.steps import StepRunning

    assert runner._run_step.__code__.co_cellvars == ()
    assert StepRunning._execute.__code__.co_cellvars == ()


async def test_a_group_lock_is_dropped_once_no_event_holds_it(tmp_path: Path) -> None:
    """Concurrent events of one group share a lock, dropped when the last of them is done."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})
    held: list[int] = []

    async def look(n: int) -> None:
        held.append(sum(g.users for g in kit.engine._group_locks.values()))

    _on_update(kit.iam, look)
    await asyncio.gather(kit.send(), kit.send())
    assert held[0] == 2
    assert kit.engine._group_locks == {}


async def test_a_dry_run_step_records_its_would_be_approvals_as_a_list(tmp_path: Path) -> None:
    """The in-memory step.planned body (what observers and sinks see) holds a list, as read back from disk."""
    body = """\
mode: dry_run
steps:
  - {id: wipe, actuator: test.wipe, with: {target: t2}}
"""
    kit = make_kit(tmp_path, {"rb": body})
    seen: list[Any] = []
    kit.engine.recorder.observers.append(lambda entry: seen.append(entry.body))
    await kit.send()
    [planned] = [b for b in seen if "would_require_approval" in b]
    assert type(planned["would_require_approval"]) is list
    assert planned["would_require_approval"] == ["test.wipe is destructive"]


async def test_the_received_entry_names_each_resource_by_its_kind_text_and_id(tmp_path: Path) -> None:
    """event.received lists the event's resources as {kind, id}, the kind as its plain text, in the event's order."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})
    seen: list[Any] = []
    kit.engine.recorder.observers.append(lambda entry: seen.append(entry.body))
    await kit.send()
    [received] = kit.entries("event.received")
    kinds = [r["kind"] for r in received["resources"]]
    assert kinds[:2] == ["access_key", "iam_user"]
    assert {"kind": "access_key", "id": KEY} in received["resources"]
    assert [type(r["kind"]) for r in seen[0]["resources"]] == [str] * len(kinds)


async def test_events_of_one_group_take_turns_and_leave_no_lock_behind(tmp_path: Path) -> None:
    """Concurrent events of one group run one after another (the later ones find the step done); no lock is kept."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})

    async def slow(n: int) -> None:
        await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)

    seen = _on_update(kit.iam, slow)
    await asyncio.gather(kit.send(), kit.send(), kit.send())
    steps = [k for k in kit.kinds() if k.startswith("step.")]
    assert (steps, len(seen)) == (["step.intent", "step.result", "step.skipped", "step.skipped"], 1)
    assert (kit.engine._group_locks, kit.engine._locks) == ({}, {})


async def test_an_event_cancelled_while_waiting_its_turn_blocks_no_later_event(tmp_path: Path) -> None:
    """A waiting event that is cancelled gives up its place: the holder ends, a later event runs, nothing is kept."""
    kit = make_kit(tmp_path, {"rb": STEP.format(retries=0, timeout=30)})
    go = asyncio.Event()

    async def held(n: int) -> None:
        await go.wait()

    _on_update(kit.iam, held)
    first = asyncio.create_task(kit.send())
    while not kit.engine._group_locks:
        await asyncio.sleep(0)
    waiting = asyncio.create_task(kit.send())
    for _ in range(5):
        await asyncio.sleep(0)
    waiting.cancel()
    go.set()
    await asyncio.wait_for(first, 10)
    await asyncio.wait_for(kit.send(), 10)
    assert waiting.cancelled()
    assert [k for k in kit.kinds() if k.startswith("step.")] == ["step.intent", "step.result", "step.skipped"]
    assert (kit.engine._group_locks, kit.engine._locks) == ({}, {})
