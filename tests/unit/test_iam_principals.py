"""A protected unique id (`AROA…`, `AIDA…`) or path glob (`role/admins/*`) protects the role or user a step names by
name only, its id and path read through IAM whatever the event carries; a principal that cannot be read refuses the
step (fail closed), and nothing is read when no protected id needs it."""

from __future__ import annotations

from typing import Any

import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.actuators.base import AwsCaller
from responder.engine.arnforms import Home
from responder.engine.iamprincipals import PrincipalForms, principal_kinds
from responder.engine.protection import principals
from responder.errors import PermanentActuationError, TransientActuationError
from responder.models.event import Resource, ResourceKind
from tests.guard_kit import (
    DEPLOYER,
    IAM_PATHS,
    QUARANTINE,
    ROLE_ID,
    USER_ID,
    IamPaths,
    SettableClock,
    event_naming,
    step_trips,
)


def _refusal(protected: list[str], iam: AwsCaller, with_: dict[str, Any], actuator: str = QUARANTINE,
             **kw: Any) -> str | None:
    """The detail of the step's hard trip, or None."""
    principals = PrincipalForms(iam, clock=SettableClock())
    hard = [t.detail for t in step_trips(protected, actuator, with_, principals=principals, **kw) if t.hard]
    return hard[0] if hard else None


@pytest.mark.parametrize(("actuator", "with_"), [
    (QUARANTINE, DEPLOYER), ("aws.iam.revoke_sessions", DEPLOYER),
    ("aws.sagemaker.isolate_endpoint", {"endpoint_name": "fraud-scoring", "role_names": ["prod-deployer"]}),
])
def test_a_protected_role_id_protects_the_role_named_by_name_only(actuator: str, with_: dict[str, Any]) -> None:
    """RoleId protected, the step names the role by name, the event carries no id: refused (before: it acted)."""
    detail = _refusal([ROLE_ID], IamPaths(IAM_PATHS), with_, actuator)
    assert detail is not None
    assert ROLE_ID.casefold() in detail
    assert _refusal([ROLE_ID], IamPaths(IAM_PATHS), {**DEPLOYER, "principal_name": "app-worker"}) is None


def test_a_protected_user_id_protects_the_user_named_by_name_only() -> None:
    """UserId protected: deactivating an access key of the user named by name is refused (before: it acted)."""
    iam = IamPaths(IAM_PATHS)
    params = {"user_name": "ml-training", "access_key_id": "AKIAABCDEFGHIJKLMNOP"}
    assert _refusal([USER_ID], iam, params, "aws.iam.deactivate_access_key") is not None
    assert iam.reads == 1


@pytest.mark.parametrize("pattern", ["arn:aws:iam::*:role/admins/*", "role/admins/*",
                                     "arn:aws:iam::123456789012:role/*/break-*"])
def test_a_path_glob_protects_the_role_named_by_name_only(pattern: str) -> None:
    """A path glob protects a role under that path named by name only, and not a role under another path."""
    assert _refusal([pattern], IamPaths(IAM_PATHS), {**DEPLOYER, "principal_name": "break-glass"}) is not None
    assert _refusal([pattern], IamPaths(IAM_PATHS), {**DEPLOYER, "principal_name": "app-worker"}) is None


@pytest.mark.parametrize("pattern", ["/admins/*", "/admins/", "arn*admins*", "ar?:aws:iam::*:role/admins/*"])
def test_a_bare_pattern_matching_a_path_or_an_arn_protects_the_role_named_by_name_only(pattern: str) -> None:
    """A non-ARN protected id matching a path or ARN refuses the /admins/ role named by name only, not one under /."""
    assert _refusal([pattern], IamPaths(IAM_PATHS), {**DEPLOYER, "principal_name": "break-glass"}) is not None
    assert _refusal([pattern], IamPaths(IAM_PATHS), {**DEPLOYER, "principal_name": "app-worker"}) is None


@pytest.mark.parametrize("pattern", [f"{ROLE_ID}:*", f"{ROLE_ID}:some-session", f"{ROLE_ID[:10]}*:*",
                                     f"{ROLE_ID.casefold()}:ops-?"])
def test_a_role_id_protected_in_its_session_form_protects_the_role_named_by_name(pattern: str) -> None:
    """A protected `AROA…:*` or `AROA…:session` refuses a step on the role named by name, not another RoleId's."""
    iam = IamPaths(IAM_PATHS)
    detail = _refusal([pattern], iam, DEPLOYER)
    assert detail is not None
    assert f"(as '{ROLE_ID.casefold()}:') matches protected id {pattern!r}" in detail
    assert iam.reads == 1
    assert _refusal([pattern], IamPaths(IAM_PATHS), {**DEPLOYER, "principal_name": "app-worker"}) is None


def test_a_user_id_protected_in_its_session_form_protects_the_user_named_by_name() -> None:
    """A protected `AIDA…:*` refuses deactivating an access key of the user named by name (before: it acted)."""
    params = {"user_name": "ml-training", "access_key_id": "AKIAABCDEFGHIJKLMNOP"}
    assert _refusal([f"{USER_ID}:*"], IamPaths(IAM_PATHS), params, "aws.iam.deactivate_access_key") is not None
    other = {"user_name": "app-worker", "access_key_id": "AKIAABCDEFGHIJKLMNOP"}
    assert _refusal([f"{USER_ID}:*"], IamPaths({**IAM_PATHS, "user/app-worker": "/"}), other,
                    "aws.iam.deactivate_access_key") is None


@pytest.mark.parametrize("pattern", ["arn:aws:sts::123456789012:assumed-role/other/*", "arn:aws:iam::*:role/other",
                                     f"arn:aws:sts::123456789012:assumed-role/{ROLE_ID}/*", "prod-*:*",
                                     "AKIAABCDEFGHIJKLMNOP:*"])
def test_a_session_form_gives_no_new_meaning_to_an_arn_or_a_pattern_unlike_a_unique_id(pattern: str) -> None:
    """An ARN, or a pattern whose part before `:` cannot be a unique id, does not protect the role; none is read."""
    iam = IamPaths(IAM_PATHS)
    assert _refusal([pattern], iam, DEPLOYER, home=Home(account="123456789012")) is None
    assert iam.reads == 0


@pytest.mark.parametrize("pattern", ["*:role/prod-deployer-old", "*:*/other", "?roa*:x"])
def test_a_part_before_the_colon_starting_with_a_wildcard_is_no_session_form(pattern: str) -> None:
    """A loose ARN-like glob (`*:role/…`) reads the role but does not protect it by its unique id: not refused."""
    iam = IamPaths(IAM_PATHS)
    assert _refusal([pattern], iam, DEPLOYER) is None
    assert iam.reads == 1


@pytest.mark.parametrize(("pattern", "variants"), [
    ("aroa3xfrbf535plbifpi4:*", ("aroa3xfrbf535plbifpi4:*", "aroa3xfrbf535plbifpi4:")),
    ("aida3x*:alice", ("aida3x*:alice", "aida3x*:")), ("a*:*", ("a*:*", "a*:")),
    ("akiaabcdefghijklmnop:x", ("akiaabcdefghijklmnop:x", "akiaabcdefghijklmnop:")),
    ("arn:aws:sts::123456789012:assumed-role/other/*",
     ("arn:aws:sts::123456789012:assumed-role/other/*", "arn:aws:iam::123456789012:role/other")),
    ("arn:*", ("arn:*",)), ("arn*:*", ("arn*:*",)), ("*:*", ("*:*",)), ("prod-*:*", ("prod-*:*",)),
    ("aroa-team:x", ("aroa-team:x",)), (ROLE_ID.casefold(), (ROLE_ID.casefold(),)),
])
def test_which_patterns_are_a_unique_ids_session_form(pattern: str, variants: tuple[str, ...]) -> None:
    """Only a non-ARN pattern whose part before `:` is or may start like a unique id also protects that id."""
    from responder.engine.arnforms import pattern_variants

    assert pattern_variants(pattern) == variants


def test_a_forged_id_and_path_in_the_event_do_not_spare_the_read() -> None:
    """The event's own RoleId and path (an attacker's) are not trusted: the role is read, and refused."""
    iam = IamPaths(IAM_PATHS)
    forged = Resource(kind=ResourceKind.IAM_ROLE, id="break-glass", name="break-glass",
                      attributes={"role_id": "AROAFORGEDFORGEDFORGE", "path": "/"})
    assert _refusal(["role/admins/*", ROLE_ID], iam, {**DEPLOYER, "principal_name": "break-glass"},
                    event=event_naming(forged)) is not None
    assert iam.reads == 1


@pytest.mark.parametrize(("error", "why"), [
    (PermanentActuationError("AccessDenied: not authorized to perform iam:GetRole", code="AccessDenied"),
     "no permission"),
    (TransientActuationError("Throttling: Rate exceeded", code="Throttling"), "throttled"),
    (PermanentActuationError("NoSuchEntity: cannot be found", code="NoSuchEntity"), "not found"),
])
def test_a_role_that_cannot_be_read_refuses_the_step(error: Exception, why: str) -> None:
    """A role whose id and path cannot be read while a protected id needs them is refused, naming the permission."""
    detail = _refusal([ROLE_ID], IamPaths(IAM_PATHS, fail=error), DEPLOYER)
    assert detail is not None
    assert all(said in detail for said in (why, "iam:GetRole", "prod-deployer"))


class Coded(Exception):
    """An error whose `code` is no string (as urllib's and aiohttp's HTTP errors carry a status)."""

    code = 403


def test_a_read_failing_with_a_code_that_is_no_string_refuses_the_step() -> None:
    """Fail closed: a read failing with an error whose `code` is a number still refuses the step (before: TypeError)."""
    assert _refusal([ROLE_ID], IamPaths(IAM_PATHS, fail=Coded("forbidden")), DEPLOYER) is not None


class Shaped:
    """GetRole answering with `role` as given (a shape IAM should not answer)."""

    def __init__(self, role: dict[str, Any]) -> None:
        self.role = role

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Answer iam.get_role with the role as given."""
        return {"Role": self.role}


@pytest.mark.parametrize(("pattern", "answer"), [
    ("role/admins/*", {"Path": None}), ("role/admins/*", {"Path": 7}), ("role/admins/*", {"Path": ""}),
    (ROLE_ID, {"RoleId": None}), (ROLE_ID, {"RoleId": ""}), (ROLE_ID, {"Arn": None}),
])
def test_a_role_read_without_its_id_or_path_refuses_the_step(pattern: str, answer: dict[str, Any]) -> None:
    """A role answer missing its Path, RoleId or Arn, or giving one that is not a string, refuses the step."""
    role = {"RoleName": "break-glass", "RoleId": "AROAOTHEROTHEROTHER00", "Path": "/admins/",
            "Arn": "arn:aws:iam::123456789012:role/break-glass", **answer}
    role = {k: v for k, v in role.items() if v is not None}
    detail = _refusal([pattern], Shaped(role), {**DEPLOYER, "principal_name": "break-glass"})
    assert detail is not None
    assert "could not be read" in detail


def test_guards_without_an_aws_client_refuse_a_role_while_an_id_is_protected() -> None:
    """Guards built with no principal reader fail closed too."""
    assert any(t.hard for t in step_trips([ROLE_ID], QUARANTINE, DEPLOYER))


@pytest.mark.parametrize("protected", [
    [], ["arn:aws:iam::*:role/prod-deployer"], ["role/admins/prod-deployer"], ["prod-*"], ["AKIA*"],
    ["arn:aws:kms:*:*:key/*"], ["arn:aws:iam::111111111111:role/admins/*"], ["user/admins/*"],
])
def test_no_protected_id_needing_it_reads_nothing(protected: list[str]) -> None:
    """Without a unique id or path glob of the principal's kind, or with one for another account, nothing is read."""
    iam = IamPaths(IAM_PATHS, fail=PermanentActuationError("AccessDenied", code="AccessDenied"))
    trips = step_trips(protected, QUARANTINE, DEPLOYER, home=Home(account="123456789012"),
                       principals=PrincipalForms(iam, clock=SettableClock()))
    assert iam.reads == 0
    assert [t.guard for t in trips] == (["protected"] if protected and "prod-" in protected[0] else [])


def test_a_refusing_read_is_kept_and_one_that_refuses_nothing_is_read_again() -> None:
    """Forms that refused a step refuse the next without a read; forms that refused nothing are read again."""
    iam, clock = IamPaths(IAM_PATHS), SettableClock()
    reader = PrincipalForms(iam, clock=clock)
    refusal = [t.guard for t in step_trips(["role/admins/*"], QUARANTINE, {**DEPLOYER, "principal_name": "break-glass"},
                                           principals=reader)]
    assert refusal == ["protected"]
    assert iam.reads == 1
    iam.paths["role/break-glass"] = "/"
    assert [t.guard for t in step_trips(["role/admins/*"], QUARANTINE, {**DEPLOYER, "principal_name": "break-glass"},
                                        principals=reader)] == ["protected"]
    assert iam.reads == 1
    assert step_trips(["role/admins/*"], QUARANTINE, DEPLOYER, principals=reader) == []
    iam.paths["role/prod-deployer"] = "/admins/"
    assert [t.guard for t in step_trips(["role/admins/*"], QUARANTINE, DEPLOYER, principals=reader)] == ["protected"]
    assert iam.reads == 3


def test_the_principals_a_step_names() -> None:
    """Steps name roles and users by parameter, path, IAM or `sts` ARN, or key owner; a federated key names none."""
    key = Resource(kind=ResourceKind.ACCESS_KEY, id="ASIAX", attributes={"user_name": "Ops",
                                                                         "user_type": "AssumedRole"})
    fed = Resource(kind=ResourceKind.ACCESS_KEY, id="ASIAY", attributes={"user_name": "bob",
                                                                         "user_type": "FederatedUser"})
    got = principals("arn:aws:sts::123456789012:assumed-role/Deployer/session",
                     {"role_names": ["Worker"], "user_name": "Bob",
                      "note": "arn:aws:iam::123456789012:user/team/Alice"},
                     [key, fed])
    assert got == {"user/Alice", "role/Worker", "user/Bob", "role/Deployer", "role/Ops"}


@pytest.mark.parametrize(("pattern", "kinds"), [
    (ROLE_ID, {"role"}), (USER_ID, {"user"}), ("aroa*", {"role"}), ("a*", {"role", "user"}), ("*", {"role", "user"}),
    ("role/admins/*", {"role"}), ("arn:aws:iam::*:user/admins/*", {"user"}), ("role/team-*", {"role"}),
    ("/admins/*", {"role", "user"}), ("arn*admins*", {"role", "user"}), ("arnold", set()),
    ("arn:aws:iam::*:role/Break*", {"role"}), ("*-prod", {"role", "user"}),
    ("role/admins/BreakGlass", set()), ("arn:aws:iam::*:role/ResponderRole", set()), ("prod-*", set()),
    ("AKIAABCDEFGHIJKLMNOP", set()), ("arn:aws:kms:*:*:*", set()), ("arn:aws:iam::*:group/admins/*", set()),
    (f"{ROLE_ID}:*", {"role"}), (f"{USER_ID}:alice", {"user"}), ("aroa3x*:*", {"role"}),
])
def test_which_patterns_need_a_read(pattern: str, kinds: set[str]) -> None:
    """A unique id, a glob that may start like one, or a path glob needs its kind read; exact names do not."""
    assert principal_kinds(pattern) == kinds


def test_every_actuator_naming_a_principal_may_read_it() -> None:
    """The generated policy gives role-naming actuators `iam:GetRole`, and user-naming ones `iam:GetUser` too."""
    from responder.actuators.registry import registry

    naming = {a: set(a.params.model_fields) & {"user_name", "principal_name", "role_names"} for a in registry}
    assert len([a for a, fields in naming.items() if fields]) >= 10
    for actuator, fields in naming.items():
        wanted = {"iam:GetRole"} | ({"iam:GetUser"} if fields - {"role_names"} else set()) if fields else set()
        assert wanted <= set(actuator.permissions), actuator.name
