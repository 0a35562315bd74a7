"""A false read-back right after an apply is read again while the change settles, before it pages as unverified."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from responder.actuators import registry
from responder.actuators.retry import VerifySettle, settle_verify
from responder.catalog import load_runbooks
from responder.cli import app
from responder.cli.output import summarize
from responder.fleet_digest import fleet_digest
from responder.models.timeline import TimelineEntry
from responder.service import Service
from responder.settings import Settings
from tests.fakes import Lagging, Waits
from tests.kit import DEACTIVATE_STEPS, ESCALATE, KEY, Kit, make_kit


def _settle(waits: Waits, seconds: float = 5.0) -> VerifySettle:
    return VerifySettle(seconds, sleep=waits.sleep, clock=waits.clock)


def _reads(answers: list[bool]) -> tuple[list[bool], Callable[[], Awaitable[bool]]]:
    """A verify() read answering `answers` in turn (then False), and the list of what it answered."""
    given: list[bool] = []

    async def read() -> bool:
        given.append(answers[len(given)] if len(given) < len(answers) else False)
        return given[-1]

    return given, read


async def test_a_read_back_that_turns_true_on_the_second_read_is_verified():
    """One wait of 0.5 s, a second read that is true: verified after 2 reads."""
    waits = Waits()
    given, read = _reads([True])
    assert await settle_verify(read, _settle(waits)) == (True, 2)
    assert (given, waits.waited) == ([True], [0.5])


async def test_a_read_back_that_stays_false_is_read_within_the_bound_and_stays_false():
    """5 s: waits of 0.5, 1, 2 and 1.5 s (adding up to the bound), 5 reads in all, still false."""
    waits = Waits()
    given, read = _reads([])
    assert await settle_verify(read, _settle(waits)) == (False, 5)
    assert waits.waited == [0.5, 1.0, 2.0, 1.5]
    assert len(given) == 4


async def test_a_settle_of_zero_reads_once():
    """0 disables the settle: the first, false read is the only one."""
    waits = Waits()
    given, read = _reads([True])
    assert await settle_verify(read, _settle(waits, 0)) == (False, 1)
    assert (given, waits.waited) == ([], [])


async def test_slow_reads_count_against_the_bound():
    """Each read taking 2 s: no re-read starts once 5 s have passed since the first (3 reads, not 5)."""
    waits = Waits()

    async def slow() -> bool:
        waits.now += 2.0
        return False

    assert await settle_verify(slow, _settle(waits)) == (False, 3)
    assert waits.waited == [0.5, 1.0]


def _lagging(tmp_path: Path, stale: int) -> tuple[Kit, Waits, Lagging]:
    """A kit whose fake IAM reads a key's status as before its deactivation for `stale` reads after it."""
    waits = Waits()
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE}, settle=_settle(waits))
    lag = Lagging(kit.iam.call, stale=stale)
    kit.iam.call = lag.call  # type: ignore[method-assign]
    return kit, waits, lag


async def test_a_deactivation_read_back_stale_once_is_verified_and_pages_nobody(tmp_path):
    """IAM reads the key Active once after deactivating it: the step is ok and verified after 2 reads, no escalation."""
    kit, waits, lag = _lagging(tmp_path, stale=1)
    await kit.send()
    [result] = kit.entries("step.result")
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", True, 2)
    assert (lag.stale_answers, waits.waited) == (1, [0.5])
    assert kit.entries("step.escalated") == []
    assert kit.echo.applied == []


async def test_a_deactivation_that_never_reads_back_is_escalated_after_the_settle(tmp_path):
    """A read-back false for longer than the settle: unverified after 5 reads, escalated once, naming the reads."""
    kit, waits, _ = _lagging(tmp_path, stale=99)
    await kit.send()
    [result] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (result["status"], result["verified"], result["verify_reads"]) == ("ok", False, 5)
    assert sum(waits.waited) == 5.0
    [escalated] = kit.entries("step.escalated")
    assert (escalated["status"], escalated["code"]) == ("unverified", "Unverified")
    assert "read back 5 times" in escalated["error"]
    assert [(p.target, p.message) for p in kit.echo.applied] == [("oncall", "deactivate failed")]


async def test_a_step_verified_on_its_first_read_waits_for_nothing(tmp_path):
    """The common path: verified at once, no wait and no verify_reads in its result (its bytes as before)."""
    kit, waits, _ = _lagging(tmp_path, stale=0)
    await kit.send()
    [result] = kit.entries("step.result")
    assert (result["verified"], "verify_reads" in result, waits.waited) == (True, False, [])


@pytest.mark.parametrize("settle", [VerifySettle(0), None])
async def test_an_engine_without_a_settle_reads_once(tmp_path, settle):
    """No settle (settle 0 in the settings, or an engine built without one): the stale read is the answer."""
    kit = make_kit(tmp_path, {"rb": DEACTIVATE_STEPS + ESCALATE}, settle=settle)
    lag = Lagging(kit.iam.call, stale=1)
    kit.iam.call = lag.call  # type: ignore[method-assign]
    await kit.send()
    [result] = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (result["verified"], "verify_reads" in result, lag.stale_answers) == (False, False, 1)
    assert [b["status"] for b in kit.entries("step.escalated")] == ["unverified"]


@pytest.mark.parametrize("value", ["-1", "61", "nan", "inf", "soon"])
def test_a_bad_verify_settle_is_one_line_naming_it_and_exit_3(monkeypatch, value):
    """RESPONDER_VERIFY_SETTLE_S outside 0–60 s (or not a number) is one stderr line naming it, exit 3."""
    monkeypatch.setenv("RESPONDER_VERIFY_SETTLE_S", value)
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("✗ RESPONDER_VERIFY_SETTLE_S=")
    assert "Traceback" not in result.output


async def test_the_service_settles_its_runbook_steps_for_the_setting(tmp_path):
    """The service's engine re-reads for verify_settle_s (default 5 s; 0 kept as a settle of none)."""
    base = {"kafka_bootstrap": "127.0.0.1:1", "timeline_path": tmp_path / "t.jsonl", "runbooks_dir": tmp_path,
            "topics": ["a"]}
    assert Settings(**base).verify_settle_s == 5.0
    for seconds, waits in ((5.0, [0.5, 1.0, 2.0, 1.5]), (0.0, [])):
        service = Service(Settings(**base, verify_settle_s=seconds), runbooks=[])
        settle = service.engine.verify_settle
        assert settle is not None
        assert settle.waits() == waits
        service.recorder.close()
        await service.close_unstarted()


def test_a_fleet_whose_replicas_settle_differently_is_refused_and_the_default_keeps_the_digest(runbooks_dir):
    """Replicas that would page on the same stale read differently are two fleets; the default is no change."""
    books = load_runbooks(runbooks_dir, registry)
    assert fleet_digest(books, Settings(verify_settle_s=2)) != fleet_digest(books, Settings())
    assert fleet_digest(books, Settings(verify_settle_s=5.0)) == fleet_digest(books, Settings())


def test_the_timeline_line_of_a_settled_step_shows_its_reads():
    """`responder timeline show` names verify_reads next to verified, so a settled read-back is visible."""
    body = {"step": "deactivate", "status": "ok", "verified": True, "verify_reads": 3}
    entry = TimelineEntry(seq=1, writer="w", at="2026-12-05T00:00:00+00:00", kind="step.result", body=body,
                          prev="0", hash="0")
    assert "verified=True verify_reads=3" in summarize(entry)


async def test_a_step_still_unverified_after_a_settle_reads_once_when_a_new_event_reapplies_it(tmp_path):
    """A step still unverified after a settle reads once when a new event reapplies it, and each still escalates."""
    kit, waits, _ = _lagging(tmp_path, stale=99)
    for n in range(3):
        await kit.send(finding_id=f"f{n}", updated=f"2026-11-25T10:0{n}:00.000Z")
    results = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert [(r["verified"], r.get("verify_reads")) for r in results] == [(False, 5), (False, None), (False, None)]
    assert sum(waits.waited) == 5.0
    assert [b["status"] for b in kit.entries("step.escalated")] == ["unverified"] * 3


async def test_a_step_verified_before_settles_again_when_a_new_event_reapplies_it(tmp_path):
    """A step verified last time whose state drifted (a key re-activated by hand) settles again on its re-apply."""
    kit, waits, lag = _lagging(tmp_path, stale=0)
    await kit.send(finding_id="f1", updated="2026-11-25T10:00:00.000Z")
    kit.iam.keys[KEY]["Status"] = "Active"
    lag.stale = 1
    await kit.send(finding_id="f2", updated="2026-11-25T10:05:00.000Z")
    first, again = [b for b in kit.entries("step.result") if b["step"] == "deactivate"]
    assert (first["verified"], again["verified"], again["verify_reads"], waits.waited) == (True, True, 2, [0.5])
