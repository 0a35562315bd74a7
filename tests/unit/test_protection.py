"""Protected ids match every identifier form of a target; IAM names outside IAM's character set are refused."""

from __future__ import annotations

from typing import Any

import pytest

from responder.engine import guards
from responder.engine.guards import protected_hit
from responder.engine.protection import invalid_iam_name
from responder.models.event import Event, Resource, ResourceKind
from responder.models.runbook import Protected
from tests.guard_kit import DEPLOYER, QUARANTINE, event_naming, step_trips

ROLE_PARAMS = {"principal_type": "role", "principal_name": "ResponderRole"}


def _hit(pattern: str, target: str, params: dict, event: Event | None = None) -> str | None:
    matched = protected_hit([Protected(ids=[pattern])], target, params, event or event_naming())
    return matched.hit if matched is not None else None


@pytest.mark.parametrize("pattern", [
    "arn:aws:iam::*:role/ResponderRole",
    "arn:aws:iam::123456789012:role/ResponderRole",
    "arn:aws:iam::*:role/responderrole",
    "ResponderRole",
    "responder*",
    "role/ResponderRole",
    "arn:aws:iam::*:role/*Responder*",
])
def test_every_form_of_a_role_named_by_name_is_protected(pattern: str) -> None:
    """A role a step names only by name is protected by its name, path form or ARN glob, in any case."""
    assert _hit(pattern, "role/ResponderRole", ROLE_PARAMS) is not None


def test_an_arn_for_another_role_does_not_match() -> None:
    """The ARN's resource still counts: another role, or a user of the role's name, is not protected."""
    assert _hit("arn:aws:iam::*:role/ResponderRole", "role/Other", {**ROLE_PARAMS, "principal_name": "Other"}) is None
    assert _hit("arn:aws:iam::*:user/ResponderRole", "role/ResponderRole", ROLE_PARAMS) is None


def test_unique_id_and_path_from_the_event_resource_protect_the_target() -> None:
    """A role's unique id (AROA…) or its path ARN, known from the event, protects the role named by name."""
    role = Resource(kind=ResourceKind.IAM_ROLE, id="ResponderRole", name="ResponderRole",
                    attributes={"unique_id": "AROAEXAMPLEROLE00001", "path": "/platform/"})
    event = event_naming(role)
    assert _hit("AROAEXAMPLEROLE00001", "role/ResponderRole", ROLE_PARAMS, event) is not None
    assert _hit("arn:aws:iam::*:role/platform/ResponderRole", "role/ResponderRole", ROLE_PARAMS, event) is not None


def test_a_key_is_protected_through_its_user_and_principal_id() -> None:
    """An access key step is refused when its user (by ARN) or its principal's unique id is protected."""
    key = Resource(kind=ResourceKind.ACCESS_KEY, id="AKIAEXAMPLEKEY000001",
                   attributes={"user_name": "break-glass-admin", "principal_id": "AIDAEXAMPLEUSER00001"})
    params = {"user_name": "break-glass-admin", "access_key_id": "AKIAEXAMPLEKEY000001"}
    event = event_naming(key)
    assert _hit("arn:aws:iam::*:user/break-glass-*", "AKIAEXAMPLEKEY000001", params, event) is not None
    assert _hit("AIDAEXAMPLEUSER00001", "AKIAEXAMPLEKEY000001", params, event) is not None
    assert _hit("akiaexamplekey000001", "AKIAEXAMPLEKEY000001", params, event) is not None


def test_an_assumed_role_session_arn_is_its_role() -> None:
    """A step given an sts assumed-role ARN is protected by the role's IAM ARN."""
    arn = "arn:aws:sts::123456789012:assumed-role/ResponderRole/i-0abc"
    assert _hit("arn:aws:iam::*:role/ResponderRole", arn, {"principal_arn": arn}) is not None


def test_look_alike_iam_names_are_refused() -> None:
    """A Cyrillic `е` in `brеak-glass-admin` is not a valid IAM name: refused, not treated as another name."""
    assert invalid_iam_name({"user_name": "br\u0435ak-glass-admin"}) is not None
    assert invalid_iam_name({"principal_name": "Responder Role"}) is not None
    assert invalid_iam_name({"principal_name": "svc+ci=x,y.z@w-1_2"}) is None
    assert invalid_iam_name({"title": "br\u0435ak"}) is None


def test_a_step_s_guard_refuses_by_protected_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's guard refuses by protected_hit's answer: the matching these tests check is the one a step runs."""
    seen: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(real(*args, **kwargs))
        return seen[-1]

    real = guards.protected_hit
    monkeypatch.setattr(guards, "protected_hit", spy)
    [trip] = step_trips(["prod-deployer"], QUARANTINE, DEPLOYER)
    [matched] = seen
    assert trip.hard
    assert trip.detail == matched.hit
    assert matched.hit == "'role/prod-deployer' (as 'prod-deployer') matches protected id 'prod-deployer'"
