"""Tabletop faults: a declared fault or kill that never fired during the run is a must-pass FAIL on the card."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from responder.sandbox import SANDBOX_CREDENTIALS
from responder.tabletop.faults import FaultyAws, VirtualClock
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
