"""Undo of an instance stop/start and a key rotation is compare-and-set: each actuator reports (`observe()`) the state
its reverse changes, so a change made after the step is not overwritten without `--force`; and the read is for undo
only, never one more AWS call on the step's path. Undo of a security-group restore isolates nothing. With an
in-memory cloud."""

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
    SG_WEB,
    STEP_KEY,
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


def _reactivate(cloud: FakeCloud) -> None:
    cloud.keys[OLD_KEY] = "Active"


CASES = [
    Case("aws.ec2.stop_instance", FakeCloud, {"instance_id": INSTANCE}, _start_again,
         "state: recorded 'stopped', now 'running'", lambda c: c.state, "pending"),
    Case("aws.ec2.start_instance", lambda: FakeCloud("stopped"), {"instance_id": INSTANCE}, _stop_again,
         "state: recorded 'running', now 'stopped'", lambda c: c.state, "stopping"),
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
    """stop/start_instance and rotate_access_key each define observe() (for undo)."""
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
             "aws.iam.rotate_access_key": {"list_access_keys": 2, "get_secret_value": 2}}[case.actuator]
    assert {op: cloud.calls[op] for op in reads} == reads
    [intent] = [e.body for e in recorder.entries() if e.kind == "step.intent"]
    assert "before" not in intent


@pytest.mark.parametrize(("actuator", "start", "recorded", "now"), [
    ("aws.ec2.stop_instance", "running", "stopping", "stopped"),
    ("aws.ec2.start_instance", "stopped", "pending", "running"),
])
async def test_a_stop_or_start_recorded_in_transition_before_this_release_still_undoes(actuator, start, recorded, now):
    """A step recorded by an older release (after-state `stopping`/`pending`), since settled, undoes without --force."""
    cloud, recorder = FakeCloud(now), Recorder(MemoryStore())
    head = {"step": "contain", "actuator": actuator, "target": INSTANCE, "key": STEP_KEY}
    recorder.append("step.intent", {**head, "params": {"instance_id": INSTANCE}}, INCIDENT)
    recorder.append("step.result", {**head, "status": "ok", "changed": True, "verified": True,
                                    "prior": {"state": start}, "after": {"state": recorded}}, INCIDENT)
    outcome = await _undo(cloud, recorder)
    assert outcome["status"] == "ok", outcome
    assert "forced" not in outcome
    assert cloud.state == {"running": "pending", "stopped": "stopping"}[start]


async def test_undo_of_a_restore_never_isolates_the_instance():
    """Undo of restore_instance_groups is skipped (nothing to reverse): no quarantine group or tag, groups unchanged."""
    cloud, recorder = FakeCloud(groups=[SG_OTHER]), Recorder(MemoryStore())
    result = await stepped(recorder, cloud, "aws.ec2.restore_instance_groups",
                           {"instance_id": INSTANCE, "groups_by_eni": {ENI: [SG_WEB]}})
    assert (result.ok, result.changed) == (True, True), result
    outcome = await _undo(cloud, recorder)
    assert (outcome["status"], outcome["reason"]) == ("skipped", "nothing recorded to restore"), outcome
    assert cloud.enis[ENI] == [SG_WEB]
    assert not cloud.tags
    assert not [e for e in recorder.entries() if e.kind == "undo.intent"]


@pytest.mark.parametrize("by_hand", ["deleted", "Inactive"])
async def test_undo_of_a_rotation_whose_new_key_is_gone_or_inactive_is_refused(by_hand):
    """The new key deleted or deactivated by hand since the rotation: undo skips it, the old key stays Inactive."""
    cloud, recorder = FakeCloud(), Recorder(MemoryStore())
    await stepped(recorder, cloud, "aws.iam.rotate_access_key",
                  {"user_name": USER, "access_key_id": OLD_KEY, "secret_name": SECRET})
    [new] = [k for k in cloud.keys if k != OLD_KEY]
    if by_hand == "deleted":
        del cloud.keys[new]
    else:
        cloud.keys[new] = "Inactive"
    outcome = await _undo(cloud, recorder)
    assert outcome["status"] == "skipped", outcome
    assert f"new_access_key_id: recorded '{new}', now None" in outcome["reason"]
    assert cloud.keys[OLD_KEY] == "Inactive"
