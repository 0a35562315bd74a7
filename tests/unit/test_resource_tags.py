"""A protected tag protects each resource a step acts on by the tags AWS holds for it, whatever the event carries;
a read that fails refuses the step, a kind with no reader is refused while a protected tag is set, and nothing is
read when no protected tag is set."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import responder.actuators.aws  # noqa: F401  # registers the AWS actuators
from responder.actuators.registry import registry
from responder.engine.actedon import acted_on, needed_permissions
from responder.engine.guards import GuardPolicy, Guards
from responder.engine.quotas import QuotaWindows
from responder.engine.resolution import Resolved, resolve_step
from responder.engine.tagreads import ResourceTags
from responder.errors import PermanentActuationError
from responder.models.runbook import Protected, Runbook, Step
from tests.guard_kit import SettableClock, event_naming

KMS_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
PROTECTED = {"responder:protected": "*"}
STEPS = [  # one step of each kind an actuator acts on: (actuator, with, the resource whose tags protect it)
    ("aws.ec2.isolate_instance", {"instance_id": "i-0123456789abcdef0"}, "instance i-0123456789abcdef0"),
    ("aws.iam.quarantine_principal", {"principal_type": "role", "principal_name": "prod-deployer"},
     "role prod-deployer"),
    ("aws.iam.revoke_sessions", {"principal_type": "user", "principal_name": "ml-training"}, "user ml-training"),
    ("aws.iam.deactivate_access_key", {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE"},
     "user ml-training"),
    ("aws.s3.block_public_access", {"bucket": "ml-datasets"}, "bucket ml-datasets"),
    ("aws.kms.disable_key", {"key_id": KMS_ID}, f"key {KMS_ID}"),
    ("aws.secretsmanager.rotate_secret", {"secret_id": "prod/inference/db-password"},
     "secret prod/inference/db-password"),
    ("aws.lambda.throttle_function", {"function_name": "inference-proxy"}, "function inference-proxy"),
    ("aws.sagemaker.isolate_endpoint", {"endpoint_name": "fraud-scoring-prod", "role_names": ["gateway"]},
     "endpoint fraud-scoring-prod"),
    ("aws.sagemaker.isolate_endpoint", {"endpoint_name": "fraud-scoring-prod", "role_names": ["gateway"]},
     "role gateway"),
    ("aws.iam.rotate_access_key", {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                                   "secret_name": "responder/iam/ml-training"}, "store responder/iam/ml-training"),
    ("aws.apigateway.disable_api_key", {"api_key_id": "a1b2c3d4e5"}, "apikey a1b2c3d4e5"),
    ("aws.cloudtrail.start_logging", {"trail": "management-events"}, "trail management-events"),
]


def _list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags.items()]


class Aws:
    """Answers each kind's tag read as AWS shapes it, from `tags` (`kind id` → tags); `fail` raises first, in turn."""

    def __init__(self, tags: dict[str, dict[str, str]], fail: list[Exception] | None = None) -> None:
        self.tags, self.fail = tags, list(fail or [])
        self.calls: list[str] = []
        self.kw: dict[str, Any] = {}

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """One AWS read of tags (or of the ARN they are listed by)."""
        self.calls.append(f"{service}.{operation}")
        if self.fail:
            raise self.fail.pop(0)
        of = self._tags
        answers: dict[str, Any] = {
            "iam.get_role": lambda: {"Role": {"RoleName": kw.get("RoleName"), "Tags": _list(of("role", "RoleName"))}},
            "iam.get_user": lambda: {"User": {"UserName": kw.get("UserName"), "Tags": _list(of("user", "UserName"))}},
            "ec2.describe_instances": lambda: {"Reservations": [{"Instances": [
                {"InstanceId": kw["InstanceIds"][0], "Tags": _list(of("instance", "InstanceIds"))}]}]},
            "s3.get_bucket_tagging": lambda: {"TagSet": _list(of("bucket", "Bucket"))},
            "kms.list_resource_tags": lambda: {"Tags": _list(of("key", "KeyId"), "TagKey", "TagValue"),
                                               "Truncated": False},
            "secretsmanager.describe_secret": lambda: {"Tags": _list(of("secret", "SecretId")
                                                                     or of("store", "SecretId"))},
            # as AWS answers a caller without lambda:ListTags: no Tags in GetFunction (ListTags has them)
            "lambda.get_function": lambda: {"Configuration": {"FunctionArn": f"arn:function/{kw['FunctionName']}"}},
            "lambda.list_tags": lambda: {"Tags": self.tags.get("function " + kw["Resource"].split("/")[-1], {})},
            "sagemaker.describe_endpoint": lambda: {"EndpointArn": f"arn:endpoint/{kw['EndpointName']}"},
            "sagemaker.list_tags": lambda: {"Tags": _list(self.tags.get(
                "endpoint " + kw["ResourceArn"].split("/")[-1], {}))},
            "apigateway.get_api_key": lambda: {"tags": of("apikey", "apiKey")},
            "cloudtrail.get_trail": lambda: {"Trail": {"TrailARN": f"arn:trail/{kw['Name']}"}},
            "cloudtrail.list_tags": lambda: {"ResourceTagList": [{"ResourceId": kw["ResourceIdList"][0],
                                                                  "TagsList": _list(self.tags.get(
                "trail " + kw["ResourceIdList"][0].split("/")[-1], {}))}]},
        }
        self.kw = kw
        if operation == "describe_secret" and kw["SecretId"] == "responder/iam/new":
            raise PermanentActuationError("ResourceNotFoundException: no secret", code="ResourceNotFoundException")
        if f"{service}.{operation}" == "s3.get_bucket_tagging" and not of("bucket", "Bucket"):
            raise PermanentActuationError("NoSuchTagSet: The TagSet does not exist", code="NoSuchTagSet")
        return dict(answers[f"{service}.{operation}"]())

    def _tags(self, kind: str, param: str) -> dict[str, str]:
        value = self.kw[param]
        return self.tags.get(f"{kind} {value[0] if isinstance(value, list) else value}", {})


def _refusal(actuator: str, with_: dict[str, Any], aws: Aws | None, tags: dict[str, str] | None = None,
             ids: list[str] | None = None) -> str | None:
    """The detail of the step's hard trip (`tags` protected; a tag reader over `aws`, if any), or None."""
    event = event_naming()  # carries no tags
    step = Step.model_validate({"id": "s", "actuator": actuator, "with": with_})
    resolved = resolve_step(step, {"event": event.model_dump(mode="json")}, registry)
    assert isinstance(resolved, Resolved), resolved
    rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                 "steps": [step.model_dump(by_alias=True)]})
    reader = None if aws is None else ResourceTags(aws, clock=SettableClock())
    if reader is not None:
        reader.BACKOFF_S = 0.01
    guards = Guards(GuardPolicy(protected=Protected(ids=ids or [], tags=PROTECTED if tags is None else tags)),
                    tags=reader)
    trips = asyncio.run(guards.check_step(rb, actuator, resolved.target, resolved.values, event, QuotaWindows(), 0.0))
    return next((t.detail for t in trips if t.hard), None)


@pytest.mark.parametrize(("actuator", "with_", "resource"), STEPS)
def test_a_resource_tagged_protected_in_aws_but_not_in_the_alert_is_refused(actuator: str, with_: dict[str, Any],
                                                                             resource: str) -> None:
    """A step on a resource tagged protected in AWS is refused though the alert carries no tags."""
    refusal = _refusal(actuator, with_, Aws({resource: {"responder:protected": "yes", "team": "ml"}}))
    assert "responder:protected=yes" in str(refusal)
    assert "read from AWS" in str(refusal)


@pytest.mark.parametrize(("actuator", "with_", "resource"), STEPS)
def test_a_resource_without_the_protected_tag_in_aws_runs(actuator: str, with_: dict[str, Any],
                                                          resource: str) -> None:
    """A step whose resources AWS holds without a protected tag runs, after reading them."""
    aws = Aws({resource: {"team": "ml", "responder:protected-not": "1"}})
    assert _refusal(actuator, with_, aws) is None
    assert aws.calls


def test_a_protected_value_must_match_the_tag_read() -> None:
    """A protected tag with a value protects only resources whose tag has that value."""
    aws = Aws({"bucket ml-datasets": {"tier": "dev"}})
    assert _refusal("aws.s3.block_public_access", {"bucket": "ml-datasets"}, aws, tags={"tier": "prod"}) is None
    aws = Aws({"bucket ml-datasets": {"tier": "prod"}})
    assert "tier=prod" in str(_refusal("aws.s3.block_public_access", {"bucket": "ml-datasets"}, aws,
                                       tags={"tier": "prod"}))


@pytest.mark.parametrize("error", [PermanentActuationError("AccessDenied: no", code="AccessDenied"),
                                   PermanentActuationError("NoSuchEntity: gone", code="NoSuchEntity"),
                                   KeyError("Tags")])
def test_a_tag_read_that_fails_refuses_the_step_at_once_naming_the_permission(error: Exception) -> None:
    """A tag read that fails permanently refuses the step without a retry, naming the permission it needs."""
    aws = Aws({}, fail=[error])
    refusal = _refusal("aws.iam.quarantine_principal", {"principal_type": "role", "principal_name": "x"}, aws)
    assert "iam:GetRole" in str(refusal)
    assert "could not be read" in str(refusal)
    assert aws.calls == ["iam.get_role"]


def test_a_kind_with_no_tag_reader_is_refused_while_a_protected_tag_is_set() -> None:
    """An actuator whose kind has no tag reader is refused, naming it, while a protected tag is set."""
    assert "aws.glue.stop_job_run" in str(acted_on("aws.glue.stop_job_run", {"job_name": "m"}))
    assert acted_on("model.quarantine_version", {"model": "m", "version": "v1"}) == set()


def test_without_a_reader_a_step_is_refused_while_a_protected_tag_is_set() -> None:
    """An engine with no AWS client to read tags refuses a step while a protected tag is set."""
    assert "no AWS client" in str(_refusal("aws.s3.block_public_access", {"bucket": "ml-datasets"}, None))


def test_no_tag_is_read_when_no_protected_tag_is_set() -> None:
    """With protected ids only (no protected tag), no tag is read: the hot path is unchanged."""
    aws = Aws({"bucket ml-datasets": {"responder:protected": "1"}})
    assert _refusal("aws.s3.block_public_access", {"bucket": "ml-datasets"}, aws, tags={}, ids=["other"]) is None
    assert aws.calls == []


def test_only_a_refusal_is_kept() -> None:
    """Tags that refused are kept (the next step refused with no read); tags that refused nothing are read again."""
    aws = Aws({"bucket b1": {"responder:protected": "1"}})
    guards = Guards(GuardPolicy(protected=Protected(tags=PROTECTED)), tags=ResourceTags(aws, clock=SettableClock()))

    def protected(bucket: str) -> str | None:
        rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                     "steps": [{"id": "s", "actuator": "aws.s3.block_public_access",
                                                "with": {"bucket": bucket}}]})
        return asyncio.run(guards.protected(rb, "aws.s3.block_public_access", bucket, {"bucket": bucket},
                                            event_naming()))

    assert protected("b1") is not None
    assert protected("b1") is not None
    assert aws.calls == ["s3.get_bucket_tagging"]
    assert protected("b2") is None
    assert protected("b2") is None
    assert aws.calls == ["s3.get_bucket_tagging"] * 3


def test_a_rotation_writing_to_a_secret_not_created_yet_runs() -> None:
    """A rotation whose secret does not exist yet (it creates it) is not refused for the secret's tags."""
    aws = Aws({})
    assert _refusal("aws.iam.rotate_access_key", {"user_name": "ml-training", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                                                  "secret_name": "responder/iam/new"}, aws) is None
    assert sorted(aws.calls) == ["iam.get_user", "secretsmanager.describe_secret"]


class Pages:
    """KMS ListResourceTags in `pages` pages of one tag each (`Truncated`/`NextMarker` between them)."""

    def __init__(self, pages: int) -> None:
        self.pages, self.calls = pages, 0

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """Page `Marker` (0 without one) of the key's tags; the last holds the protected tag."""
        assert (service, operation) == ("kms", "list_resource_tags")
        self.calls += 1
        page = int(kw.get("Marker", "0"))
        last = page == self.pages - 1
        tag = {"TagKey": "responder:protected" if last else f"t{page}", "TagValue": "1"}
        return {"Tags": [tag], "Truncated": not last, **({} if last else {"NextMarker": str(page + 1)})}


@pytest.mark.parametrize(("pages", "refused_by"), [(3, "responder:protected=1"), (11, "more than 10 pages")])
def test_tags_on_a_later_page_protect_and_too_many_pages_refuse(pages: int, refused_by: str) -> None:
    """A protected tag on a key's last page of tags refuses the step; tags beyond the page bound refuse it too."""
    reader = ResourceTags(Pages(pages), clock=SettableClock())
    guards = Guards(GuardPolicy(protected=Protected(tags=PROTECTED)), tags=reader)
    rb = Runbook.model_validate({"id": "rb", "trigger": {"source": "guardduty"}, "group_by": "${event.id}",
                                 "steps": [{"id": "s", "actuator": "aws.kms.disable_key", "with": {"key_id": KMS_ID}}]})
    refusal = asyncio.run(guards.protected(rb, "aws.kms.disable_key", KMS_ID, {"key_id": KMS_ID}, event_naming()))
    assert refused_by in str(refusal)


def test_every_actuator_declares_the_permissions_its_tag_reads_need() -> None:
    """Every AWS actuator declares the permissions its tag reads need and acts on a kind with a tag reader."""
    for actuator in registry:
        if not actuator.name.startswith("aws."):
            continue
        assert isinstance(acted_on(actuator.name, {}), set), actuator.name
        wanted = needed_permissions(actuator.name, actuator.params.model_fields)
        assert wanted, actuator.name
        assert wanted <= set(actuator.permissions), actuator.name


class Odd:
    """Answers a tag read with `replies` in turn (KMS or CloudTrail pages, shaped as given)."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        self.replies = list(replies)

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The trail's ARN, or the next reply."""
        if operation == "get_trail":
            return {"Trail": {"TrailARN": "arn:trail/t1"}}
        return self.replies.pop(0)


ARN = "arn:trail/t1"


@pytest.mark.parametrize(("key", "replies", "refused"), [
    (f"key {KMS_ID}", [{"Tags": [], "Truncated": True}], True),
    ("trail t1", [{"ResourceTagList": []}], True),
    ("trail t1", [{"ResourceTagList": [{"ResourceId": ARN, "TagsList": []}], "NextToken": "2"},
                  {"ResourceTagList": [{"ResourceId": ARN, "TagsList": [{"Key": "responder:protected",
                                                                          "Value": "1"}]}]}], False),
])
def test_a_truncated_or_odd_page_of_tags_refuses_or_is_followed(key: str, replies: list[dict[str, Any]],
                                                                 refused: bool) -> None:
    """Tags truncated with no marker, or a trail missing from its answer, refuse; a trail's next page is read."""
    found = asyncio.run(ResourceTags(Odd(*replies), clock=SettableClock()).forms({key}))
    assert isinstance(found, str) if refused else "responder:protected\x1f1" in found
