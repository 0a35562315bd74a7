"""Protected tags through the engine and moto: a role and an instance tagged protected in AWS are refused though the
alert carries no tags, and moto shows nothing changed; an untagged KMS key, trail and endpoint are acted on, and a
protected tag on them (on an endpoint's second page of tags) refuses."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.protection_kit import one_protected_step, refused_and_escalated

pytestmark = pytest.mark.integration
PROTECTED = {"responder:protected": "*"}


async def test_a_role_tagged_protected_in_aws_is_refused_when_the_alert_carries_no_tags(aws, tmp_path):
    """A role tagged per RESPONDER_PROTECTED_TAGS in AWS is refused quarantine when the alert carries no tags."""
    name = f"prod-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    await aws.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}",
                   Tags=[{"Key": "responder:protected", "Value": "yes"}])
    detail = await refused_and_escalated(aws, tmp_path, "aws.iam.quarantine_principal",
                                         {"principal_type": "role", "principal_name": name}, "", tags=PROTECTED)
    assert "responder:protected=yes" in detail
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == []


async def test_an_instance_tagged_protected_in_aws_is_not_isolated_when_the_alert_carries_no_tags(aws, tmp_path):
    """An instance tagged per RESPONDER_PROTECTED_TAGS in AWS is not isolated when the alert carries no tags."""
    ami = (await aws.call("ec2", "describe_images"))["Images"][0]["ImageId"]
    run = await aws.call("ec2", "run_instances", ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                         TagSpecifications=[{"ResourceType": "instance",
                                             "Tags": [{"Key": "responder:protected", "Value": "db"}]}])
    instance = run["Instances"][0]
    before = sorted(g["GroupId"] for g in instance["SecurityGroups"])
    detail = await refused_and_escalated(aws, tmp_path, "aws.ec2.isolate_instance",
                                         {"instance_id": instance["InstanceId"]}, "", tags=PROTECTED)
    assert "responder:protected=db" in detail
    described = await aws.call("ec2", "describe_instances", InstanceIds=[instance["InstanceId"]])
    assert sorted(g["GroupId"] for g in described["Reservations"][0]["Instances"][0]["SecurityGroups"]) == before



def _suffix(tmp_path) -> str:
    return hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]


def _dir(tmp_path, name: str):
    path = tmp_path / name
    path.mkdir()
    return path


def _acted(entries: list[tuple[str, dict]]) -> None:
    """The step ran (no guard tripped, its one result ok)."""
    assert not [b for k, b in entries if k == "guard.tripped"], entries
    assert [b.get("status") for k, b in entries if k == "step.result"] == ["ok"], entries


async def test_an_untagged_key_and_trail_are_acted_on_and_a_protected_tag_on_them_refuses(aws, tmp_path):
    """An untagged KMS key and trail, their tags empty lists, are acted on; once tagged protected, both are refused."""
    key = (await aws.call("kms", "create_key"))["KeyMetadata"]["KeyId"]
    await aws.call("kms", "disable_key", KeyId=key)
    bucket = f"trail-logs-{_suffix(tmp_path)}"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    trail = f"audit-{_suffix(tmp_path)}"
    arn = (await aws.call("cloudtrail", "create_trail", Name=trail, S3BucketName=bucket))["TrailARN"]
    steps = [("aws.kms.enable_key", {"key_id": key}), ("aws.cloudtrail.start_logging", {"trail": trail})]
    for actuator, with_ in steps:
        entries, _ = await one_protected_step(aws, _dir(tmp_path, f"{actuator}-untagged"), actuator, with_, "",
                                              tags=PROTECTED)
        _acted(entries)
    assert (await aws.call("kms", "describe_key", KeyId=key))["KeyMetadata"]["KeyState"] == "Enabled"
    assert (await aws.call("cloudtrail", "get_trail_status", Name=trail))["IsLogging"] is True
    await aws.call("kms", "tag_resource", KeyId=key, Tags=[{"TagKey": "responder:protected", "TagValue": "kms"}])
    await aws.call("cloudtrail", "add_tags", ResourceId=arn, TagsList=[{"Key": "responder:protected", "Value": "ct"}])
    for (actuator, with_), value in zip(steps, ["kms", "ct"], strict=True):
        detail = await refused_and_escalated(aws, _dir(tmp_path, f"{actuator}-tagged"), actuator, with_, "",
                                             tags=PROTECTED)
        assert f"responder:protected={value}" in detail


async def test_a_protected_tag_on_an_endpoints_second_page_of_tags_refuses(aws, tmp_path):
    """A protected tag on an endpoint's second page of tags refuses its isolation; untagged, it is isolated."""
    name, role = f"ep-{_suffix(tmp_path)}", f"gateway-{_suffix(tmp_path)}"
    await aws.call("iam", "create_role", RoleName=role, AssumeRolePolicyDocument="{}")
    await aws.call("sagemaker", "create_model", ModelName=name, PrimaryContainer={"Image": "image"},
                   ExecutionRoleArn=f"arn:aws:iam::123456789012:role/{role}")
    await aws.call("sagemaker", "create_endpoint_config", EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "v", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}])
    arn = (await aws.call("sagemaker", "create_endpoint", EndpointName=name, EndpointConfigName=name))["EndpointArn"]
    await aws.call("sagemaker", "add_tags", ResourceArn=arn,
                   Tags=[{"Key": f"t{i:02}", "Value": "v"} for i in range(60)])
    first = await aws.call("sagemaker", "list_tags", ResourceArn=arn)
    assert len(first["Tags"]) == 50  # moto pages them, as AWS may
    assert first.get("NextToken")
    with_ = {"endpoint_name": name, "role_names": [role]}
    entries, _ = await one_protected_step(aws, _dir(tmp_path, "untagged"), "aws.sagemaker.isolate_endpoint", with_, "",
                                          tags=PROTECTED)
    _acted(entries)
    await aws.call("iam", "delete_role_policy", RoleName=role,
                   PolicyName=(await aws.call("iam", "list_role_policies", RoleName=role))["PolicyNames"][0])
    await aws.call("sagemaker", "add_tags", ResourceArn=arn, Tags=[{"Key": "responder:protected", "Value": "p2"}])
    detail = await refused_and_escalated(aws, _dir(tmp_path, "tagged"), "aws.sagemaker.isolate_endpoint", with_, "",
                                         tags=PROTECTED)
    assert "responder:protected=p2" in detail
    assert (await aws.call("iam", "list_role_policies", RoleName=role))["PolicyNames"] == []
