"""Undo of an instance stop/start, a security-group restore and a key rotation is compare-and-set: each actuator
reports (`observe()`) the state its reverse changes, so a change made after the step is not overwritten without
`--force`; and the read is for undo only, never one more AWS call on the step's path. With an in-memory cloud."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from responder.actuators import registry
from responder.actuators.base import Actuator
from responder.engine.undo import Undoer
from responder.timeline import MemoryStore, Recorder
from tests.undo_kit import (
    ENI,
    INCIDENT,
    INSTANCE,
    OLD_KEY,
    SECRET,
    SG_OTHER,
    SG_QUARANTINE,
    SG_WEB,
    USER,
    FakeCloud,
    stepped,
)


@dataclass(frozen=True)
class Case:
    """One reversible actuator: the cloud before its step, its params, a change made by hand after it, the difference
    undo names for that change, and what the cloud holds once the step is undone."""

    actuator: str
    cloud: Callable[[], FakeCloud]
    params: dict[str, Any]
    change: Callable[[FakeCloud], None]
    diff: str
    undone: Callable[[FakeCloud], Any]
    expect: Any


def _start_again(cloud: FakeCloud) -> None:
    cloud.state = "running"


def _stop_again(cloud: FakeCloud) -> None:
    cloud.state = "stopped"


def _regroup(cloud: FakeCloud) -> None:
    cloud.enis[ENI] = [SG_OTHER]


def _reactivate(cloud: FakeCloud) -> None:
    cloud.keys[OLD_KEY] = "Active"


CASES = [
    Case("aws.ec2.stop_instance", FakeCloud, {"instance_id": INSTANCE}, _start_again,
         "state: recorded 'stopped', now 'running'", lambda c: c.state, "pending"),
    Case("aws.ec2.start_instance", lambda: FakeCloud("stopped"), {"instance_id": INSTANCE}, _stop_again,
         "state: recorded 'running', now 'stopped'", lambda c: c.state, "stopping"),
    Case("aws.ec2.restore_instance_groups", lambda: FakeCloud(groups=[SG_QUARANTINE]),
         {"instance_id": INSTANCE, "groups_by_eni": {ENI: [SG_WEB]}}, _regroup,
         f"groups_by_eni: recorded {{'{ENI}': ['{SG_WEB}']}}, now {{'{ENI}': ['{SG_OTHER}']}}",
         lambda c: c.enis[ENI], [SG_QUARANTINE]),
    Case("aws.iam.rotate_access_key", FakeCloud, {"user_name": USER, "access_key_id": OLD_KEY, "secret_name": SECRET},
         _reactivate, "status: recorded 'Inactive', now 'Active'", lambda c: c.keys[OLD_KEY], "Active"),
]
IDS = [c.actuator for c in CASES]


async def _done(case: Case) -> tuple[FakeCloud, Recorder]:
    """The case's step run and settled (an instance stopping has stopped)."""
    cloud, recorder = case.cloud(), Recorder(MemoryStore())
    result = await stepped(recorder, cloud, case.actuator, case.params)
    assert (result.ok, result.changed) == (True, True), result
    cloud.settle()
    return cloud, recorder


async def _undo(cloud: FakeCloud, recorder: Recorder, *, force: bool = False) -> dict[str, Any]:
    [outcome] = await Undoer(recorder, registry, cloud, attempts=1, allow_destructive=True, force=force).undo(INCIDENT)
    return outcome


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_reversible_actuator_observes_the_state_its_reverse_changes(case):
    """stop/start_instance, restore_instance_groups and rotate_access_key each define observe() (for undo)."""
    actuator = registry.get(case.actuator)
    assert type(actuator).observe is not Actuator.observe  # the base's cannot say
    assert actuator.reverse is not None


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_undo_proceeds_while_the_target_holds_the_after_state(case):
    """The target unchanged since the step (a stop settled to stopped): undo runs the reverse actuator."""
    cloud, recorder = await _done(case)
    outcome = await _undo(cloud, recorder)
    assert outcome["status"] == "ok", outcome
    assert "forced" not in outcome
    assert case.undone(cloud) == case.expect


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_undo_refuses_a_target_changed_after_the_step_naming_what_it_found(case):
    """Changed by hand after the step: undo skips it naming the recorded and the present state, and changes nothing."""
    cloud, recorder = await _done(case)
    case.change(cloud)
    seen = case.undone(cloud)
    outcome = await _undo(cloud, recorder)
    assert outcome["status"] == "skipped", outcome
    assert case.diff in outcome["reason"]
    assert "--force" in outcome["reason"]
    assert case.undone(cloud) == seen


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_forced_undo_of_a_changed_target_proceeds_and_records_what_it_overrode(case):
    """--force undoes a step whose target changed since, and its undo intent and outcome record the difference."""
    cloud, recorder = await _done(case)
    case.change(cloud)
    outcome = await _undo(cloud, recorder, force=True)
    assert outcome["status"] == "ok", outcome
    assert case.diff in outcome["forced"]
    [intent] = [e.body for e in recorder.entries() if e.kind == "undo.intent"]
    assert case.diff in str(intent["forced"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_observe_adds_no_read_to_the_step_path(case):
    """The step makes the same AWS calls as before observe() existed: its prior state is still read by apply."""
    cloud, recorder = case.cloud(), Recorder(MemoryStore())
    await stepped(recorder, cloud, case.actuator, case.params)
    reads = {"aws.ec2.stop_instance": {"describe_instances": 3},  # apply's two reads and the read-back
             "aws.ec2.start_instance": {"describe_instances": 3},
             "aws.ec2.restore_instance_groups": {"describe_network_interfaces": 2},
             "aws.iam.rotate_access_key": {"list_access_keys": 2, "get_secret_value": 2}}[case.actuator]
    assert {op: cloud.calls[op] for op in reads} == reads
    [intent] = [e.body for e in recorder.entries() if e.kind == "step.intent"]
    assert "before" not in intent
