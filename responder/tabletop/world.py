"""Seed a playbook's world into the sandbox and remember the ids the sandbox issued (referable by name)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from responder.actuators.aws.session import AwsSession
from responder.actuators.model.local import LocalStore
from responder.actuators.model.signing import generate_key, sign
from responder.tabletop.resources import Model, Role, VersionState, World

EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
LAMBDA_TRUST = EC2_TRUST.replace("ec2.amazonaws.com", "lambda.amazonaws.com")
AMI = "ami-12c6146b"  # bundled with moto


@dataclass
class Bound:
    """One seeded resource: its sandbox id, ARN and name."""

    id: str
    name: str
    arn: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Bindings:
    """Seeded resources by kind and world name; `resolve` turns `${world.KIND.NAME[.attr]}` into the value."""

    by_kind: dict[str, dict[str, Bound]] = field(default_factory=dict)
    registry: Path | None = None
    trusted_key: Path | None = None

    def add(self, kind: str, bound: Bound, name: str | None = None) -> None:
        """Remember one resource under its world name."""
        self.by_kind.setdefault(kind, {})[name or bound.name] = bound

    def get(self, kind: str, name: str) -> Bound:
        """The bound resource (KeyError when the world has no such name)."""
        return self.by_kind[kind][name]

    def resolve(self, ref: str) -> str:
        """`world.keys.main` → the access key id; `.arn` / `.name` / `.id` pick an attribute."""
        _, kind, rest = ref.split(".", 2)
        names = self.by_kind.get(kind, {})
        if rest in names:
            return names[rest].id
        name, attr = rest.rsplit(".", 1)
        return str(getattr(names[name], attr))

    def id_of(self, name: str) -> str:
        """The sandbox id of the resource with this world name (any kind), else the name itself."""
        return next((names[name].id for names in self.by_kind.values() if name in names), name)

    def labels(self) -> dict[str, str]:
        """Sandbox id → `kind/name`, to name resources in reports."""
        return {b.id: f"{kind}/{name}" for kind, names in self.by_kind.items() for name, b in names.items()}


async def seed(aws: AwsSession, world: World, work: Path) -> Bindings:
    """Create every resource of `world`; the model registry lives under `work`."""
    b = Bindings()
    for user in world.users:
        got = await aws.call("iam", "create_user", UserName=user.name)
        b.add("users", Bound(user.name, user.name, got["User"]["Arn"]))
        for policy, doc in user.policies.items():
            await aws.call("iam", "put_user_policy", UserName=user.name, PolicyName=policy,
                           PolicyDocument=json.dumps(doc))
        for key in user.keys:
            created = await aws.call("iam", "create_access_key", UserName=user.name)
            b.add("keys", Bound(created["AccessKey"]["AccessKeyId"], key, extra={"user": user.name}))
    roles = {r.name: r for r in world.roles}
    for endpoint in world.endpoints:
        for invoker in endpoint.invokers:
            roles.setdefault(invoker, Role(name=invoker))
    for role in roles.values():
        got = await aws.call("iam", "create_role", RoleName=role.name, AssumeRolePolicyDocument=EC2_TRUST)
        b.add("roles", Bound(role.name, role.name, got["Role"]["Arn"]))
        for policy, doc in role.policies.items():
            await aws.call("iam", "put_role_policy", RoleName=role.name, PolicyName=policy,
                           PolicyDocument=json.dumps(doc))
    await _seed_instances(aws, world, b)
    await _seed_ml(aws, world, b)
    await _seed_data(aws, world, b)
    if world.models:
        await _seed_models(world.models, work, b)
    return b


async def _seed_instances(aws: AwsSession, world: World, b: Bindings) -> None:
    vpc = (await aws.call("ec2", "describe_vpcs", Filters=[{"Name": "is-default", "Values": ["true"]}]))["Vpcs"]
    vpc_id = vpc[0]["VpcId"] if vpc else (await aws.call("ec2", "create_vpc", CidrBlock="10.0.0.0/16"))["Vpc"]["VpcId"]
    groups: dict[str, str] = {}
    for inst in world.instances:
        for g in inst.security_groups:
            if g not in groups:
                groups[g] = (await aws.call("ec2", "create_security_group", GroupName=g, Description=g,
                                            VpcId=vpc_id))["GroupId"]
                b.add("security_groups", Bound(groups[g], g))
        tags = [{"Key": "Name", "Value": inst.name}, *({"Key": k, "Value": v} for k, v in inst.tags.items())]
        got = await aws.call("ec2", "run_instances", ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                             SecurityGroupIds=[groups[g] for g in inst.security_groups],
                             BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        b.add("instances", Bound(got["Instances"][0]["InstanceId"], inst.name))


async def _seed_ml(aws: AwsSession, world: World, b: Bindings) -> None:
    for ep in world.endpoints:
        role_arn = b.get("roles", ep.invokers[0]).arn if ep.invokers else "arn:aws:iam::123456789012:role/sm"
        await aws.call("sagemaker", "create_model", ModelName=ep.name, ExecutionRoleArn=role_arn,
                       PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/inference:1"})
        await aws.call("sagemaker", "create_endpoint_config", EndpointConfigName=ep.name, ProductionVariants=[
            {"VariantName": "main", "ModelName": ep.name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        got = await aws.call("sagemaker", "create_endpoint", EndpointName=ep.name, EndpointConfigName=ep.name)
        b.add("endpoints", Bound(ep.name, ep.name, got["EndpointArn"], extra={"invokers": ",".join(ep.invokers)}))
    for key in world.api_keys:
        got = await aws.call("apigateway", "create_api_key", name=key.name, enabled=True)
        b.add("api_keys", Bound(got["id"], key.name))
    for fn in world.functions:
        role = await aws.call("iam", "create_role", RoleName=f"{fn.name}-exec", AssumeRolePolicyDocument=LAMBDA_TRUST)
        got = await aws.call("lambda", "create_function", FunctionName=fn.name, Runtime="python3.12",
                             Role=role["Role"]["Arn"], Handler="app.handler", Code={"ZipFile": _zip()})
        await aws.call("lambda", "put_function_concurrency", FunctionName=fn.name, ReservedConcurrentExecutions=5)
        b.add("functions", Bound(fn.name, fn.name, got["FunctionArn"]))


def _zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buf.getvalue()


async def _seed_data(aws: AwsSession, world: World, b: Bindings) -> None:
    for secret in world.secrets:
        got = await aws.call("secretsmanager", "create_secret", Name=secret.name, SecretString=secret.value)
        b.add("secrets", Bound(secret.name, secret.name, got["ARN"], extra={"value": secret.value}))
    for key in world.kms_keys:
        got = await aws.call("kms", "create_key", Description=key.name)
        b.add("kms_keys", Bound(got["KeyMetadata"]["KeyId"], key.name, got["KeyMetadata"]["Arn"]))
    for bucket in world.buckets:
        await aws.call("s3", "create_bucket", Bucket=bucket.name)
        if not bucket.public:
            block = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
                                  True)
            await aws.call("s3", "put_public_access_block", Bucket=bucket.name, PublicAccessBlockConfiguration=block)
        b.add("buckets", Bound(bucket.name, bucket.name, f"arn:aws:s3:::{bucket.name}"))
    for trail in world.trails:
        logs = f"{trail.name.lower().replace('_', '-')}-trail-logs"[:63]
        await aws.call("s3", "create_bucket", Bucket=logs)
        got = await aws.call("cloudtrail", "create_trail", Name=trail.name, S3BucketName=logs)
        if trail.logging:
            await aws.call("cloudtrail", "start_logging", Name=trail.name)
        b.add("trails", Bound(trail.name, trail.name, got["TrailARN"]))


async def _seed_models(models: list[Model], work: Path, b: Bindings) -> None:
    keys = work / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    generate_key(keys / "trusted.pem", keys / "trusted.pub.pem")
    b.registry, b.trusted_key = work / "registry", keys / "trusted.pub.pem"
    store = LocalStore(b.registry)
    for model in models:
        published = {}
        for v in model.versions:
            src = work / "src" / model.name / v.version / "model"
            src.mkdir(parents=True)
            (src / "weights.bin").write_bytes(os.urandom(2048))
            (src / "config.json").write_text('{"layers": 2}')
            sig = None
            if v.state != VersionState.UNSIGNED:
                sig = src.with_name("model.sig")
                sign(src, keys / "trusted.pem", sig, model=model.name, version=v.version)
            if v.state == VersionState.TAMPERED:
                (src / "weights.bin").write_bytes(os.urandom(2048))
            published[v.version] = await store.publish(model.name, v.version, src, sig)
        await store.set_serving(model.name, published[model.serving])
        b.add("models", Bound(model.name, model.name))
