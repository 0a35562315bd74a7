"""What each containment leaves behind on the moto server, beyond the generic apply/drift/undo contract."""

from __future__ import annotations

import orjson
import pytest

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.engine.readback import StepCall, verified
from responder.errors import PermanentActuationError
from tests.integration.actuator_cases import CASES

pytestmark = pytest.mark.integration
CASE = {c.actuator: c for c in CASES}
CTX_INCIDENT = "inc0123456789abcdef0"
CTX_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _ctx(aws, key: str = CTX_KEY) -> ActuationContext:
    return ActuationContext(aws=aws, incident=CTX_INCIDENT, key=key)


async def _run(aws, name: str, params: dict, key: str = CTX_KEY):
    actuator = registry.get(name)
    return await actuator.apply(actuator.params.model_validate(params), _ctx(aws, key))


async def test_isolation_group_has_no_rules_and_instance_is_tagged(aws):
    """The quarantine group allows nothing in or out, prior groups are recorded per ENI, the tag names the incident."""
    params = await CASE["aws.ec2.isolate_instance"].setup(aws)
    result = await _run(aws, "aws.ec2.isolate_instance", params)
    group = (await aws.call("ec2", "describe_security_groups", GroupIds=[result.outputs["quarantine_group"]]))[
        "SecurityGroups"][0]
    assert group["GroupName"] == "responder-quarantine"
    assert group["IpPermissions"] == []
    assert group["IpPermissionsEgress"] == []
    prior = result.prior["groups_by_eni"]
    assert len(prior) == 1
    assert all(g.startswith("sg-") for groups in prior.values() for g in groups)
    inst = (await aws.call("ec2", "describe_instances", InstanceIds=[params["instance_id"]]))["Reservations"][0][
        "Instances"][0]
    assert {"Key": "responder:quarantined", "Value": CTX_INCIDENT} in inst["Tags"]


async def test_second_instance_reuses_the_quarantine_group(aws):
    """Two isolations in one VPC share one quarantine group."""
    first = await _run(aws, "aws.ec2.isolate_instance", await CASE["aws.ec2.isolate_instance"].setup(aws))
    ami = (await aws.call("ec2", "describe_images"))["Images"][0]["ImageId"]
    other = (await aws.call("ec2", "run_instances", ImageId=ami, MinCount=1, MaxCount=1))["Instances"][0]["InstanceId"]
    second = await _run(aws, "aws.ec2.isolate_instance", {"instance_id": other}, key="b" * 32)
    assert first.outputs["quarantine_group"] == second.outputs["quarantine_group"]


async def test_snapshots_are_tagged_with_the_incident(aws):
    """Each volume gets one snapshot tagged with incident and idempotency key; another key takes another."""
    params = await CASE["aws.ec2.snapshot_volumes"].setup(aws)
    result = await _run(aws, "aws.ec2.snapshot_volumes", params)
    snap = (await aws.call("ec2", "describe_snapshots", SnapshotIds=result.outputs["snapshot_ids"]))["Snapshots"][0]
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags["responder:incident"] == CTX_INCIDENT
    assert tags["responder:key"] == CTX_KEY
    again = await _run(aws, "aws.ec2.snapshot_volumes", params, key="c" * 32)
    assert again.changed is True
    assert again.outputs["snapshot_ids"] != result.outputs["snapshot_ids"]


async def test_rotation_stores_the_new_key_and_keeps_one_active(aws):
    """The secret holds a new, active key that replaces the old one; the old key is Inactive."""
    params = await CASE["aws.iam.rotate_access_key"].setup(aws)
    result = await _run(aws, "aws.iam.rotate_access_key", params)
    stored = orjson.loads((await aws.call("secretsmanager", "get_secret_value", SecretId=params["secret_name"]))[
        "SecretString"])
    assert stored["replaces"] == params["access_key_id"]
    assert stored["access_key_id"] == result.outputs["new_access_key_id"] != params["access_key_id"]
    keys = {k["AccessKeyId"]: k["Status"] for k in (await aws.call(
        "iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]}
    assert keys == {params["access_key_id"]: "Inactive", stored["access_key_id"]: "Active"}
    assert "secret_access_key" not in orjson.dumps(result.model_dump()).decode()


async def test_rotation_respects_the_two_key_limit(aws):
    """With a second key present the rotation fails as permanent; an Inactive spare is deleted only when allowed."""
    params = await CASE["aws.iam.rotate_access_key"].setup(aws)
    spare = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    with pytest.raises(PermanentActuationError) as info:
        await _run(aws, "aws.iam.rotate_access_key", params)
    assert info.value.code == "LimitExceeded"
    await aws.call("iam", "update_access_key", UserName="ml-training", AccessKeyId=spare, Status="Inactive")
    result = await _run(aws, "aws.iam.rotate_access_key", {**params, "delete_inactive_spare": True})
    keys = {k["AccessKeyId"] for k in (await aws.call(
        "iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]}
    assert keys == {params["access_key_id"], result.outputs["new_access_key_id"]}


async def test_secret_rotation_keeps_the_previous_value(aws):
    """The new value is AWSCURRENT and differs; the old value is still readable as AWSPREVIOUS."""
    params = await CASE["aws.secretsmanager.rotate_secret"].setup(aws)
    result = await _run(aws, "aws.secretsmanager.rotate_secret", params)
    sid = params["secret_id"]
    new = await aws.call("secretsmanager", "get_secret_value", SecretId=sid, VersionId=result.outputs["version_id"])
    old = await aws.call("secretsmanager", "get_secret_value", SecretId=sid, VersionStage="AWSPREVIOUS")
    assert old["SecretString"] == "hunter2"
    assert new["SecretString"] != "hunter2"
    assert len(new["SecretString"]) == 40


async def test_secret_rotation_of_one_json_field(aws):
    """With json_key only that field changes; the others are kept."""
    await aws.call("secretsmanager", "create_secret", Name="prod/db", SecretString='{"user":"app","password":"x"}')
    result = await _run(aws, "aws.secretsmanager.rotate_secret", {"secret_id": "prod/db", "json_key": "password"})
    got = await aws.call("secretsmanager", "get_secret_value", SecretId="prod/db",
                         VersionId=result.outputs["version_id"])
    doc = orjson.loads(got["SecretString"])
    assert doc["user"] == "app"
    assert doc["password"] != "x"


async def test_secret_rotation_refuses_a_json_secret_without_json_key(aws):
    """A JSON object secret is not replaced by a bare token when no json_key is given."""
    await aws.call("secretsmanager", "create_secret", Name="prod/db", SecretString='{"username":"app","password":"x"}')
    with pytest.raises(PermanentActuationError, match="json_key"):
        await _run(aws, "aws.secretsmanager.rotate_secret", {"secret_id": "prod/db"})
    got = await aws.call("secretsmanager", "get_secret_value", SecretId="prod/db")
    assert orjson.loads(got["SecretString"]) == {"username": "app", "password": "x"}


@pytest.mark.parametrize("kind", ["user", "role"])
async def test_revoke_sessions_denies_tokens_issued_before_now(aws, kind):
    """For a user or a role, the inline policy denies everything for tokens issued before the cutoff."""
    name = "ml-training"
    if kind == "user":
        await aws.call("iam", "create_user", UserName=name)
    else:
        await aws.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}")
    result = await _run(aws, "aws.iam.revoke_sessions", {"principal_type": kind, "principal_name": name})
    arg = {"UserName": name} if kind == "user" else {"RoleName": name}
    doc = (await aws.call("iam", f"get_{kind}_policy", **arg, PolicyName="responder-revoke-older-sessions"))[
        "PolicyDocument"]
    statement = doc["Statement"][0]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Deny", "*", "*")
    assert statement["Condition"] == {"DateLessThan": {"aws:TokenIssueTime": result.outputs["cutoff"]}}


async def test_endpoint_isolation_denies_invoke_on_exactly_that_arn(aws):
    """The role's deny names the endpoint's ARN and only the invoke actions."""
    params = await CASE["aws.sagemaker.isolate_endpoint"].setup(aws)
    await _run(aws, "aws.sagemaker.isolate_endpoint", params)
    arn = (await aws.call("sagemaker", "describe_endpoint", EndpointName="fraud-scoring-prod"))["EndpointArn"]
    doc = (await aws.call("iam", "get_role_policy", RoleName="inference-gateway",
                          PolicyName="responder-isolate-endpoint-fraud-scoring-prod"))["PolicyDocument"]
    assert doc["Statement"][0]["Resource"] == arn
    assert doc["Statement"][0]["Action"][0] == "sagemaker:InvokeEndpoint"


async def test_missing_target_is_a_permanent_failure(aws):
    """Acting on an instance that does not exist fails as permanent (never retried)."""
    with pytest.raises(PermanentActuationError):
        await _run(aws, "aws.ec2.isolate_instance", {"instance_id": "i-0123456789abcdef0"})


async def test_rotation_that_cannot_store_the_key_leaves_no_orphan_and_retries_clean(aws):
    """A throttled secret write deletes the just-created key; the retry then rotates within the two-key limit."""
    from responder.actuators.retry import with_retries
    from tests.integration.actuator_cases import throttle

    params = await CASE["aws.iam.rotate_access_key"].setup(aws)
    failed = throttle(aws, "secretsmanager", 2, code="InternalServiceError", status=500, operation="CreateSecret")
    actuator = registry.get("aws.iam.rotate_access_key")
    p = actuator.params.model_validate(params)
    result = await with_retries(lambda: actuator.apply(p, _ctx(aws)), attempts=4, deadline=30, initial=0.01,
                                maximum=0.05)
    keys = {k["AccessKeyId"] for k in (await aws.call(
        "iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]}
    assert failed == ["CreateSecret", "CreateSecret"]
    assert keys == {params["access_key_id"], result.outputs["new_access_key_id"]}


async def test_a_rule_added_to_the_quarantine_group_is_drift(aws):
    """An ingress rule added to the quarantine group makes verify False; the next apply strips it again."""
    params = await CASE["aws.ec2.isolate_instance"].setup(aws)
    result = await _run(aws, "aws.ec2.isolate_instance", params)
    group = result.outputs["quarantine_group"]
    await aws.call("ec2", "authorize_security_group_ingress", GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    actuator = registry.get("aws.ec2.isolate_instance")
    p = actuator.params.model_validate(params)
    assert await actuator.verify(p, _ctx(aws)) is False
    await actuator.apply(p, _ctx(aws))
    assert await actuator.verify(p, _ctx(aws)) is True
    got = (await aws.call("ec2", "describe_security_groups", GroupIds=[group]))["SecurityGroups"][0]
    assert got["IpPermissions"] == []


class _DropsReply:
    """Forwards every call to moto; the first `operation` is applied and then its reply is lost."""

    def __init__(self, inner, operation: str) -> None:
        self.inner, self.operation, self.dropped = inner, operation, 0

    async def call(self, service: str, operation: str, **kwargs):
        """Apply the call; raise a transient error instead of the first reply of `operation`."""
        from responder.errors import TransientActuationError

        reply = await self.inner.call(service, operation, **kwargs)
        if operation == self.operation and not self.dropped:
            self.dropped += 1
            raise TransientActuationError("connection reset after the request was applied", code="ReplyLost")
        return reply


async def test_rotation_whose_create_reply_is_lost_does_not_leave_a_second_new_key(aws):
    """CreateAccessKey applied but its reply lost: the retry removes that unreadable key and issues exactly one."""
    from responder.actuators.retry import with_retries

    params = await CASE["aws.iam.rotate_access_key"].setup(aws)
    lossy = _DropsReply(aws, "create_access_key")
    actuator = registry.get("aws.iam.rotate_access_key")
    p = actuator.params.model_validate(params)
    result = await with_retries(lambda: actuator.apply(p, _ctx(lossy)), attempts=3, deadline=30, initial=0.01,
                                maximum=0.05)
    listed = (await aws.call("iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]
    stored = orjson.loads((await aws.call("secretsmanager", "get_secret_value",
                                          SecretId=params["secret_name"]))["SecretString"])
    assert lossy.dropped == 1
    assert {k["AccessKeyId"]: k["Status"] for k in listed} == {params["access_key_id"]: "Inactive",
                                                               result.outputs["new_access_key_id"]: "Active"}
    assert stored["access_key_id"] == result.outputs["new_access_key_id"]
    assert await actuator.verify(p, _ctx(aws))
    tags = (await aws.call("iam", "list_user_tags", UserName="ml-training"))["Tags"]
    assert not [t for t in tags if t["Key"].startswith("responder:")]


async def test_snapshot_of_an_ebs_backed_instance_whose_volumes_were_detached_is_not_verified(aws):
    """Its volumes detached (the evidence moved off it): nothing is taken, and verify() says so rather than done."""
    params = await CASE["aws.ec2.snapshot_volumes"].setup(aws)
    attached = await aws.call("ec2", "describe_volumes",
                              Filters=[{"Name": "attachment.instance-id", "Values": [params["instance_id"]]}])
    for volume in attached["Volumes"]:
        await aws.call("ec2", "detach_volume", VolumeId=volume["VolumeId"], InstanceId=params["instance_id"],
                       Force=True)
    actuator = registry.get("aws.ec2.snapshot_volumes")
    p = actuator.params.model_validate(params)
    result = await actuator.apply(p, _ctx(aws))
    assert result.changed is False
    assert result.outputs["snapshot_ids"] == []
    assert await actuator.verify(p, _ctx(aws)) is False


async def test_snapshot_of_an_instance_that_does_not_exist_fails_not_found(aws):
    """An event naming an unknown instance: apply fails as not found (a human looks), it does not succeed empty."""
    actuator = registry.get("aws.ec2.snapshot_volumes")
    p = actuator.params.model_validate({"instance_id": "i-0fedcba9876543210"})
    with pytest.raises(PermanentActuationError, match="does not exist") as caught:
        await actuator.apply(p, _ctx(aws))
    assert caught.value.code == "InvalidInstanceID.NotFound"
    snaps = await aws.call("ec2", "describe_snapshots", OwnerIds=["self"],
                           Filters=[{"Name": "tag:responder:instance", "Values": ["i-0fedcba9876543210"]}])
    assert snaps["Snapshots"] == []


@pytest.mark.parametrize("gone", ["terminated", "never existed"])
async def test_snapshot_of_an_instance_that_is_gone_is_not_verified(aws, gone):
    """An event naming a terminated or unknown instance: no volume to find, and the step is not verified as done."""
    params = await CASE["aws.ec2.snapshot_volumes"].setup(aws)
    if gone == "terminated":
        await aws.call("ec2", "terminate_instances", InstanceIds=[params["instance_id"]])
    else:
        params = {"instance_id": "i-0fedcba9876543210"}
    actuator = registry.get("aws.ec2.snapshot_volumes")
    p = actuator.params.model_validate(params)
    assert await verified(StepCall(actuator, p, _ctx(aws))) is False  # as the engine reads it back


@pytest.mark.parametrize("later", [0, 5], ids=["same-second", "five-seconds-later"])
async def test_revocations_of_one_user_from_two_incidents_both_verify(aws, monkeypatch, later):
    """Two incidents revoking one user's sessions, in the same second or later, both verify their read-backs."""
    from datetime import UTC, datetime, timedelta

    from responder.actuators.aws import iam_policies

    await aws.call("iam", "create_user", UserName="shared-user")
    actuator = registry.get("aws.iam.revoke_sessions")
    p = actuator.params.model_validate({"principal_type": "user", "principal_name": "shared-user"})
    first, second = _ctx(aws, "a" * 32), _ctx(aws, "b" * 32)
    at = datetime(2026, 12, 5, 10, 0, 0, 250000, tzinfo=UTC)
    monkeypatch.setattr(iam_policies, "utc_now", lambda: at)
    one = await actuator.apply(p, first)
    monkeypatch.setattr(iam_policies, "utc_now", lambda: at + timedelta(seconds=later, microseconds=500000))
    two = await actuator.apply(p, second)
    assert one.changed is True
    assert two.changed is bool(later)
    assert await verified(StepCall(actuator, p, first)) is True
    assert await verified(StepCall(actuator, p, second)) is True
    assert two.outputs["cutoff"] >= one.outputs["cutoff"]
