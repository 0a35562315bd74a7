"""The evidence pack shows how a step's read-back went: how many reads it took, how long it settled, and why it could
not be read, in the JSON pack and the Markdown report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from responder.actuators.retry import VerifySettle
from responder.errors import PermanentActuationError
from responder.timeline import Recorder
from responder.timeline.evidence import evidence_pack, render_markdown
from tests.fakes import Lagging, Waits
from tests.kit import DEACTIVATE_STEPS, ESCALATE, Kit, make_kit


def _kit(tmp_path: Path, stale: int) -> Kit:
    """A kit whose IAM reads the key back as before its deactivation for `stale` reads; a 5 s settle that waits for
    nothing."""
    waits = Waits()
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE},
                   settle=VerifySettle(5.0, sleep=waits.sleep, clock=waits.clock))
    lag = Lagging(kit.iam.call, stale=stale)
    kit.iam.call = lag.call  # type: ignore[method-assign]
    return kit


def _pack(kit: Kit) -> dict[str, Any]:
    entries = list(Recorder(kit.store).entries())
    [opened] = [e for e in entries if e.kind == "incident.opened"]
    assert opened.incident is not None
    return evidence_pack(entries, opened.incident, {"ok": True})


def _attempt(pack: dict[str, Any]) -> dict[str, Any]:
    [action] = [a for a in pack["actions"] if a["step"] == "deactivate"]
    [attempt] = action["attempts"]
    return attempt


async def test_a_settled_read_back_shows_its_reads_and_settle_time(tmp_path):
    """Read stale twice: verified on the third read after 1.5 s of settling; the pack and the report say so."""
    kit = _kit(tmp_path, stale=2)
    await kit.send()
    pack = _pack(kit)
    attempt = _attempt(pack)
    assert (attempt["verified"], attempt["verify_reads"], attempt["settle_ms"]) == (True, 3, 1500.0)
    [result] = kit.entries("step.result")
    assert result["settle_ms"] == 1500.0
    assert "| True | 3 | 1500.0 |" in render_markdown(pack)


async def test_a_read_back_verified_at_once_shows_one_read_and_no_settle(tmp_path):
    """The common path: one read, no settle time (and none written into the result)."""
    kit = _kit(tmp_path, stale=0)
    await kit.send()
    attempt = _attempt(_pack(kit))
    assert (attempt["verified"], attempt["verify_reads"], attempt["settle_ms"]) == (True, 1, None)
    assert "settle_ms" not in kit.entries("step.result")[0]


async def test_a_read_back_that_could_not_be_made_shows_why(tmp_path):
    """AccessDenied on the read-back: the pack carries `verify_error`, and the report's error cell names it."""
    kit = _kit(tmp_path, stale=0)
    real, applied = kit.iam.call, [False]

    async def call(service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        applied[0] = applied[0] or operation == "update_access_key"
        if applied[0] and operation == "list_access_keys":
            raise PermanentActuationError("not authorized", code="AccessDenied")
        return await real(service, operation, **kwargs)

    kit.iam.call = call  # type: ignore[method-assign]
    await kit.send()
    pack = _pack(kit)
    attempt = _attempt(pack)
    assert (attempt["verified"], attempt["verify_reads"]) == (False, 1)
    assert attempt["verify_error"] == "AccessDenied: not authorized"
    assert "read-back: AccessDenied: not authorized" in render_markdown(pack)
