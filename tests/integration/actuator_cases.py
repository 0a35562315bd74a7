"""Per-actuator fixtures on the moto server: create the target, read its state, push it back (drift)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from responder.actuators.aws.session import AwsSession
from responder.errors import PermanentActuationError

Params = dict[str, Any]
ACCOUNT = "123456789012"
ENDPOINT_POLICY = "responder-isolate-endpoint-fraud-scoring-prod"
TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},'
    '"Action":"sts:AssumeRole"}]}'
)


@dataclass(frozen=True)
class Case:
    """How to test one actuator against moto."""

    actuator: str
    service: str
    setup: Callable[[AwsSession], Awaitable[Params]]
    observe: Callable[[AwsSession, Params], Awaitable[Any]]
    drift: Callable[[AwsSession, Params], Awaitable[None]] | None = None
    undo_view: Callable[[Any, Params], Any] = lambda state, p: state


async def _role(aws: AwsSession, name: str) -> str:
    got = await aws.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument=TRUST)
    return str(got["Role"]["Arn"])


async def _instance(aws: AwsSession) -> Params:
    ami = (await aws.call("ec2", "describe_images"))["Images"][0]["ImageId"]
    vpc = (await aws.call("ec2", "describe_vpcs"))["Vpcs"][0]["VpcId"]
    web = (await aws.call("ec2", "create_security_group", GroupName="inference-web", Description="w", VpcId=vpc))
    run = await aws.call("ec2", "run_instances", ImageId=ami, MinCount=1, MaxCount=1, InstanceType="g5.xlarge",
                         SecurityGroupIds=[web["GroupId"]])
    return {"instance_id": run["Instances"][0]["InstanceId"]}


async def _eni_groups(aws: AwsSession, p: Params) -> dict[str, list[str]]:
    out = await aws.call("ec2", "describe_network_interfaces",
                         Filters=[{"Name": "attachment.instance-id", "Values": [p["instance_id"]]}])
    return {e["NetworkInterfaceId"]: sorted(g["GroupName"] for g in e["Groups"]) for e in out["NetworkInterfaces"]}


async def _unisolate(aws: AwsSession, p: Params) -> None:
    out = await aws.call("ec2", "describe_security_groups",
                         Filters=[{"Name": "group-name", "Values": ["inference-web"]}])
    web = out["SecurityGroups"][0]["GroupId"]
    for eni in await _eni_groups(aws, p):
        await aws.call("ec2", "modify_network_interface_attribute", NetworkInterfaceId=eni, Groups=[web])
    await aws.call("ec2", "modify_instance_attribute", InstanceId=p["instance_id"], Groups=[web])


async def _snapshots(aws: AwsSession, p: Params) -> list[str]:
    out = await aws.call("ec2", "describe_snapshots", OwnerIds=["self"],
                         Filters=[{"Name": "tag:responder:instance", "Values": [p["instance_id"]]}])
    return sorted(s["VolumeId"] for s in out["Snapshots"])


async def _delete_snapshots(aws: AwsSession, p: Params) -> None:
    out = await aws.call("ec2", "describe_snapshots", OwnerIds=["self"],
                         Filters=[{"Name": "tag:responder:instance", "Values": [p["instance_id"]]}])
    for s in out["Snapshots"]:
        await aws.call("ec2", "delete_snapshot", SnapshotId=s["SnapshotId"])


async def _state(aws: AwsSession, p: Params) -> str:
    out = await aws.call("ec2", "describe_instances", InstanceIds=[p["instance_id"]])
    return str(out["Reservations"][0]["Instances"][0]["State"]["Name"])


async def _user_key(aws: AwsSession) -> Params:
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    return {"user_name": "ml-training", "access_key_id": key}


async def _keys(aws: AwsSession, p: Params) -> dict[str, str]:
    out = await aws.call("iam", "list_access_keys", UserName=p["user_name"])
    return {k["AccessKeyId"]: k["Status"] for k in out["AccessKeyMetadata"]}


async def _set_key(aws: AwsSession, p: Params, status: str) -> None:
    await aws.call("iam", "update_access_key", UserName=p["user_name"], AccessKeyId=p["access_key_id"], Status=status)


async def _rotation(aws: AwsSession) -> Params:
    return {**(await _user_key(aws)), "secret_name": "responder/iam/ml-training"}


async def _inline(aws: AwsSession, kind: str, name: str, policy: str) -> Any:
    arg = "UserName" if kind == "user" else "RoleName"
    try:
        return (await aws.call("iam", f"get_{kind}_policy", **{arg: name}, PolicyName=policy))["PolicyDocument"]
    except PermanentActuationError:
        return None


async def _drop_inline(aws: AwsSession, kind: str, name: str, policy: str) -> None:
    arg = "UserName" if kind == "user" else "RoleName"
    await aws.call("iam", f"delete_{kind}_policy", **{arg: name}, PolicyName=policy)


async def _revoke_setup(aws: AwsSession) -> Params:
    await aws.call("iam", "create_user", UserName="ml-training")
    return {"principal_type": "user", "principal_name": "ml-training"}


async def _quarantine_setup(aws: AwsSession) -> Params:
    await _role(aws, "inference-runtime")
    return {"principal_type": "role", "principal_name": "inference-runtime"}


async def _stopped_trail(aws: AwsSession) -> Params:
    await aws.call("s3", "create_bucket", Bucket="acme-cloudtrail-logs")
    await aws.call("cloudtrail", "create_trail", Name="management-events", S3BucketName="acme-cloudtrail-logs")
    await aws.call("cloudtrail", "stop_logging", Name="management-events")
    return {"trail": "management-events"}


async def _logging(aws: AwsSession, p: Params) -> bool:
    return bool((await aws.call("cloudtrail", "get_trail_status", Name=p["trail"]))["IsLogging"])


async def _bedrock_user(aws: AwsSession) -> Params:
    await aws.call("iam", "create_user", UserName="ml-training")
    return {"principal_type": "user", "principal_name": "ml-training"}


async def _secret(aws: AwsSession) -> Params:
    await aws.call("secretsmanager", "create_secret", Name="prod/inference/db-password", SecretString="hunter2")
    return {"secret_id": "prod/inference/db-password"}


async def _secret_current(aws: AwsSession, p: Params) -> str:
    stages = (await aws.call("secretsmanager", "describe_secret", SecretId=p["secret_id"]))["VersionIdsToStages"]
    return next(v for v, labels in stages.items() if "AWSCURRENT" in labels)


async def _secret_drift(aws: AwsSession, p: Params) -> None:
    stages = (await aws.call("secretsmanager", "describe_secret", SecretId=p["secret_id"]))["VersionIdsToStages"]
    old = next(v for v, labels in stages.items() if "AWSPREVIOUS" in labels)
    await aws.call("secretsmanager", "update_secret_version_stage", SecretId=p["secret_id"], VersionStage="AWSCURRENT",
                   MoveToVersionId=old, RemoveFromVersionId=await _secret_current(aws, p))


async def _kms(aws: AwsSession) -> Params:
    return {"key_id": (await aws.call("kms", "create_key"))["KeyMetadata"]["KeyId"]}


async def _kms_state(aws: AwsSession, p: Params) -> str:
    return str((await aws.call("kms", "describe_key", KeyId=p["key_id"]))["KeyMetadata"]["KeyState"])


async def _api_key(aws: AwsSession) -> Params:
    return {"api_key_id": (await aws.call("apigateway", "create_api_key", name="partner-a", enabled=True))["id"]}


async def _api_enabled(aws: AwsSession, p: Params) -> bool:
    return bool((await aws.call("apigateway", "get_api_key", apiKey=p["api_key_id"]))["enabled"])


async def _function(aws: AwsSession) -> Params:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    await aws.call("lambda", "create_function", FunctionName="inference-proxy", Runtime="python3.12",
                   Role=await _role(aws, "lambda-exec"), Handler="handler.handler", Code={"ZipFile": buf.getvalue()})
    await aws.call("lambda", "put_function_concurrency", FunctionName="inference-proxy", ReservedConcurrentExecutions=5)
    return {"function_name": "inference-proxy"}


async def _reserved(aws: AwsSession, p: Params) -> Any:
    return (await aws.call("lambda", "get_function_concurrency", FunctionName=p["function_name"])).get(
        "ReservedConcurrentExecutions")


async def _endpoint(aws: AwsSession) -> Params:
    role = await _role(aws, "sagemaker-exec")
    await _role(aws, "inference-gateway")
    await aws.call("sagemaker", "create_model", ModelName="fraud-v3", ExecutionRoleArn=role,
                   PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/fraud:3"})
    await aws.call("sagemaker", "create_endpoint_config", EndpointConfigName="fraud-v3-config", ProductionVariants=[
        {"VariantName": "main", "ModelName": "fraud-v3", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    await aws.call("sagemaker", "create_endpoint", EndpointName="fraud-scoring-prod",
                   EndpointConfigName="fraud-v3-config")
    return {"endpoint_name": "fraud-scoring-prod", "role_names": ["inference-gateway"]}


async def _bucket(aws: AwsSession) -> Params:
    await aws.call("s3", "create_bucket", Bucket="training-data-prod")
    return {"bucket": "training-data-prod"}


async def _pab(aws: AwsSession, p: Params) -> Any:
    try:
        return (await aws.call("s3", "get_public_access_block", Bucket=p["bucket"]))["PublicAccessBlockConfiguration"]
    except PermanentActuationError:
        return None


def throttle(aws: AwsSession, service: str, times: int, code: str = "ThrottlingException",
             status: int = 400, operation: str | None = None) -> list[str]:
    """Make the next `times` calls on `service` (or only its `operation`) fail with `code` before reaching moto."""
    failed: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        if len(failed) < times and operation in (None, model.name):
            failed.append(model.name)
            raise ClientError({"Error": {"Code": code, "Message": "injected"},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, model.name)

    aws.client(service).meta.events.register("before-call", hook)
    return failed


# aws.iam.delete_access_key has no drift: a deleted key cannot come back with the same id.
CASES = [
    Case("aws.ec2.isolate_instance", "ec2", _instance, _eni_groups, _unisolate),
    Case("aws.ec2.snapshot_volumes", "ec2", _instance, _snapshots, _delete_snapshots),
    Case("aws.ec2.stop_instance", "ec2", _instance, _state,
         lambda aws, p: aws.call("ec2", "start_instances", InstanceIds=[p["instance_id"]])),
    Case("aws.iam.deactivate_access_key", "iam", _user_key, _keys, lambda aws, p: _set_key(aws, p, "Active")),
    Case("aws.iam.delete_access_key", "iam", _user_key, _keys, None),
    Case("aws.iam.rotate_access_key", "iam", _rotation, _keys, lambda aws, p: _set_key(aws, p, "Active"),
         undo_view=lambda keys, p: keys[p["access_key_id"]]),
    Case("aws.iam.revoke_sessions", "iam", _revoke_setup,
         lambda aws, p: _inline(aws, "user", p["principal_name"], "responder-revoke-older-sessions"),
         lambda aws, p: _drop_inline(aws, "user", p["principal_name"], "responder-revoke-older-sessions")),
    Case("aws.iam.quarantine_principal", "iam", _quarantine_setup,
         lambda aws, p: _inline(aws, "role", p["principal_name"], "responder-quarantine"),
         lambda aws, p: _drop_inline(aws, "role", p["principal_name"], "responder-quarantine")),
    Case("aws.cloudtrail.start_logging", "cloudtrail", _stopped_trail, _logging,
         lambda aws, p: aws.call("cloudtrail", "stop_logging", Name=p["trail"])),
    Case("aws.iam.deny_bedrock_access", "iam", _bedrock_user,
         lambda aws, p: _inline(aws, "user", p["principal_name"], "responder-deny-bedrock"),
         lambda aws, p: _drop_inline(aws, "user", p["principal_name"], "responder-deny-bedrock")),
    Case("aws.secretsmanager.rotate_secret", "secretsmanager", _secret, _secret_current, _secret_drift),
    Case("aws.kms.disable_key", "kms", _kms, _kms_state,
         lambda aws, p: aws.call("kms", "enable_key", KeyId=p["key_id"])),
    Case("aws.apigateway.disable_api_key", "apigateway", _api_key, _api_enabled,
         lambda aws, p: aws.call("apigateway", "update_api_key", apiKey=p["api_key_id"],
                                 patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}])),
    Case("aws.lambda.throttle_function", "lambda", _function, _reserved,
         lambda aws, p: aws.call("lambda", "delete_function_concurrency", FunctionName=p["function_name"])),
    Case("aws.sagemaker.isolate_endpoint", "sagemaker", _endpoint,
         lambda aws, p: _inline(aws, "role", "inference-gateway", ENDPOINT_POLICY),
         lambda aws, p: _drop_inline(aws, "role", "inference-gateway", ENDPOINT_POLICY)),
    Case("aws.s3.block_public_access", "s3", _bucket, _pab,
         lambda aws, p: aws.call("s3", "delete_public_access_block", Bucket=p["bucket"])),
]
