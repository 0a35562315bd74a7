"""A read-back that fails: a transient error is read again while the change settles; a permanent one (AccessDenied)
or a bug in `verify()` stops at once, and the applied step is recorded ok but unverified, with the error, and pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from responder.actuators.retry import VerifySettle, settle_verify
from responder.cli.output import summarize
from responder.engine.readback import StepCall, verified
from responder.errors import PermanentActuationError, TransientActuationError
from responder.models.timeline import TimelineEntry
from tests.escalation_kit import metered
from tests.fakes import Waits
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, Kit, make_kit

Raiser = Callable[[], BaseException]


def _failing_reads(tmp_path: Path, error: Raiser, *, times: int = 99) -> tuple[Kit, Waits]:
    """A kit whose IAM read-back (`list_access_keys` after the deactivation) raises `error()` `times` times."""
    waits = Waits()
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE},
                   settle=VerifySettle(5.0, sleep=waits.sleep, clock=waits.clock))
    real, left, applied = kit.iam.call, [times], [False]

    async def call(service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        if operation == "update_access_key":
            applied[0] = True
        elif operation == "list_access_keys" and applied[0] and left[0] > 0:
            left[0] -= 1
            raise error()
        return await real(service, operation, **kwargs)

    kit.iam.call = call  # type: ignore[method-assign]
    return kit, waits


def _deactivation(kit: Kit) -> dict[str, Any]:
    [result] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    return result


async def test_access_denied_on_the_read_back_stops_the_settle_and_pages_with_the_error(tmp_path):
    """AccessDenied reading the key back: one read, no wait; ok but unverified, with the error; escalated naming it."""
    kit, waits = _failing_reads(tmp_path, lambda: PermanentActuationError("User is not authorized to perform "
                                                                          "iam:ListAccessKeys", code="AccessDenied"))
    await kit.send()
    result = _deactivation(kit)
    assert (result["status"], result["verified"], waits.waited) == ("ok", False, [])
    assert result["verify_error"] == "AccessDenied: User is not authorized to perform iam:ListAccessKeys"
    assert "verify_reads" not in result
    [escalated] = kit.entries("step.escalated")
    assert (escalated["status"], escalated["code"]) == ("unverified", "Unverified")
    assert "AccessDenied: User is not authorized" in escalated["error"]
    assert [p.target for p in kit.echo.applied] == ["oncall"]


async def test_a_permanent_error_after_a_false_read_stops_the_settle_there(tmp_path, monkeypatch):
    """A false read, then AccessDenied on the re-read: two reads, one wait, recorded with the reads and the error."""
    kit, waits = _failing_reads(tmp_path, lambda: PermanentActuationError("denied", code="AccessDenied"), times=0)
    reads = iter([False])

    async def verify(*_: object) -> bool:
        if next(reads, None) is False:
            return False
        raise PermanentActuationError("denied", code="AccessDenied")

    actuator = kit.registry.get("aws.iam.deactivate_access_key")
    monkeypatch.setattr(actuator, "verify", verify)
    await kit.send()
    result = _deactivation(kit)
    assert (result["verified"], result["verify_reads"], result["verify_error"]) == (False, 2, "AccessDenied: denied")
    assert waits.waited == [0.5]


async def test_a_transient_error_on_the_read_back_is_read_again_while_it_settles(tmp_path):
    """Throttling on the first read-back: read again after 0.5 s, true then: verified, nobody paged, no error kept."""
    kit, waits = _failing_reads(tmp_path, lambda: TransientActuationError("Rate exceeded", code="Throttling"), times=1)
    await kit.send()
    result = _deactivation(kit)
    assert (result["verified"], result["verify_reads"], "verify_error" in result) == (True, 2, False)
    assert (waits.waited, kit.entries("step.escalated")) == ([0.5], [])


async def test_a_bug_in_verify_records_the_applied_step_unverified_not_failed(tmp_path):
    """A bug in `verify()` records the applied step ok but unverified, with the error, and pages; it is not failed."""
    kit, waits = _failing_reads(tmp_path, lambda: TypeError("'NoneType' object is not subscriptable"))
    await kit.send()
    result = _deactivation(kit)
    assert (result["status"], result["changed"], result["verified"]) == ("ok", True, False)
    assert result["verify_error"] == "TypeError: 'NoneType' object is not subscriptable"
    assert waits.waited == []
    assert kit.iam.keys["AKIAABCDEFGHIJKLMNOP"]["Status"] == "Inactive"
    [escalated] = kit.entries("step.escalated")
    assert escalated["status"] == "unverified"
    assert "TypeError" in escalated["error"]


async def test_a_read_that_cannot_be_made_ends_the_settle_without_a_wait():
    """`settle_verify`: a read answering None (cannot be read) ends it at once, counted as a read."""
    waits = Waits()
    answers: list[bool | None] = [None]

    async def read() -> bool | None:
        return answers.pop(0) if answers else True

    reading: Callable[[], Awaitable[bool | None]] = read
    assert await settle_verify(reading, VerifySettle(5.0, sleep=waits.sleep, clock=waits.clock)) == (False, 2)
    assert waits.waited == [0.5]


def test_the_timeline_line_of_an_unreadable_read_back_shows_its_error():
    """`responder timeline show` names verify_error next to verified, so why it was not verified is on the line."""
    body = {"step": "deactivate", "status": "ok", "verified": False, "verify_error": "AccessDenied: denied"}
    entry = TimelineEntry(seq=1, writer="w", at="2026-12-05T00:00:00+00:00", kind="step.result", body=body,
                          prev="0", hash="0")
    assert "verified=False verify_error=AccessDenied: denied" in summarize(entry)


async def test_a_bug_in_verify_does_not_stop_the_next_finding_of_the_incident(tmp_path, monkeypatch):
    """After a bug in `verify()`, the incident's next distinct finding reads it as not verified and is not lost."""
    kit, waits = _failing_reads(tmp_path, lambda: TypeError("bug"), times=0)
    _buggy_verify(kit, monkeypatch)
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    await kit.send(finding_id="f2", updated="2026-11-25T10:05:00.000Z")
    first, again = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (first["status"], again["status"], again["reapplied"]) == ("ok", "ok", True)
    assert (again["verified"], again["verify_error"]) == (False, "KeyError: 'Status'")
    assert waits.waited == []  # read once: a step still unverified after its settle is not settled again
    assert [p.target for p in kit.echo.applied] == ["oncall"]  # on-call told once per step and incident


def _buggy_verify(kit: Kit, monkeypatch: Any) -> Any:
    """Give the deactivation actuator a `verify()` that always raises a KeyError (a bug); returns the actuator."""
    actuator = kit.registry.get("aws.iam.deactivate_access_key")

    async def verify(*_: object) -> bool:
        raise KeyError("Status")

    monkeypatch.setattr(actuator, "verify", verify)
    return actuator


async def test_a_bug_in_verify_reads_as_not_verified_where_a_step_is_only_checked(tmp_path, monkeypatch):
    """Where a step is only checked, `verified()` reads a bug in `verify()` as not verified instead of raising."""
    kit, _ = _failing_reads(tmp_path, lambda: TypeError("bug"), times=0)
    actuator = _buggy_verify(kit, monkeypatch)
    params = actuator.params.model_validate({"user_name": "ml-training", "access_key_id": KEY})
    call = StepCall(actuator, params, kit.engine.context.for_step("i", "k"))
    assert await verified(call) is False


async def test_an_escalation_step_whose_verify_has_a_bug_told_on_call_and_is_not_counted_failed(tmp_path, monkeypatch):
    """An escalation page whose `verify()` raised is recorded ok and unverified, not counted as a failed escalation."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE})
    metrics = metered(kit)

    async def verify(*_: object) -> bool:
        raise KeyError("delivered")

    monkeypatch.setattr(kit.echo, "verify", verify)
    await kit.send(key="AKIAZZZZZZZZZZZZZZZZ")  # no such key: the deactivation fails, and is escalated
    results = {b["step"]: b for b in kit.entries("step.result")}
    assert results["deactivate"]["status"] == "failed"
    told = results["tell.deactivate"]
    assert (told["status"], told["verified"], told["verify_error"]) == ("ok", False, "KeyError: 'delivered'")
    assert [p.target for p in kit.echo.applied] == ["oncall"]
    assert [b["step"] for b in kit.entries("step.escalated")] == ["deactivate"]
    assert metrics.value("responder_escalation_failures_total", runbook="rb", actuator="test.echo") == 0


async def test_a_transient_error_on_the_last_read_of_the_settle_is_kept_in_verify_error(tmp_path):
    """Throttling on every read-back of the settle leaves the step unverified, the last read's error the reason."""
    kit, waits = _failing_reads(tmp_path, lambda: TransientActuationError("Rate exceeded", code="Throttling"))
    await kit.send()
    result = _deactivation(kit)
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", False, 5)
    assert result["verify_error"] == "Throttling: Rate exceeded"
    assert waits.waited == [0.5, 1.0, 2.0, 1.5]
    [escalated] = kit.entries("step.escalated")
    assert "reading it failed: Throttling: Rate exceeded" in escalated["error"]


async def test_a_transient_error_on_the_only_read_without_a_settle_is_kept_in_verify_error(tmp_path):
    """With the settle off (0 s), a timed-out single read-back is kept as the read's error."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE}, settle=VerifySettle(0.0))
    real, applied = kit.iam.call, [False]

    async def call(service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        if operation == "update_access_key":
            applied[0] = True
        elif operation == "list_access_keys" and applied[0]:
            raise TimeoutError
        return await real(service, operation, **kwargs)

    kit.iam.call = call  # type: ignore[method-assign]
    await kit.send()
    result = _deactivation(kit)
    assert (result["verified"], result["verify_error"]) == (False, "Timeout: the read-back timed out")


async def test_a_transient_error_before_a_last_false_read_is_not_kept(tmp_path, monkeypatch):
    """Throttled, then read back false to the end: the last read answered (false), so no error is kept."""
    kit, _ = _failing_reads(tmp_path, lambda: TransientActuationError("Rate exceeded", code="Throttling"), times=0)
    reads = iter([False, "throttled"])

    async def verify(*_: object) -> bool:
        if next(reads, False) == "throttled":
            raise TransientActuationError("Rate exceeded", code="Throttling")
        return False

    monkeypatch.setattr(kit.registry.get("aws.iam.deactivate_access_key"), "verify", verify)
    await kit.send()
    result = _deactivation(kit)
    assert (result["verified"], result["verify_reads"], "verify_error" in result) == (False, 5, False)
