"""A dry run, a drill's card and `responder replay` show on-call told once per step per incident, as production does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from responder.cli import app
from responder.engine.partitions import cut, merge, release
from responder.engine.snapshot import EngineSnapshot
from responder.engine.state import EngineState
from responder.tabletop.failures import AGAIN, TOLD, step_failures
from responder.timeline.recorder import Recorder
from tests.drill_kit import EVENT, RUNBOOK, UNRESOLVED
from tests.drill_kit import PAGE as DRILL_PAGE
from tests.escalation_kit import PROTECTED
from tests.kit import DEACTIVATE_STEPS, ESCALATE, Kit, make_kit


async def _twice(kit: Kit, *, restart: bool = False) -> list[tuple[str, str]]:
    """Send two findings of one key (one incident); the kinds and reasons of the escalation step's entries."""
    await kit.send(finding_id="first")
    if restart:
        kit.start()
    await kit.send(finding_id="second")
    return [(e.kind, str(e.body.get("reason", ""))) for e in Recorder(kit.store).entries()
            if e.body.get("step") == "tell.deactivate" and e.kind != "step.intent"]


async def test_a_dry_run_plans_a_repeated_failures_escalation_once_as_production_runs_it(tmp_path):
    """The second refusal in an incident skips its planned escalation as already_done, as production skips its run."""
    (tmp_path / "prod").mkdir()
    (tmp_path / "dry").mkdir()
    production = make_kit(tmp_path / "prod", {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE})
    dry = make_kit(tmp_path / "dry", {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    assert await _twice(production) == [("step.result", ""), ("step.skipped", "already_done")]
    assert await _twice(dry) == [("step.planned", ""), ("step.skipped", "already_done")]
    assert len(dry.entries("step.escalated")) == 2  # each refusal is escalated; its page is planned once
    [skipped] = dry.entries("step.skipped")
    assert skipped["dry_run"] is True


async def test_a_restarted_dry_run_still_knows_the_escalation_it_planned(tmp_path):
    """The planned escalation is rebuilt from the timeline: a dry run restarted between the events plans it once."""
    dry = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    assert await _twice(dry, restart=True) == [("step.planned", ""), ("step.skipped", "already_done")]


async def test_the_drill_card_says_the_second_planned_refusal_would_not_be_told_again(tmp_path):
    """A drill in dry run lists the first refusal as told and the second as not told again, as production's card."""
    dry = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    await _twice(dry)
    first, second = step_failures(list(Recorder(dry.store).entries()), lambda e: float(e.seq))
    assert (first.told, first.told_by, second.told, second.told_by, second.already_done) == (
        TOLD, ["tell.deactivate"], AGAIN, [], ["tell.deactivate"])
    assert second.line().endswith("would not be told again: planned (tell.deactivate)")


def _replay(tmp_path: Path, runbook: str, *extra: str) -> tuple[int, str]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "silent-deactivation.yaml").write_text(runbook)
    finding = json.loads(EVENT.read_text())
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps({**finding, "id": f"finding-{n}"}) + "\n" for n in range(2)))
    result = CliRunner().invoke(app, ["replay", str(records), "--runbooks", str(runbooks), *extra])
    return result.exit_code, result.stdout


def test_replay_pages_once_per_step_and_incident(tmp_path, monkeypatch):
    """Two records of one incident whose step would fail: the first's page is planned, the second's already done."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(DRILL_PAGE))
    code, out = _replay(tmp_path, UNRESOLVED, "--json")
    result = json.loads(out)
    assert (code, len(result["incidents"])) == (0, 1)
    assert [p["step"] for p in result["planned"]] == ["page.deactivate-key"]
    first, second = result["failed"]
    assert (first["record"], first["escalation"], first["already_done"]) == (0, ["page.deactivate-key"], [])
    assert (second["record"], second["escalation"], second["already_done"]) == (1, [], ["page.deactivate-key"])
    code, text = _replay(tmp_path, UNRESOLVED)
    lines = [line for line in text.splitlines() if " would fail: " in line]
    assert lines[0].endswith("escalated: page.deactivate-key")
    assert lines[1].endswith("not told again: page.deactivate-key (already done for an earlier record)")


def test_replay_pages_once_for_a_step_a_protected_id_would_refuse_each_time(tmp_path, monkeypatch):
    """A refusal repeated in one incident: one planned page, the later refusal not told again."""
    monkeypatch.setenv("RESPONDER_DEFAULT_ON_FAILURE", json.dumps(DRILL_PAGE))
    guarded = RUNBOOK.replace("steps:\n", "guards: {protected: {ids: [AKIAEXAMPLE*]}}\nsteps:\n")
    code, out = _replay(tmp_path, guarded, "--json")
    assert code == 0
    first, second = json.loads(out)["failed"]
    assert [f["status"] for f in (first, second)] == ["refused", "refused"]
    assert (first["escalation"], second["escalation"], second["already_done"]) == (
        ["page.deactivate-key"], [], ["page.deactivate-key"])


def test_a_rebalance_keeps_the_planned_escalations_of_the_incidents_a_replica_still_holds():
    """Merging or releasing other incidents' slices keeps what a dry run planned for the incidents still held."""
    state, at = EngineState(), datetime(2026, 1, 1, tzinfo=UTC)
    for incident in ("kept", "moved"):
        state.incidents.restore(incident, "rb", incident, at)
        state.plan(f"key-{incident}", incident)
    other = EngineState()
    other.incidents.restore("arrived", "rb", "arrived", at)
    merge(state, cut(other, {"arrived"}).values())
    release(state, {"moved"})
    assert (state.planned("key-kept"), state.planned("key-moved")) == (True, False)
    state.clear()
    assert not state.planned("key-kept")


async def test_an_escalation_step_a_guard_would_refuse_is_planned_again_as_production_tries_it_again(tmp_path):
    """An escalation step refused for the first failure is not done: production and a dry run try it again."""
    guarded = PROTECTED.replace("]}}", ", oncall]}}") + DEACTIVATE_STEPS + ESCALATE  # its page's target protected too
    (tmp_path / "prod").mkdir()
    production = make_kit(tmp_path / "prod", {"rb": guarded})
    runs = [kind for kind, _ in await _twice(production) if kind != "guard.tripped"]
    assert runs == ["step.result", "step.result"]
    for restart in (False, True):  # remembered while running, and rebuilt from the timeline
        (tmp_path / f"dry-{restart}").mkdir()
        dry = make_kit(tmp_path / f"dry-{restart}", {"rb": guarded}, dry_run=True)
        assert await _twice(dry, restart=restart) == [("step.planned", ""), ("step.planned", "")]
        assert [p["would_refuse"] for p in dry.entries("step.planned")] == [True, True, True, True]


async def test_a_runbook_promoted_from_dry_run_pages_for_real_whatever_its_dry_run_planned(tmp_path):
    """The same runbook version put to enforce after a dry run pages on the next failure: a plan is no page sent."""
    kit = make_kit(tmp_path, {"rb": "mode: dry_run\n" + PROTECTED + DEACTIVATE_STEPS + ESCALATE})
    await kit.send(finding_id="first")
    path = kit.runbooks_dir / "rb.yaml"
    path.write_text(path.read_text().replace("mode: dry_run\n", ""))  # enforce, same id@version: same step keys
    kit.start()
    await kit.send(finding_id="second")
    pages = [(e.kind, e.body.get("status")) for e in Recorder(kit.store).entries()
             if e.body.get("step") == "tell.deactivate" and e.kind != "step.intent"]
    assert pages == [("step.planned", None), ("step.result", "ok")]
    assert [p.target for p in kit.echo.applied] == ["oncall"]  # on-call was told for real


async def test_a_replica_taking_an_incident_over_knows_the_escalation_its_dry_run_planned(tmp_path):
    """A replica taking an incident over via its fleet slice knows the escalation its dry run planned, paging once."""
    dry = make_kit(tmp_path, {"rb": PROTECTED + DEACTIVATE_STEPS + ESCALATE}, dry_run=True)
    await dry.send(finding_id="first")
    slices = [EngineSnapshot.model_validate_json(s.model_dump_json())
              for s in cut(dry.engine.state, set(dry.engine.state.incidents.by_id)).values()]
    dry.engine.state.clear()  # the replica that takes over knows only the slices
    merge(dry.engine.state, slices)
    await dry.send(finding_id="second")
    assert [(b["step"], b.get("reason")) for b in dry.entries("step.skipped")] == [("tell.deactivate", "already_done")]
