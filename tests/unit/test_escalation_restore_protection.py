"""An `on_failure` step of `aws.iam.restore_inline_policy` while `responder-*` is protected: its policy name and
document name nothing it acts on (`Actuator.not_identifiers`), so neither the escalation run at once nor one parked
(a full quota) and released by a human is refused or parked again for them: the unprotected user's policy is put
back."""

from __future__ import annotations

from pathlib import Path

import orjson

from responder.actuators.aws.iam_inline import deny_document
from responder.actuators.aws.iam_policies import QUARANTINE_POLICY
from tests.kit import DEACTIVATE_STEPS, MISSING_KEY, Kit, decision, make_kit

RESTORE = "aws.iam.restore_inline_policy"
STEP = "restore.deactivate"  # the on_failure step `restore`, escalating the step `deactivate`
PRIOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::training-data/*"}]}
PROTECTED = 'guards:\n  protected: {ids: ["responder-*"]}\n'
FULL = f"  quotas: [{{actuator: {RESTORE}, max: 1, window: 1h}}]\n"
RESTORE_ON_FAILURE = f"""\
on_failure:
  - id: restore
    actuator: {RESTORE}
    with:
      principal_type: user
      principal_name: ml-training
      policy_name: {QUARANTINE_POLICY}
      document: {orjson.dumps(PRIOR).decode()}
"""


def _kit(tmp_path: Path, guards: str = PROTECTED) -> Kit:
    """A kit whose deactivation escalates to restoring ml-training's quarantine policy (held in the fake IAM)."""
    kit = make_kit(tmp_path, {"rb": guards + DEACTIVATE_STEPS + RESTORE_ON_FAILURE})
    kit.iam.user_policies[("ml-training", QUARANTINE_POLICY)] = orjson.dumps(deny_document("Quarantine")).decode()
    return kit


def _restored(kit: Kit) -> None:
    """The restore ran and put PRIOR back, and no guard tripped for it."""
    assert not [b for b in kit.entries("guard.tripped") if b.get("guard") == "protected"], kit.entries()
    assert [(b["step"], b["status"]) for b in kit.entries("step.result")] == [("deactivate", "failed"),
                                                                               (STEP, "ok")], kit.entries()
    assert orjson.loads(kit.iam.user_policies[("ml-training", QUARANTINE_POLICY)]) == PRIOR


async def test_an_on_failure_restore_is_not_refused_by_a_protected_responder_star(tmp_path):
    """The deactivation fails: its on_failure restore of an unprotected user's responder-… policy runs, not refused."""
    kit = _kit(tmp_path)
    await kit.send(key=MISSING_KEY)
    assert kit.engine.state.parked_steps() == []
    _restored(kit)


async def test_a_parked_on_failure_restore_released_by_a_human_is_not_refused_by_a_protected_responder_star(tmp_path):
    """A restore escalation parked by a full quota, then approved, runs: not refused, not parked again as protected."""
    kit = _kit(tmp_path, PROTECTED + FULL)
    kit.engine.state.windows.record("rb", RESTORE, kit.clock())  # the quota is full
    await kit.send(key=MISSING_KEY)
    [parked] = kit.engine.state.parked_steps()
    assert parked.step == STEP
    assert [r.split(":")[0] for r in parked.reasons] == ["quota"]
    assert await kit.engine.decide(*decision(kit, parked.incident, STEP))
    await kit.engine.recorder.flush()
    assert kit.engine.state.parked_steps() == []
    _restored(kit)
