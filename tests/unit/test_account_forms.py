"""The account guard refuses only what is another account's: malformed ARNs, unknown accounts and namesakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.engine.accounts import arn_account, event_accounts
from responder.engine.arnforms import Home
from responder.models.event import Resource, ResourceKind
from responder.normalise import decode_doc
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid
from tests.guard_kit import event_naming, step_trips

OURS = "123456789012"
OTHER = "999999999999"
ROTATE = "aws.secretsmanager.rotate_secret"
REVOKE = "aws.iam.revoke_sessions"
CORPUS = Path("/work/shared/corpus")
ASFF_SAMPLE = CORPUS / "securityhub/asff_guardduty_unauthorizedaccess_ec2_sshbruteforce_docs.json"


def _account_trips(*args: Any, **kw: Any) -> list[tuple[str, bool]]:
    """The account guard trips (guard, hard) of a step, nothing protected."""
    return [(t.guard, t.hard) for t in step_trips([], *args, **kw) if t.guard == "account"]


def test_only_a_twelve_digit_account_field_is_an_account() -> None:
    """A region, `aws`, an empty or non-ASCII-digit field in an ARN's account place names no account."""
    assert arn_account(f"arn:aws:iam::{OURS}:role/x") == OURS
    assert arn_account("arn:aws::ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356") is None
    assert arn_account("arn:aws:iam::aws:policy/AdministratorAccess") is None
    assert arn_account("arn:aws:s3:::bucket") is None
    assert arn_account("arn:aws:iam::１２３４５６７８９０１２:role/x") is None
    assert arn_account("arn:aws:iam::12345678901:role/x") is None


@pytest.mark.skipif(not ASFF_SAMPLE.exists(), reason="the shared corpus is not mounted")
def test_the_aws_docs_asff_sample_with_a_malformed_arn_is_isolated() -> None:
    """The AWS-docs ASFF sample's instance ARN (one colon too many) names no account: its isolation is not refused."""
    [event] = decode_doc(orjson.loads(ASFF_SAMPLE.read_bytes()))
    instance = event.first(ResourceKind.INSTANCE)
    assert instance is not None
    for home in (Home(account=event.account, region="us-east-1"), Home()):
        assert _account_trips("aws.ec2.isolate_instance", {"instance_id": instance.id}, event, home=home) == []


@pytest.mark.parametrize("value", ["123456789012 ", "123456789012\n", "acme-prod", "１２３４５６７８９０１２",
                                   "12345678901"])
def test_aws_account_id_must_be_twelve_ascii_digits(value: str) -> None:
    """A padded, short, named or full-width `aws_account_id` is a settings error naming it, not a refusal of all."""
    with pytest.raises(SettingsInvalid, match=r"^RESPONDER_AWS_ACCOUNT_ID") as caught:
        Settings(aws_account_id=value)
    assert len(caught.value.problems) == 1


def _splunk(account: object) -> dict[str, Any]:
    """A Splunk alert whose result carries `account` as its recipient account."""
    return {"sid": "s1", "search_name": "Possible API key exfiltration", "app": "search", "owner": "admin",
            "results_link": "https://splunk.example/x",
            "result": {"urgency": "critical", "_time": "1764064800", "recipientAccountId": account,
                       "access_key_id": "AKIAIOSFODNN7EXAMPLE", "user": "ml-training", "user_type": "IAMUser"}}


@pytest.mark.parametrize("account", ["012345678901", 12345678901, " 012345678901", ["012345678901"],
                                     "0123-4567-8901", "ml-prod", "０１２３４５６７８９０１"])
def test_an_account_spelled_otherwise_or_unknown_is_not_refused_by_rule_one(account: object) -> None:
    """An int account is zero-padded, a padded one stripped; a non-AWS spelling is unknown, not another account."""
    [event] = decode_doc(_splunk(account))
    given = {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE"}
    home = Home(account="012345678901")
    assert _account_trips("aws.iam.deactivate_access_key", given, event, home=home) == []


def test_an_integer_account_is_zero_padded_and_compared() -> None:
    """A Splunk account given as a number is zero-padded to 12 digits: ours acts, another account is refused."""
    [ours] = decode_doc(_splunk(12345678901))
    [theirs] = decode_doc(_splunk(99999999999))
    assert (ours.account, theirs.account) == ("012345678901", "099999999999")
    given = {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE"}
    home = Home(account="012345678901")
    assert _account_trips("aws.iam.deactivate_access_key", given, ours, home=home) == []
    assert _account_trips("aws.iam.deactivate_access_key", given, theirs, home=home) == [("account", True)]


def test_an_unknown_event_account_is_not_the_expected_one() -> None:
    """With `aws_account_id` unset, an event's non-AWS account (a GCP project) expects no account: nothing refused."""
    theirs = {"secret_id": f"arn:aws:secretsmanager:us-east-1:{OTHER}:secret:prod/db-AbCdEf"}
    assert _account_trips(ROTATE, theirs, event_naming(account="ml-prod")) == []
    assert _account_trips(ROTATE, theirs, event_naming(account="ml-prod"), home=Home(account=OURS)) == [
        ("account", True)]


def test_our_secrets_complete_arn_is_rotated_beside_a_foreign_namesake() -> None:
    """A step naming our secret by its complete ARN is not refused for another account's same-named secret."""
    ours = f"arn:aws:secretsmanager:us-east-1:{OURS}:secret:prod/db-AbCdEf"
    theirs = f"arn:aws:secretsmanager:us-east-1:{OTHER}:secret:prod/db-XyZ123"
    event = event_naming(Resource(kind=ResourceKind.SECRET, id="prod/db-AbCdEf", arn=ours),
                         Resource(kind=ResourceKind.SECRET, id="prod/db-XyZ123", arn=theirs), account=OURS)
    for home in (Home(account=OURS), Home()):
        assert _account_trips(ROTATE, {"secret_id": ours}, event, home=home) == []
        assert _account_trips(ROTATE, {"secret_id": theirs}, event, home=home) == [("account", True)]


def test_our_role_named_by_the_event_in_our_account_is_not_refused_by_a_foreign_namesake() -> None:
    """A bare role name is not refused when the event names that role in our account beside another account's."""
    role = {"principal_type": "role", "principal_name": "deployer"}
    session = Resource(kind=ResourceKind.ACCESS_KEY, id="ASIAXXXXXXXXXXXXXXXX",
                       arn=f"arn:aws:sts::{OTHER}:assumed-role/deployer/ci")
    ours = Resource(kind=ResourceKind.IAM_ROLE, id="deployer", arn=f"arn:aws:iam::{OURS}:role/deployer")
    theirs = Resource(kind=ResourceKind.IAM_ROLE, id="deployer", arn=f"arn:aws:iam::{OTHER}:role/deployer")
    for home in (Home(account=OURS), Home()):
        assert _account_trips(REVOKE, role, event_naming(session, ours, account=OURS), home=home) == []
        assert _account_trips(REVOKE, role, event_naming(ours, theirs, account=OURS), home=home) == []
        assert _account_trips(REVOKE, role, event_naming(theirs, account=OURS), home=home) == [("account", True)]


def _ocsf(unmapped: dict[str, Any]) -> dict[str, Any]:
    """An OCSF API activity of another account's role reading our secret (no `cloud.account`, as AWS's mapping)."""
    secret = f"arn:aws:secretsmanager:us-east-1:{OURS}:secret:prod/db-AbCdEf"
    return {"activity_id": 2, "class_uid": 6003, "category_uid": 6, "type_uid": 600302, "severity_id": 4,
            "time": 1679072879000, "metadata": {"uid": "u-1", "version": "1.1.0",
                                                "product": {"name": "CloudTrail", "vendor_name": "AWS"}},
            "cloud": {"provider": "AWS", "region": "us-east-1"},
            "actor": {"user": {"account": {"uid": OTHER}, "type": "AssumedRole",
                               "uid": f"arn:aws:sts::{OTHER}:assumed-role/partner/s1"}},
            "api": {"operation": "GetSecretValue", "service": {"name": "secretsmanager.amazonaws.com"}},
            "resources": [{"uid": secret, "type": "AWS::SecretsManager::Secret"}], "unmapped": unmapped}


def test_an_ocsf_cloudtrail_events_account_is_the_recipients_not_the_callers() -> None:
    """OCSF `unmapped.recipientAccountId` is the event's account; the caller's account is the fallback only."""
    [event] = decode_doc(_ocsf({"recipientAccountId": OURS}))
    assert event.account == OURS
    secret = f"arn:aws:secretsmanager:us-east-1:{OURS}:secret:prod/db-AbCdEf"
    for home in (Home(account=OURS), Home()):
        assert _account_trips(ROTATE, {"secret_id": secret}, event, home=home) == []
    [caller_only] = decode_doc(_ocsf({}))
    assert caller_only.account == OTHER


@pytest.mark.parametrize("account", [OTHER, ["999999999999"], "9999-9999-9999", "９９９９９９９９９９９９",
                                     f"{OURS},{OTHER}", [OURS, OTHER], f"{OTHER} {OURS}", f"{OURS}\n{OTHER}",
                                     f"{OTHER}-{OURS}"])
def test_another_account_in_any_spelling_is_refused(account: object) -> None:
    """A list, a dashed, full-width or several-account spelling naming another account than ours is refused."""
    [event] = decode_doc(_splunk(account))
    given = {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE"}
    assert _account_trips("aws.iam.deactivate_access_key", given, event, home=Home(account=OURS)) == [
        ("account", True)]


def test_an_event_naming_several_accounts_is_refused_while_ours_is_unknown() -> None:
    """With `aws_account_id` unset an event naming two accounts cannot say which one a bare name is in: refused."""
    [event] = decode_doc(_splunk([OURS, OTHER]))
    given = {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE"}
    assert _account_trips("aws.iam.deactivate_access_key", given, event) == [("account", True)]


@pytest.mark.parametrize("kind", [ResourceKind.SECRET, ResourceKind.IAM_USER, ResourceKind.FUNCTION])
def test_ours_of_another_kind_does_not_vouch_for_a_foreign_role(kind: ResourceKind) -> None:
    """Our secret, user or function `x` beside an outside account's role `x`: a step on role `x` is still refused."""
    arns = {ResourceKind.SECRET: f"arn:aws:secretsmanager:us-east-1:{OURS}:secret:ml-training-AbCdEf",
            ResourceKind.IAM_USER: f"arn:aws:iam::{OURS}:user/ml-training",
            ResourceKind.FUNCTION: f"arn:aws:lambda:us-east-1:{OURS}:function:ml-training"}
    ours = Resource(kind=kind, id=arns[kind].rsplit(":", 1)[-1].rsplit("/", 1)[-1], arn=arns[kind])
    theirs = Resource(kind=ResourceKind.IAM_ROLE, id="ml-training", arn=f"arn:aws:iam::{OTHER}:role/ml-training")
    role = {"principal_type": "role", "principal_name": "ml-training"}
    for home in (Home(account=OURS), Home()):
        assert _account_trips(REVOKE, role, event_naming(ours, theirs, account=OURS), home=home) == [
            ("account", True)]


@pytest.mark.parametrize(("value", "accounts"), [
    ("2026-12-07 1030", set()), ("20261207-1234", set()), ("1234 5678 9012", {"123456789012"}),
    (f"{OTHER} {OURS}", {OTHER, OURS}), ("1111111111111", set()), ("ml-prod", set()),
])
def test_an_event_account_names_only_twelve_digit_groups(value: str, accounts: set[str]) -> None:
    """12 digits in a row or the console's 4-4-4 are an account; dates and longer runs joined by separators are not."""
    assert event_accounts(value) == accounts


def test_ours_named_beside_a_foreign_role_does_not_vouch_for_it() -> None:
    """`role_names: [ours, theirs]`: our role given by ARN does not excuse the other account's role in the same step."""
    ours = Resource(kind=ResourceKind.IAM_ROLE, id="gateway", arn=f"arn:aws:iam::{OURS}:role/gateway")
    theirs = Resource(kind=ResourceKind.IAM_ROLE, id="app-invoker", arn=f"arn:aws:iam::{OTHER}:role/app-invoker")
    given = {"endpoint_name": "fraud", "role_names": ["gateway", "app-invoker"]}
    for home in (Home(account=OURS), Home()):
        assert _account_trips("aws.sagemaker.isolate_endpoint", given, event_naming(ours, theirs, account=OURS),
                              home=home) == [("account", True)]
