"""Protected tags through the engine and moto: a role and an instance tagged protected in AWS are refused though the
alert carries no tags, and moto shows nothing changed."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.protection_kit import refused_and_escalated

pytestmark = pytest.mark.integration
PROTECTED = {"responder:protected": "*"}


async def test_a_role_tagged_protected_in_aws_is_refused_when_the_alert_carries_no_tags(aws, tmp_path):
    """RESPONDER_PROTECTED_TAGS={responder:protected: *} and a role tagged so in moto: quarantining it by name is
    refused, escalated and paged, and the role gets no policy (before: the role was quarantined)."""
    name = f"prod-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    await aws.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}",
                   Tags=[{"Key": "responder:protected", "Value": "yes"}])
    detail = await refused_and_escalated(aws, tmp_path, "aws.iam.quarantine_principal",
                                         {"principal_type": "role", "principal_name": name}, "", tags=PROTECTED)
    assert "responder:protected=yes" in detail
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == []


async def test_an_instance_tagged_protected_in_aws_is_not_isolated_when_the_alert_carries_no_tags(aws, tmp_path):
    """RESPONDER_PROTECTED_TAGS={responder:protected: *} and an instance tagged so in moto: isolating it by id is
    refused, escalated and paged, and it keeps its security groups (before: the instance was isolated)."""
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

