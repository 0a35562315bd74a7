"""Tabletop faults: a declared fault or kill that never fired during the run is a must-pass FAIL on the card."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from responder.sandbox import SANDBOX_CREDENTIALS
from responder.tabletop.faults import FaultyAws, VirtualClock, armed
from responder.tabletop.fired import grades
from responder.tabletop.models import AwsFault, Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.scorecard import build
from responder.timeline.checkpoint import Checker, generate_keypair

FAULTS: list[dict[str, Any]] = [
    {"service": "iam", "operation": "UpdateAccessKey", "times": 1},  # fires
    {"service": "iam", "operation": "DeleteAccessKey"},  # a real operation the service never calls
    {"kill_during": "UpdateAccessKey"},  # fires
    {"kill_during": "DeleteAccessKey"},
    {"kill_at": 35},  # the scenario never got there
]


def _playbook() -> Playbook:
    return Playbook.model_validate({"id": "pb", "title": "t", "objectives": ["o"], "faults": FAULTS,
                                    "injects": [{"id": "finding", "event": "e.json"}],
                                    "expectations": [{"id": "once", "kind": "no_double_action"}]})


def _fired_run(tmp_path: Path) -> Run:
    """A run in which the first AWS fault was injected by the service's own hook and the first kill happened."""
    pb = _playbook()
    loop = asyncio.new_event_loop()
    try:
        aws = FaultyAws(endpoint_url="http://127.0.0.1:9", credentials=SANDBOX_CREDENTIALS, clock=VirtualClock(0.0),
                        faults=[f for f in pb.faults if isinstance(f, AwsFault)], loop=loop)
        call = SimpleNamespace(name="UpdateAccessKey", service_model=SimpleNamespace(service_name="iam"))
        assert aws._before_call(call) is not None  # throttled: recorded as AWS fault 0
    finally:
        loop.close()
    run = Run(pb, tmp_path / "pb.yaml", tmp_path / "t.jsonl", faults=aws.injected,
              kills=[{"at": 10.0, "pid": 1, "signal": "SIGKILL", "returncode": -9, "during": ["UpdateAccessKey"]}])
    run.inject_at = {"finding": 0.0}
    return run


def test_each_fault_that_never_fired_is_a_must_pass_fail(tmp_path):
    """Only faults that did not fire (an uncalled operation, an unmade call, an unreached kill_at) are graded FAIL."""
    got = grades(_fired_run(tmp_path))
    assert [(g.id, g.kind, g.status, g.must_pass) for g in got] == [
        ("faults.1", "fault", "FAIL", True), ("faults.3", "fault", "FAIL", True), ("faults.4", "fault", "FAIL", True)]
    assert "iam DeleteAccessKey (throttle, t+0s..t+3600s) never fired" in got[0].instead
    assert "kill_during DeleteAccessKey never fired" in got[1].instead
    assert "kill_at t+35s never fired" in got[2].instead


def test_a_card_whose_fault_never_fired_fails_and_says_what_to_fix(tmp_path):
    """Every expectation passing does not make a scenario PASS while a declared fault never fired."""
    run = _fired_run(tmp_path)
    card = asyncio.run(build(run, Checker.from_text(generate_keypair()[1])))
    assert (card.status, [g.status for g in card.grades if g.kind != "fault"]) == ("FAIL", ["PASS"])
    assert "Must fix: fault `faults.1`: iam DeleteAccessKey" in "\n".join(card.improvements)


def _kills_run(tmp_path: Path, faults: list[dict[str, Any]], kills: list[dict[str, Any]]) -> Run:
    pb = Playbook.model_validate({"id": "pb", "title": "t", "objectives": ["o"], "faults": faults,
                                  "injects": [{"id": "finding", "event": "e.json"}],
                                  "expectations": [{"id": "once", "kind": "no_double_action"}]})
    return Run(pb, tmp_path / "pb.yaml", tmp_path / "t.jsonl", kills=kills)


def test_kill_at_faults_are_matched_to_kills_by_time_not_playbook_order(tmp_path):
    """With kill_at 60 listed before kill_at 10 and only the t+10s kill made, the t+60s one (faults.0) is blamed."""
    run = _kills_run(tmp_path, [{"kill_at": 60}, {"kill_at": 10}], [{"at": 10.0, "during": ["kill_at"]}])
    assert [(g.id, "kill_at t+60s never fired" in str(g.instead)) for g in grades(run)] == [("faults.0", True)]


def test_two_kill_during_on_one_operation_each_need_a_kill(tmp_path):
    """Two kill_during UpdateAccessKey and one kill during it: the second (faults.1) never fired; two kills: none."""
    faults: list[dict[str, Any]] = [{"kill_during": "UpdateAccessKey"}, {"kill_during": "UpdateAccessKey"}]
    once = [{"at": 10.0, "during": ["UpdateAccessKey"]}]
    assert [g.id for g in grades(_kills_run(tmp_path, faults, once))] == ["faults.1"]
    assert grades(_kills_run(tmp_path, faults, once * 2)) == []


def test_a_restarted_service_arms_a_second_kill_during_on_the_same_operation():
    """After one kill during UpdateAccessKey, a restarted child keeps the other kill_during on it armed."""
    faults = _kills_run(Path("."), [{"kill_during": "UpdateAccessKey"}, {"kill_during": "UpdateAccessKey"},
                                    {"kill_at": 5}], []).playbook.faults
    assert armed(faults, ["UpdateAccessKey"]) == faults[1:]
    assert armed(faults, ["UpdateAccessKey", "UpdateAccessKey"]) == faults[2:]
