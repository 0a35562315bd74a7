"""Protection reads what a step acts on: parameters an actuator declares are no identifiers of its target (a policy
name of responder's own, a prior policy document, a reason, a cutoff…) are not matched against protected ids, while
every other parameter still is, the principal of a restore included."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actuators.contract import bind_examples, examples
from responder.actuators.registry import registry
from responder.engine.iamprincipals import PrincipalForms
from responder.engine.protection import NAMING_PARAMS, identifier_forms, identifying
from tests.guard_kit import IAM_PATHS, ROLE_ID, IamPaths, SettableClock, event_naming, step_refused, step_trips

RESTORE = "aws.iam.restore_inline_policy"
ROLE = "ResponderRole"  # an alert's text a model step's reason may be bound to
BUCKET_ARN = "arn:aws:s3:::training-data"
PRIOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject",
                                                 "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"]}]}


def _restore(name: str = "app-worker", document: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"principal_type": "role", "principal_name": name, "policy_name": "responder-quarantine",
            "document": document}


def test_a_restore_is_not_refused_by_a_protected_pattern_its_policy_name_matches() -> None:
    """`responder-*` protected: the restore of an unprotected role's `responder-quarantine` policy is not refused."""
    assert step_trips(["responder-*"], RESTORE, _restore()) == []


def test_a_restore_is_not_refused_by_a_protected_arn_its_prior_document_names() -> None:
    """A prior document naming a protected bucket's ARN does not refuse the restore of an unprotected role's policy."""
    assert step_trips([f"{BUCKET_ARN}*"], RESTORE, _restore(document=PRIOR)) == []


@pytest.mark.parametrize(("protected", "name"), [
    ("responder-*", "responder-ops"), ("role/break-glass", "break-glass"), ("arn:aws:iam::*:role/app-*", "app-worker"),
])
def test_a_restore_on_a_protected_principal_is_still_refused(protected: str, name: str) -> None:
    """The restore's principal is still read: a role `responder-*`, a path form or an ARN protects is refused as it."""
    [trip] = step_trips([protected], RESTORE, _restore(name, PRIOR))
    assert trip.hard
    assert f"'role/{name}'" in trip.detail
    assert protected in trip.detail


def test_a_restore_policy_name_outside_iams_character_set_is_still_refused() -> None:
    """The policy name is not matched as an identifier, still checked against IAM's character set (a Cyrillic `е`)."""
    [trip] = step_trips([], RESTORE, {**_restore(), "policy_name": "responder-quarant\u0435ne"})
    assert trip.hard
    assert "policy_name" in trip.detail


def test_a_role_only_the_prior_document_names_is_not_read_as_the_restores_principal() -> None:
    """A protected role id: a prior document naming that role's ARN is not read through IAM, the restore's role is."""
    iam = IamPaths(IAM_PATHS)
    deployer = {**PRIOR, "Statement": [{"Effect": "Deny", "Action": "sts:AssumeRole",
                                        "Resource": "arn:aws:iam::123456789012:role/prod-deployer"}]}
    trips = step_trips([ROLE_ID], RESTORE, _restore(document=deployer),
                       principals=PrincipalForms(iam, clock=SettableClock()))
    assert trips == []
    assert iam.reads == 1  # app-worker's record only


@pytest.mark.parametrize(("protected", "actuator", "with_"), [
    ("bedrock*", "aws.iam.deny_bedrock_access", {"principal_type": "role", "principal_name": "app-worker"}),
    ("2026-*", "aws.iam.revoke_sessions",
     {"principal_type": "user", "principal_name": "ml-training", "issued_before": "2026-01-01T00:00:00Z"}),
    ("password", "aws.secretsmanager.rotate_secret", {"secret_id": "prod/db", "json_key": "password"}),
    ("ResponderRole", "model.quarantine_version", {"model": "fraud-scorer", "version": "v7", "reason": ROLE}),
    ("ResponderRole", "model.switch_version", {"model": "fraud-scorer", "version": "v6", "reason": ROLE}),
])
def test_a_declared_free_text_parameter_refuses_no_step(protected: str, actuator: str, with_: dict[str, Any]) -> None:
    """Bedrock actions, a cutoff, a secret's JSON field, a model step's reason: no protected id they match refuses."""
    assert not step_refused([protected], actuator, with_)


@pytest.mark.parametrize("name", ["principal_name", "principal_type"])
def test_a_parameter_that_names_the_target_is_read_even_when_declared_free(name: str) -> None:
    """Protection ignores a declaration that would drop a parameter it reads as naming a resource (fail closed)."""
    params = identifying(_restore("break-glass"), {name, "policy_name", "document"})
    forms, _ = identifier_forms("x", params, event_naming(), RESTORE)
    assert "role/break-glass" in forms


def test_no_actuator_declares_a_parameter_that_names_what_it_acts_on() -> None:
    """Every declared not-identifier is a parameter of its actuator, and none is one protection reads as a name."""
    for actuator in registry:
        assert set(actuator.not_identifiers) <= set(actuator.params.model_fields), actuator.name
        assert not set(actuator.not_identifiers) & NAMING_PARAMS, actuator.name


def test_no_declared_parameter_changes_the_target_a_step_names() -> None:
    """Each actuator's example step keeps its target whatever value a parameter it declares not an identifier takes."""
    for actuator in registry:
        for step in examples(actuator) if actuator.not_identifiers else ():
            p = actuator.params.model_validate(bind_examples(actuator.params, dict(step.get("with") or {})))
            for name in actuator.not_identifiers:
                other = p.model_copy(update={name: "responder-other"})
                assert actuator.target(other) == actuator.target(p), (actuator.name, name)
