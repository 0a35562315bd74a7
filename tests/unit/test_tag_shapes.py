"""Tags in shapes a caller did not expect: an alert's tag without a value has the empty value (as AWS's own tag
reads give it), never the text "None", and every value an alert gives a key counts; a Lambda, KMS or SageMaker tag
list answer with no `Tags` (CloudTrail's with no `TagsList`) is unreadable and refuses the step (fail closed), not "no
tags", while the reads AWS answers without tags for an untagged resource (IAM, EC2, Secrets Manager, API Gateway) stay
"no tags"; a KMS `NextMarker` is followed though `Truncated` is left out, and a SageMaker endpoint's later page read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.engine.guards import protected_hit
from responder.engine.tagreads import SEP, ResourceTags
from responder.models.event import Resource, ResourceKind
from responder.models.runbook import Protected
from tests.guard_kit import SettableClock, event_naming

ROLE = {"principal_type": "role", "principal_name": "app-worker"}


def _alert_hit(tags: Any, protected: dict[str, str]) -> str | None:
    """Why a quarantine of the role is refused by the tags an alert gives it (`tags`, as the alert shapes them)."""
    role = Resource(kind=ResourceKind.IAM_ROLE, id="app-worker", name="app-worker", attributes={"tags": tags})
    matched = protected_hit([Protected(tags=protected)], "role/app-worker", ROLE, event_naming(role),
                            "aws.iam.quarantine_principal")
    return matched.hit if matched is not None else None


@pytest.mark.parametrize("tags", [[{"Key": "owner"}], [{"key": "owner", "value": None}], {"owner": None}])
def test_an_alert_tag_without_a_value_has_the_empty_value(tags: Any) -> None:
    """An alert tag with no value or None matches a protected empty value, not a protected value "None"."""
    assert _alert_hit(tags, {"owner": ""}) == "resource 'app-worker' carries protected tag owner="
    assert _alert_hit(tags, {"owner": "None"}) is None
    assert _alert_hit(tags, {"owner": "*"}) == "resource 'app-worker' carries protected tag owner="


def test_an_alert_tag_without_a_key_is_no_tag() -> None:
    """A tag with no key is not read as the key "None"."""
    assert _alert_hit([{"Value": "x"}], {"None": "*"}) is None


def test_every_value_an_alert_gives_a_key_counts() -> None:
    """A key given twice protects by either value (before: the last one only)."""
    tags = [{"Key": "env", "Value": "prod"}, {"Key": "env", "Value": "dev"}]
    assert _alert_hit(tags, {"env": "prod"}) == "resource 'app-worker' carries protected tag env=prod"


class Lambda:
    """GetFunction, and ListTags answering `listed`."""

    def __init__(self, listed: dict[str, Any]) -> None:
        self.listed = listed

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The function's ARN, or the ListTags answer."""
        if operation == "get_function":
            return {"Configuration": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}
        return self.listed


def test_a_lambda_list_tags_answer_without_tags_refuses() -> None:
    """ListTags with no `Tags` is an answer of no known shape: refused, naming the permissions (before: no tags)."""
    found = asyncio.run(ResourceTags(Lambda({}), clock=SettableClock()).forms({"function f"}))
    assert isinstance(found, str)
    assert "could not be read" in found
    assert "lambda:ListTags" in found


@pytest.mark.parametrize(("listed", "forms"), [({"Tags": {}}, set()), ({"Tags": {"team": "ml"}}, {f"team{SEP}ml"}),
                                               ({"Tags": {"owner": None}}, {f"owner{SEP}"})])
def test_a_lambda_list_tags_answer_with_tags_is_read(listed: dict[str, Any], forms: set[str]) -> None:
    """ListTags with `Tags`, empty or not, is read as given (a value None as the empty value)."""
    assert asyncio.run(ResourceTags(Lambda(listed), clock=SettableClock()).forms({"function f"})) == forms


ARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/t1"
KEY = "key 1234abcd-12ab-34cd-56ef-1234567890ab"
PROTECTED_FORM = f"responder:protected{SEP}1"


class Replies:
    """The ARN reads of an endpoint or trail, then each tag list read answered by the next of `replies`."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        self.replies, self.asked = list(replies), []  # type: list[dict[str, Any]], list[dict[str, Any]]

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The endpoint's or trail's ARN, or the next tag list reply."""
        if operation == "describe_endpoint":
            return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e1"}
        if operation == "get_trail":
            return {"Trail": {"TrailARN": ARN}}
        self.asked.append(kw)
        return self.replies.pop(0)


def _read(key: str, *replies: dict[str, Any]) -> set[str] | str:
    return asyncio.run(ResourceTags(Replies(*replies), clock=SettableClock()).forms({key}))


@pytest.mark.parametrize(("key", "reply", "permission"), [
    (KEY, {"Truncated": False}, "kms:ListResourceTags"),
    ("endpoint e1", {}, "sagemaker:ListTags"),
    ("trail t1", {}, "cloudtrail:ListTags"),
])
def test_a_paged_tag_answer_without_its_tags_refuses(key: str, reply: dict[str, Any], permission: str) -> None:
    """KMS/SageMaker ListTags with no `Tags`, CloudTrail's with no `ResourceTagList`: refused, not read as no tags."""
    found = _read(key, reply)
    assert isinstance(found, str), found
    assert "could not be read" in found
    assert permission in found


def test_a_later_page_without_its_tags_refuses() -> None:
    """A KMS page after the first with no `Tags` refuses, as the first does (before: read as no tags)."""
    found = _read(KEY, {"Tags": [], "Truncated": True, "NextMarker": "2"}, {"Truncated": False})
    assert isinstance(found, str), found


@pytest.mark.parametrize(("key", "reply"), [
    (KEY, {"Tags": [], "Truncated": False}),
    ("endpoint e1", {"Tags": []}),
    ("trail t1", {"ResourceTagList": [{"ResourceId": ARN, "TagsList": []}]}),
    ("trail t1", {"ResourceTagList": [{"ResourceId": ARN}]}),
])
def test_an_untagged_resource_paged_answer_is_no_tags(key: str, reply: dict[str, Any]) -> None:
    """An untagged key, endpoint or trail (an empty list; a trail's entry may also leave `TagsList` out) has no tags."""
    assert _read(key, reply) == set()


def test_a_kms_marker_without_truncated_is_followed() -> None:
    """A KMS page naming a `NextMarker` without `Truncated` is followed, so a protected tag on the next page refuses."""
    replies = Replies({"Tags": [], "NextMarker": "m2"}, {"Tags": [{"TagKey": "responder:protected", "TagValue": "1"}],
                                                         "Truncated": False})
    found = asyncio.run(ResourceTags(replies, clock=SettableClock()).forms({KEY}))
    assert found == {PROTECTED_FORM}
    assert replies.asked[1]["Marker"] == "m2"


def test_a_sagemaker_later_page_of_tags_is_read() -> None:
    """A SageMaker endpoint's tags on the page after a `NextToken` are read (a protected tag there is found)."""
    replies = Replies({"Tags": [{"Key": "team", "Value": "ml"}], "NextToken": "t2"},
                      {"Tags": [{"Key": "responder:protected", "Value": "1"}]})
    found = asyncio.run(ResourceTags(replies, clock=SettableClock()).forms({"endpoint e1"}))
    assert found == {f"team{SEP}ml", PROTECTED_FORM}
    assert replies.asked[1]["NextToken"] == "t2"


class Untagged:
    """IAM, EC2, Secrets Manager and API Gateway answers for a resource with no tags: the tags left out, as they are."""

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The record of the role, user, instance, secret or API key, without tags."""
        return {"get_role": {"Role": {"RoleName": "r"}}, "get_user": {"User": {"UserName": "u"}},
                "describe_instances": {"Reservations": [{"Instances": [{"InstanceId": "i-1"}]}]},
                "describe_secret": {"Name": "s"}, "get_api_key": {"id": "a1"}}[operation]


@pytest.mark.parametrize("key", ["role r", "user u", "instance i-1", "secret s", "store s", "apikey a1"])
def test_an_answer_that_leaves_out_the_tags_of_an_untagged_resource_is_no_tags(key: str) -> None:
    """An AWS answer leaving out the tags of an untagged resource reads as no tags, not as a refusal."""
    assert asyncio.run(ResourceTags(Untagged(), clock=SettableClock()).forms({key})) == set()
