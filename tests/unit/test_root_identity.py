"""The account's root identity is never named as an IAM user: IAM allows a real user literally named `root`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.models.event import Event
from responder.normalise import decode_doc
from responder.normalise.resources import from_arn

ROOT = Path(__file__).resolve().parents[2]
ROOT_ARN = "arn:aws:iam::111122223333:root"


def _put(identity: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/unauthorized-training-data-write.json").read_bytes())
    doc["detail"]["userIdentity"] = identity
    return doc


def _kinds(event: Event) -> list[str]:
    return [r.kind.value for r in event.resources]


def test_a_root_arn_names_the_account_not_an_iam_user() -> None:
    """`from_arn` turns arn:aws:iam::<acct>:root into the account resource, marked root_identity."""
    found = from_arn(ROOT_ARN, role="actor")
    assert found is not None
    assert (found.kind.value, found.id, found.arn) == ("account", "111122223333", ROOT_ARN)
    assert found.attributes == {"root_identity": True, "role": "actor"}


def test_a_user_arn_named_root_is_still_that_iam_user() -> None:
    """A real IAM user called `root` (arn …:user/root) stays an iam_user: only …:root is the account."""
    found = from_arn("arn:aws:iam::111122223333:user/root")
    assert found is not None
    assert (found.kind.value, found.id) == ("iam_user", "root")
    assert "root_identity" not in found.attributes


def test_a_cloudtrail_root_call_names_the_account_and_keeps_the_key() -> None:
    """A CloudTrail call by Root yields its access key (user_type Root) and the account, and no iam_user."""
    [event] = decode_doc(_put({"type": "Root", "principalId": "111122223333", "arn": ROOT_ARN,
                               "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEROOTKEY01"}))
    assert event.first("iam_user") is None
    key = event.first("access_key")
    assert key is not None
    assert (key.id, key.attributes["user_type"], key.attributes["credential"]) == \
        ("AKIAEXAMPLEROOTKEY01", "Root", "long_term")
    account = event.first("account")
    assert account is not None
    assert (account.id, account.attributes["root_identity"]) == ("111122223333", True)


def test_a_cloudtrail_root_console_login_groups_by_the_account() -> None:
    """A root console login (no key) is keyed by the account, not by an iam_user `root`."""
    doc = orjson.loads((ROOT / "tests/fixtures/events/cloudtrail_eventbridge.json").read_bytes())
    doc["detail"]["userIdentity"] = {"type": "Root", "principalId": "111122223333", "arn": ROOT_ARN,
                                     "accountId": "111122223333"}
    doc["detail"] |= {"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "requestParameters": None,
                      "responseElements": {"ConsoleLogin": "Success"}}  # the fixture's own call names a target user
    [event] = decode_doc(doc)
    assert event.type == "signin.amazonaws.com/ConsoleLogin"
    assert "iam_user" not in _kinds(event)
    assert event.incident_key.endswith(":account:111122223333")


@pytest.mark.parametrize("identity", [
    {"type": "FederatedUser", "principalId": "111122223333:root", "accessKeyId": "ASIAEXAMPLEFEDERATE1",
     "arn": "arn:aws:sts::111122223333:federated-user/root", "accountId": "111122223333",
     "sessionContext": {"sessionIssuer": {"type": "IAMUser", "userName": "root",
                                          "arn": "arn:aws:iam::111122223333:user/root"}}},
    {"type": "AWSService", "invokedBy": "s3.amazonaws.com"},
    {"type": "IdentityCenterUser", "accountId": "111122223333", "userName": "root",
     "accessKeyId": "ASIAEXAMPLEIDC00001"},
    {"principalId": "AIDAEXAMPLE", "userName": "root", "accessKeyId": "AKIAEXAMPLEUNTYPED1"},
], ids=["federated", "aws-service", "unknown-type", "untyped"])
def test_a_cloudtrail_principal_that_is_not_an_iam_user_or_role_names_neither(identity: dict[str, Any]) -> None:
    """FederatedUser, AWSService, an unknown or a missing userIdentity.type yield no iam_user and no iam_role."""
    [event] = decode_doc(_put(copy.deepcopy(identity)))
    assert "iam_user" not in _kinds(event)
    assert "iam_role" not in _kinds(event)


def test_a_cloudtrail_iam_user_named_root_is_that_iam_user() -> None:
    """userIdentity.type IAMUser with userName root is the IAM user `root`, and not the account."""
    [event] = decode_doc(_put({"type": "IAMUser", "userName": "root", "accountId": "111122223333",
                               "arn": "arn:aws:iam::111122223333:user/root", "accessKeyId": "AKIAEXAMPLEUSERROOT1"}))
    user = event.first("iam_user")
    assert user is not None
    assert user.id == "root"
    assert event.first("account") is None


def test_security_hub_and_ocsf_name_a_root_arn_as_the_account() -> None:
    """An ASFF AwsIamUser resource and an OCSF actor whose id is the root ARN yield the account, no iam_user."""
    asff = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    asff["Resources"] = [{"Type": "AwsIamUser", "Id": ROOT_ARN}]
    ocsf = orjson.loads((ROOT / "runbooks/examples/by-source/cloudtrail-logging-stopped.ocsf.json").read_bytes())
    ocsf["resources"] = [{"type": "AwsIamUser", "uid": ROOT_ARN}]
    ocsf["actor"] = {"user": {"uid": ROOT_ARN, "type": "Root", "name": "root"}}
    for doc in (asff, ocsf):
        [event] = decode_doc(doc)
        assert "iam_user" not in _kinds(event), doc
        account = event.first("account")
        assert account is not None
        assert account.attributes.get("root_identity") is True


@pytest.mark.parametrize("rtype", ["AwsIamUser", "AwsIamRole"])
def test_a_security_hub_root_arn_is_the_account_whatever_its_details_name(rtype: str) -> None:
    """An ASFF AwsIamUser/AwsIamRole whose Id is the root ARN is the account even when its Details name `root`."""
    asff = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    detail = {"UserName": "root"} if rtype == "AwsIamUser" else {"RoleName": "root"}
    asff["Resources"] = [{"Type": rtype, "Id": ROOT_ARN, "Details": {rtype: detail}}]
    [event] = decode_doc(asff)
    assert [(r.kind.value, r.id) for r in event.resources] == [("account", "111122223333")]
    account = event.first("account")
    assert account is not None
    assert account.attributes.get("root_identity") is True
