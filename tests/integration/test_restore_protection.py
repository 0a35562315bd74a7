"""`aws.iam.restore_inline_policy` as a runbook step, through the engine and moto, while a path glob is protected: it
restores the policy of a role outside the protected path (before: refused, the policy name read as a role that IAM
does not know) and is refused, escalated and paged on a role under it, the policy kept. While `responder-*` (or a
bucket its prior document names) is protected, its policy name and document are not read as its target: it restores an
unprotected role's policy (before: refused), as a failed step's `on_failure` step too, and is still refused on a role
`responder-*` protects; `responder undo` lifts a quarantine made under that protection."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from responder.actuators.aws.iam_inline import deny_document
from responder.actuators.aws.iam_policies import QUARANTINE_POLICY
from responder.engine.undo import Undoer
from tests.integration.protection_kit import (
    PROTECTED_STEP,
    one_protected_step,
    protected_engine,
    refused_and_escalated,
)

pytestmark = pytest.mark.integration
PROTECTED = "arn:aws:iam::*:role/admins/*"
PROTECTED_PATH = "role/admins/*"  # not PROTECTED: one_protected_step names its key (paged once) after it
RESTORE = "aws.iam.restore_inline_policy"
OWN = "responder-*"  # what protects responder's own role, and matches the name of every policy responder writes
BUCKET_ARN = "arn:aws:s3:::training-data"
PRIOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject",
                                                 "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"]}]}
RESTORE_ON_FAILURE = PROTECTED_STEP.split("on_failure:")[0] + """\
on_failure:
  - id: restore
    actuator: aws.iam.restore_inline_policy
    with: {principal_type: role, principal_name: %s, policy_name: responder-quarantine}
"""
"""`PROTECTED_STEP` escalating to a restore of a role's quarantine (`% ("%s", "%s", role)`)."""


async def _quarantined(aws, tmp_path: Path, path: str, prefix: str = "worker") -> dict[str, str]:
    """A role created under `path` in moto, holding responder's quarantine policy: the restore step's parameters."""
    name = f"{prefix}-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    await aws.call("iam", "create_role", RoleName=name, Path=path, AssumeRolePolicyDocument="{}")
    await aws.call("iam", "put_role_policy", RoleName=name, PolicyName=QUARANTINE_POLICY,
                   PolicyDocument=orjson.dumps(deny_document("ResponderQuarantine")).decode())
    return {"principal_type": "role", "principal_name": name, "policy_name": QUARANTINE_POLICY}


async def test_a_restore_step_lifts_a_quarantine_while_a_path_glob_is_protected(aws, tmp_path):
    """A role under `/`, `role/admins/*` protected: the restore runs, its target the role, and the policy is gone."""
    params = await _quarantined(aws, tmp_path, "/")
    entries, _ = await one_protected_step(aws, tmp_path, "aws.iam.restore_inline_policy", params, PROTECTED)
    assert not [b for k, b in entries if k == "guard.tripped"], entries
    results = [b for k, b in entries if k == "step.result"]
    assert [(b["status"], b["target"]) for b in results] == [("ok", f"role/{params['principal_name']}")], entries
    assert (await aws.call("iam", "list_role_policies", RoleName=params["principal_name"]))["PolicyNames"] == []


async def test_a_restore_step_on_a_role_under_a_protected_path_is_refused(aws, tmp_path):
    """A role under `/admins/`: the restore is refused as that role (escalated, paged), and its policy stays."""
    params = await _quarantined(aws, tmp_path, "/admins/")
    detail = await refused_and_escalated(aws, tmp_path, "aws.iam.restore_inline_policy", params, PROTECTED_PATH)
    assert f"'role/{params['principal_name']}'" in detail
    assert PROTECTED_PATH in detail
    policies = await aws.call("iam", "list_role_policies", RoleName=params["principal_name"])
    assert policies["PolicyNames"] == [QUARANTINE_POLICY]


async def test_a_restore_step_lifts_a_quarantine_while_responder_star_is_protected(aws, tmp_path):
    """`responder-*` protected: restoring an unprotected role's `responder-quarantine` runs and the policy is gone."""
    params = await _quarantined(aws, tmp_path, "/")
    entries, _ = await one_protected_step(aws, tmp_path, RESTORE, params, OWN)
    assert not [b for k, b in entries if k == "guard.tripped"], entries
    assert [b["status"] for k, b in entries if k == "step.result"] == ["ok"], entries
    assert (await aws.call("iam", "list_role_policies", RoleName=params["principal_name"]))["PolicyNames"] == []


async def test_a_restore_step_puts_back_a_prior_document_naming_a_protected_bucket(aws, tmp_path):
    """A bucket protected by ARN: a prior document naming it is put back on an unprotected role (before: refused)."""
    params = {**await _quarantined(aws, tmp_path, "/"), "document": PRIOR}
    entries, _ = await one_protected_step(aws, tmp_path, RESTORE, params, f"{BUCKET_ARN}*")
    assert [b["status"] for k, b in entries if k == "step.result" and b["step"] == "contain"] == ["ok"], entries
    got = await aws.call("iam", "get_role_policy", RoleName=params["principal_name"], PolicyName=QUARANTINE_POLICY)
    assert got["PolicyDocument"] == PRIOR


async def test_a_restore_step_on_a_role_responder_star_protects_is_refused(aws, tmp_path):
    """A role named `responder-…` under `responder-*`: its restore is refused as that role, and its policy stays."""
    params = await _quarantined(aws, tmp_path, "/", prefix="responder")
    detail = await refused_and_escalated(aws, tmp_path, RESTORE, params, OWN)
    assert params["principal_name"] in detail
    assert OWN in detail
    policies = await aws.call("iam", "list_role_policies", RoleName=params["principal_name"])
    assert policies["PolicyNames"] == [QUARANTINE_POLICY]


async def test_undo_lifts_a_quarantine_made_while_responder_star_is_protected(aws, tmp_path):
    """`responder-*` protected: a role's quarantine step runs, and undo restores it (its inline policy gone)."""
    name = (await _quarantined(aws, tmp_path, "/"))["principal_name"]
    await aws.call("iam", "delete_role_policy", RoleName=name, PolicyName=QUARANTINE_POLICY)
    engine, _ = await protected_engine(aws, tmp_path, "aws.iam.quarantine_principal",
                                       {"principal_type": "role", "principal_name": name}, OWN)
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == [QUARANTINE_POLICY]
    [incident] = {e.incident for e in engine.recorder.entries() if e.kind == "step.result"}
    outcomes = await Undoer(engine.recorder, engine.registry, aws).undo(incident)
    assert [(o["reverse"], o["status"]) for o in outcomes] == [(RESTORE, "ok")], outcomes
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == []


async def test_an_on_failure_restore_lifts_a_quarantine_while_responder_star_is_protected(aws, tmp_path):
    """`responder-*` protected: a failed step's on_failure restore of an unprotected role runs, the policy gone."""
    name = (await _quarantined(aws, tmp_path, "/"))["principal_name"]
    failing = {"user_name": f"{name}-nobody", "access_key_id": "AKIAZZZZZZZZZZZZZZZZ"}  # no such user: it fails
    entries, _ = await one_protected_step(aws, tmp_path, "aws.iam.deactivate_access_key", failing, OWN,
                                          runbook=RESTORE_ON_FAILURE % ("%s", "%s", name))
    assert not [b for k, b in entries if k == "guard.tripped"], entries
    assert [(b["step"], b["status"]) for k, b in entries if k == "step.result"] == [
        ("contain", "failed"), ("restore.contain", "ok")], entries
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == []
