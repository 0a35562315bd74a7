"""Tabletop decisions: checked at load, answered from the timeline's requests, and a decision that answered nothing
fails its scenario (a `deny` drill cannot pass because the step merely timed out)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from responder.cli import app
from responder.models.timeline import EntryKind, TimelineEntry
from responder.tabletop.models import Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.runner import Scenario
from responder.tabletop.scorecard import build
from responder.tabletop.world import Bindings, Bound

ROOT = Path(__file__).resolve().parents[2]
AT = "2027-01-15T08:00:05+00:00"

PLAYBOOK = """\
id: pb
title: t
objectives: [o]
world:
  users:
    - name: alice
      keys: [main, spare]
injects:
  - id: finding
    at: 5s
    event: event.json
decisions:
  - {at: 60s, step: deactivate-key, target: main, decision: deny}
expectations:
  - id: denied
    kind: step_done
    actuator: aws.iam.deactivate_access_key
    status: denied
"""


def _validate(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    (tmp_path / "event.json").write_text('{"detail": {"ip": "203.0.113.9"}}')
    path = tmp_path / "pb.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["tabletop", "validate", "--runbooks", str(ROOT / "runbooks"), str(path)])
    return result.exit_code, result.output.replace("\n", ""), path


def _request(step: str, target: str, incident: str = "inc-a") -> TimelineEntry:
    body = {"step": step, "target": target, "digest": "d" * 64, "request_id": "ab" * 16, "actuator": "a"}
    return TimelineEntry(seq=3, writer="w", at=AT, kind=EntryKind.APPROVAL_REQUESTED, incident=incident, body=body,
                         prev="0", hash="0")


def _bindings() -> Bindings:
    b = Bindings()
    b.add("keys", Bound("AKIAMAIN", "main"))
    b.add("keys", Bound("AKIASPARE", "spare"))
    return b


def _playbook(tmp_path: Path) -> Playbook:
    code, out, path = _validate(tmp_path, PLAYBOOK)
    assert code == 0, out
    return Playbook.model_validate(yaml.safe_load(path.read_text()))


def test_a_valid_decision_loads(tmp_path):
    """A decision naming a runbook step, a world name and a known key, after the first inject, is valid."""
    assert _validate(tmp_path, PLAYBOOK)[0] == 0


def test_decision_target_must_be_a_world_name_or_carried(tmp_path):
    """A decision target that is no world name (a typo) is refused at its line with the world's names."""
    code, out, path = _validate(tmp_path, PLAYBOOK.replace("target: main", "target: mian"))
    assert (code, f"{path}:13:45" in out, "target 'mian' is no world name" in out,
            "choose from ['alice', 'main', 'quarantine', 'spare']" in out) == (3, True, True, True), out
    carried = PLAYBOOK.replace("target: main", "target: 203.0.113.9")  # a value the inject's event carries
    assert _validate(tmp_path, carried)[0] == 0


def test_decision_step_lists_the_steps_and_escalations(tmp_path):
    """A decision step no runbook records is refused with the choices, escalation ids among them."""
    code, out, path = _validate(tmp_path, PLAYBOOK.replace("step: deactivate-key", "step: escalate-oncall"))
    assert (code, f"{path}:13:21" in out, "step 'escalate-oncall' is no step a runbook records" in out,
            "'escalate-oncall.deactivate-key'" in out) == (3, True, True, True), out
    escalation = PLAYBOOK.replace("step: deactivate-key", "step: escalate-oncall.deactivate-key")
    assert _validate(tmp_path, escalation)[0] == 0


def test_decision_before_the_first_inject_is_refused(tmp_path):
    """A decision due no later than the first inject can answer nothing (no step is parked yet): refused at `at`."""
    code, out, path = _validate(tmp_path, PLAYBOOK.replace("at: 60s", "at: 5s"))
    assert (code, f"{path}:13:10" in out, "no later than the first inject (t+5s)" in out) == (3, True, True), out


def test_a_decision_that_finds_no_request_fails_the_scenario(tmp_path):
    """A decision that answered nothing is a must-pass FAIL saying why, even when every expectation passed."""
    pb = _playbook(tmp_path)
    denied = TimelineEntry(seq=4, writer="w", at=AT, kind=EntryKind.STEP_RESULT, incident="inc-a", prev="0",
                           hash="0", body={"step": "deactivate-key", "actuator": "aws.iam.deactivate_access_key",
                                           "status": "denied", "key": "k", "target": "AKIASPARE"})
    run = Run(pb, Path("pb.yaml"), Path("t.jsonl"), start=1_800_000_000.0, entries=[denied])
    run.inject_at = {"finding": 5.0}
    assert asyncio.run(build(run, None)).status == "PASS"  # type: ignore[arg-type]  # the timed-out step
    run.unanswered[0] = "deny of deactivate-key on main found no approval request to answer"
    card = asyncio.run(build(run, None))  # type: ignore[arg-type]
    assert card.status == "FAIL"
    [missed] = [g for g in card.grades if g.id == "decisions.0"]
    assert (missed.kind, missed.status, missed.must_pass) == ("decision", "FAIL", True)
    assert missed.instead == "t+60s: deny of deactivate-key on main found no approval request to answer"
    assert any(i.startswith("Must fix: decision `decisions.0` answered nothing") for i in card.improvements)


class _Host:
    def __init__(self, entries: list[TimelineEntry]) -> None:
        self._entries = entries

    def entries(self) -> list[TimelineEntry]:
        return self._entries


class _Producer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def publish(self, _topic: str, _key: bytes, value: bytes, _headers: Any) -> None:
        self.sent.append(value)


def _decide(tmp_path: Path, entries: list[TimelineEntry]) -> tuple[Scenario, _Producer]:
    pb = _playbook(tmp_path)
    scenario = Scenario(pb, tmp_path / "pb.yaml", None, [], ROOT / "runbooks", tmp_path, "key")  # type: ignore[arg-type]
    scenario.run_state.bindings = _bindings()
    scenario.host, producer = _Host(entries), _Producer()  # type: ignore[assignment]
    scenario.producer = producer  # type: ignore[assignment]
    asyncio.run(scenario._decide_factory(pb.decisions[0])())
    return scenario, producer


def test_runner_notes_a_decision_with_no_request_for_its_target(tmp_path):
    """The runner records (not only prints) a decision whose step was parked only for another target."""
    scenario, producer = _decide(tmp_path, [_request("deactivate-key", "AKIASPARE")])
    assert producer.sent == []
    why = scenario.run_state.unanswered[0]
    assert "requests so far: deactivate-key on keys/spare" in why


def test_runner_answers_the_request_for_its_target(tmp_path):
    """A decision whose request is on the timeline is sent, bound to that request, and noted as nothing missed."""
    scenario, producer = _decide(tmp_path, [_request("deactivate-key", "AKIASPARE"),
                                            _request("deactivate-key", "AKIAMAIN", incident="inc-m")])
    assert scenario.run_state.unanswered == {}
    [sent] = producer.sent
    assert (b'"incident":"inc-m"' in sent, b'"decision":"deny"' in sent) == (True, True)
