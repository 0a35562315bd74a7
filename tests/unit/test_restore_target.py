"""`aws.iam.restore_inline_policy` names the role or user it acts on (`role/NAME`), its policy a parameter apart: the
guard reads that principal, never the policy name as a role under a path named after the principal (which refused a
restore on an unprotected role while a path glob or unique id was protected, the policy "role" not found), and still
refuses a restore on a protected principal."""

from __future__ import annotations

from typing import Any

import pytest

from responder.engine.iamprincipals import PrincipalForms
from responder.engine.protection import principals
from tests.guard_kit import IAM_PATHS, ROLE_ID, IamPaths, SettableClock, step_trips

RESTORE = "aws.iam.restore_inline_policy"


def _refusal(protected: list[str], iam: IamPaths, with_: dict[str, Any], actuator: str) -> str | None:
    """The detail of the step's hard trip, or None."""
    principals = PrincipalForms(iam, clock=SettableClock())
    hard = [t.detail for t in step_trips(protected, actuator, with_, principals=principals) if t.hard]
    return hard[0] if hard else None


def _restore(name: str, kind: str = "role", policy: str = "responder-quarantine") -> dict[str, Any]:
    return {"principal_type": kind, "principal_name": name, "policy_name": policy}


def test_the_restore_names_the_principal_not_a_role_named_after_its_policy() -> None:
    """The target is `role/NAME` and the only principal the guard reads is that role."""
    from responder.actuators.registry import registry

    actuator = registry.get(RESTORE)
    p = actuator.params.model_validate(_restore("app-worker"))
    assert actuator.target(p) == "role/app-worker"
    assert principals(actuator.target(p), p.model_dump(), ()) == {"role/app-worker"}


@pytest.mark.parametrize("protected", [["role/admins/*"], [ROLE_ID]])
def test_a_restore_on_an_unprotected_role_runs_while_a_path_glob_or_id_is_protected(protected: list[str]) -> None:
    """A policy restore on an unprotected role under `/` runs while a path glob or RoleId is protected."""
    iam = IamPaths(IAM_PATHS)
    assert _refusal(protected, iam, _restore("app-worker"), RESTORE) is None
    assert iam.reads == 1


def test_a_restore_is_not_refused_by_a_path_glob_named_after_the_principal() -> None:
    """`role/app-worker/*` protects roles under the path `/app-worker/`, not the role `app-worker` under `/`."""
    assert _refusal(["role/app-worker/*"], IamPaths(IAM_PATHS), _restore("app-worker"), RESTORE) is None


@pytest.mark.parametrize(("protected", "name", "kind"), [
    (["role/admins/*"], "break-glass", "role"), ([ROLE_ID], "prod-deployer", "role"),
    (["role/break-glass"], "break-glass", "role"), (["arn:aws:iam::*:user/ml-training"], "ml-training", "user"),
])
def test_a_restore_on_a_protected_principal_is_still_refused(protected: list[str], name: str, kind: str) -> None:
    """A restore on a protected role or user (path glob, unique id, path form, ARN) is refused, as that principal."""
    detail = _refusal(protected, IamPaths(IAM_PATHS), _restore(name, kind), RESTORE)
    assert detail is not None
    assert f"'{kind}/{name}'" in detail
    assert protected[0].casefold() in detail.casefold()
