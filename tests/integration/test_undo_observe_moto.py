"""Undo of an instance stop/start and a key rotation is compare-and-set on the moto server:
undone while the target holds the step's after-state, refused (naming what it found) once it was changed by hand,
undone with `--force` anyway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from responder.actuators import registry
from responder.engine.undo import Undoer
from responder.timeline import MemoryStore, Recorder
from tests.integration.actuator_cases import CASES as ACTUATOR_CASES
from tests.undo_kit import INCIDENT, stepped

pytestmark = pytest.mark.integration
SETUP = {c.actuator: c.setup for c in ACTUATOR_CASES}


async def _state(aws: Any, p: dict[str, Any]) -> str:
    out = await aws.call("ec2", "describe_instances", InstanceIds=[p["instance_id"]])
    return str(out["Reservations"][0]["Instances"][0]["State"]["Name"])


async def _stopped(aws: Any) -> dict[str, Any]:
    params = await SETUP["aws.ec2.stop_instance"](aws)
    await aws.call("ec2", "stop_instances", InstanceIds=[params["instance_id"]])
    return params


async def _key(aws: Any, p: dict[str, Any]) -> str:
    out = await aws.call("iam", "list_access_keys", UserName=p["user_name"])
    return next(str(k["Status"]) for k in out["AccessKeyMetadata"] if k["AccessKeyId"] == p["access_key_id"])


async def _reactivate(aws: Any, p: dict[str, Any]) -> None:
    await aws.call("iam", "update_access_key", UserName=p["user_name"], AccessKeyId=p["access_key_id"],
                   Status="Active")


@dataclass(frozen=True)
class Case:
    """One reversible actuator on moto: its target, a change by hand, the difference undo names, and a view of what
    the reverse changes with its value once undone."""

    actuator: str
    setup: Callable[[Any], Awaitable[dict[str, Any]]]
    change: Callable[[Any, dict[str, Any]], Awaitable[Any]]
    diff: str
    view: Callable[[Any, dict[str, Any]], Awaitable[Any]]
    undone: Any


CASES = [
    Case("aws.ec2.stop_instance", SETUP["aws.ec2.stop_instance"],
         lambda aws, p: aws.call("ec2", "start_instances", InstanceIds=[p["instance_id"]]),
         "state: recorded 'stopped', now 'running'", _state, "running"),
    Case("aws.ec2.start_instance", _stopped,
         lambda aws, p: aws.call("ec2", "stop_instances", InstanceIds=[p["instance_id"]]),
         "state: recorded 'running', now 'stopped'", _state, "stopped"),
    Case("aws.iam.rotate_access_key", SETUP["aws.iam.rotate_access_key"], _reactivate,
         "status: recorded 'Inactive', now 'Active'", _key, "Active"),
]
IDS = [c.actuator for c in CASES]


async def _done(aws: Any, case: Case) -> tuple[Recorder, dict[str, Any]]:
    params = await case.setup(aws)
    recorder = Recorder(MemoryStore())
    result = await stepped(recorder, aws, case.actuator, params)
    assert (result.ok, result.changed) == (True, True), result
    return recorder, params


async def _undo(aws: Any, recorder: Recorder, *, force: bool = False) -> dict[str, Any]:
    [outcome] = await Undoer(recorder, registry, aws, attempts=1, allow_destructive=True, force=force).undo(INCIDENT)
    return outcome


def _holds(view: Any, undone: Any) -> bool:
    return undone in str(view)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_undo_on_moto_proceeds_while_the_after_state_holds(aws, case):
    """The target unchanged since the step: undo runs the reverse actuator on moto."""
    recorder, params = await _done(aws, case)
    outcome = await _undo(aws, recorder)
    assert outcome["status"] == "ok", outcome
    assert _holds(await case.view(aws, params), case.undone)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_undo_on_moto_refuses_a_change_made_after_the_step_unless_forced(aws, case):
    """Changed by hand after the step: undo skips it naming the difference; with --force it runs and records it."""
    recorder, params = await _done(aws, case)
    await case.change(aws, params)
    seen = await case.view(aws, params)
    refused = await _undo(aws, recorder)
    assert refused["status"] == "skipped", refused
    assert case.diff in refused["reason"]
    assert await case.view(aws, params) == seen
    forced = await _undo(aws, recorder, force=True)
    assert forced["status"] == "ok", forced
    assert case.diff in forced["forced"]
