"""`aws.iam.restore_inline_policy` as a runbook step, through the engine and moto, while a path glob is protected: it
restores the policy of a role outside the protected path (before: refused, the policy name read as a role that IAM
does not know) and is refused, escalated and paged on a role under it, the policy kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from responder.actuators.aws.iam_inline import deny_document
from responder.actuators.aws.iam_policies import QUARANTINE_POLICY
from tests.integration.protection_kit import one_protected_step, refused_and_escalated

pytestmark = pytest.mark.integration
PROTECTED = "arn:aws:iam::*:role/admins/*"
PROTECTED_PATH = "role/admins/*"  # not PROTECTED: one_protected_step names its key (paged once) after it


async def _quarantined(aws, tmp_path: Path, path: str) -> dict[str, str]:
    """A role created under `path` in moto, holding responder's quarantine policy: the restore step's parameters."""
    name = f"worker-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
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
