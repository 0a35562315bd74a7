"""Protected ids through the running service and moto: an ARN glob protects the role a finding names by name, and the
instance it names by id."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import orjson
import pytest

from responder.ingest.kafka import publish
from responder.service import Service
from responder.timeline.chain import parse_lines
from tests.integration.harness import make_settings, running, wait_for
from tests.integration.protection_kit import one_protected_step, refused_and_escalated

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "runbooks" / "examples" / "credential-exfiltration.json"


def _entries(path: Path) -> list[tuple[str, dict]]:
    return [(e.kind, e.body) for e in parse_lines(path.read_bytes().splitlines())] if path.exists() else []


async def _first_refusal(settings, kafka_bootstrap: str, topic: str, finding: bytes) -> list[tuple[str, dict]]:
    """Run the service until the finding's first step is tried (or refused); its timeline, whose first guard trip
    is a hard `protected` one."""
    async with running(Service(settings)):
        await publish(kafka_bootstrap, topic, [finding], key=b"protected")
        await wait_for(lambda: any(k in {"guard.tripped", "step.intent"} for k, _ in _entries(settings.timeline_path)))
    entries = _entries(settings.timeline_path)
    trips = [b for k, b in entries if k == "guard.tripped"]
    assert trips, orjson.dumps(entries).decode()
    assert (trips[0]["guard"], trips[0]["hard"]) == ("protected", True)
    return entries


async def test_readme_arn_glob_protects_the_role_named_in_a_finding(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch
):
    """RESPONDER_PROTECTED_IDS=[arn:aws:iam::*:role/ResponderRole]: no session revocation, a hard guard trip."""
    await aws.call("iam", "create_role", RoleName="ResponderRole", AssumeRolePolicyDocument="{}")
    monkeypatch.setenv("RESPONDER_PROTECTED_IDS", '["arn:aws:iam::*:role/ResponderRole"]')
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir)
    assert settings.protected_ids == ["arn:aws:iam::*:role/ResponderRole"]
    finding = EXAMPLE.read_bytes().replace(b"inference-host-role", b"ResponderRole")
    assert b"ResponderRole" in finding
    entries = await _first_refusal(settings, kafka_bootstrap, topics["alerts"], finding)
    assert not [b for k, b in entries if k == "step.intent" and b.get("actuator") == "aws.iam.revoke_sessions"]
    policies = await aws.call("iam", "list_role_policies", RoleName="ResponderRole")
    assert policies["PolicyNames"] == []


async def test_an_instance_arn_glob_protects_the_instance_a_finding_names_by_id(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir, monkeypatch
):
    """A protected instance ARN glob refuses, by a hard guard trip, isolating the instance a finding names by id."""
    ami = (await aws.call("ec2", "describe_images"))["Images"][0]["ImageId"]
    vpc = (await aws.call("ec2", "describe_vpcs"))["Vpcs"][0]["VpcId"]
    web = await aws.call("ec2", "create_security_group", GroupName=f"{unique}-web", Description="w", VpcId=vpc)
    run = await aws.call("ec2", "run_instances", ImageId=ami, MinCount=1, MaxCount=1, InstanceType="g5.xlarge",
                         SecurityGroupIds=[web["GroupId"]])
    instance = run["Instances"][0]["InstanceId"]
    monkeypatch.setenv("RESPONDER_PROTECTED_IDS", orjson.dumps([f"arn:aws:ec2:*:*:instance/{instance}"]).decode())
    settings = make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", runbooks_dir)
    example = EXAMPLE.parent / "compromised-inference-host.json"
    finding = example.read_bytes().replace(b"i-0d2c3a1b5e6f7a8b9", instance.encode())
    entries = await _first_refusal(settings, kafka_bootstrap, topics["alerts"], finding)
    assert not [b for k, b in entries if k == "step.intent" and str(b.get("actuator", "")).startswith("aws.ec2.")]
    described = await aws.call("ec2", "describe_instances", InstanceIds=[instance])
    groups = described["Reservations"][0]["Instances"][0]["SecurityGroups"]
    assert [g["GroupId"] for g in groups] == [web["GroupId"]]


async def test_a_protected_kms_alias_refuses_disabling_its_key_named_by_id(aws, tmp_path):
    """A protected KMS alias refuses, by a hard guard trip, disabling its key named by id; the key stays enabled."""
    key = (await aws.call("kms", "create_key", Description="break-glass"))["KeyMetadata"]["KeyId"]
    alias = f"alias/prod-key-{key[:8]}"
    await aws.call("kms", "create_alias", AliasName=alias, TargetKeyId=key)
    detail = await refused_and_escalated(aws, tmp_path, "aws.kms.disable_key", {"key_id": key}, alias)
    assert alias.casefold() in detail
    state = (await aws.call("kms", "describe_key", KeyId=key))["KeyMetadata"]["KeyState"]
    assert state == "Enabled"


async def test_an_endpoint_arn_refuses_isolating_the_endpoint_named_by_name(aws, tmp_path):
    """A protected SageMaker endpoint ARN refuses isolating the endpoint named by name; its roles get no deny policy."""
    from tests.integration.actuator_cases import _endpoint

    params = await _endpoint(aws)
    pattern = f"arn:aws:sagemaker:*:*:endpoint/{params['endpoint_name']}"
    await refused_and_escalated(aws, tmp_path, "aws.sagemaker.isolate_endpoint", params, pattern)
    policies = await aws.call("iam", "list_role_policies", RoleName="inference-gateway")
    assert policies["PolicyNames"] == []


async def test_a_partial_arn_of_a_name_ending_like_a_suffix_is_refused(aws, tmp_path):
    """A step naming a secret's partial ARN that ends like a suffix is refused by its `<name>-??????` pattern."""
    name = f"svc{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:6]}-backup"
    arn = (await aws.call("secretsmanager", "create_secret", Name=name, SecretString="keep"))["ARN"]
    partial = arn[:-7]  # `…:secret:svcNNNNNN-backup`: it looks like a complete ARN of `svcNNNNNN`
    assert (await aws.call("secretsmanager", "describe_secret", SecretId=partial))["Name"] == name
    await refused_and_escalated(aws, tmp_path, "aws.secretsmanager.rotate_secret", {"secret_id": partial},
                                f"arn:aws:secretsmanager:*:*:secret:{name}-??????")
    assert (await aws.call("secretsmanager", "get_secret_value", SecretId=name))["SecretString"] == "keep"


async def test_kms_aliases_that_cannot_be_read_refuse_the_step_and_page(aws, tmp_path):
    """With a protected KMS alias, a step on a key whose aliases cannot be read is refused, escalated and paged."""
    missing = "0b0b0b0b-1111-4222-8333-444444444444"
    detail = await refused_and_escalated(aws, tmp_path, "aws.kms.enable_key", {"key_id": missing}, "alias/prod-key")
    assert "could not be read" in detail
    assert missing in detail


@pytest.mark.parametrize("protect_by", ["path", "role_id"])
async def test_a_role_protected_by_path_glob_or_role_id_is_refused_when_named_by_name(aws, tmp_path, protect_by):
    """A role protected by path glob or RoleId is refused and paged when a quarantine names it by name only."""
    name = f"break-glass-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    role = (await aws.call("iam", "create_role", RoleName=name, Path="/admins/" if protect_by == "path" else "/",
                           AssumeRolePolicyDocument="{}"))["Role"]
    pattern = "arn:aws:iam::*:role/admins/*" if protect_by == "path" else role["RoleId"]
    detail = await refused_and_escalated(aws, tmp_path, "aws.iam.quarantine_principal",
                                         {"principal_type": "role", "principal_name": name}, pattern)
    assert pattern.casefold() in detail
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == []


async def test_a_role_protected_by_its_role_id_session_form_is_refused_when_named_by_name(aws, tmp_path):
    """A role protected by its `<RoleId>:*` session form is refused and paged when a quarantine names it by name."""
    name = f"session-role-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    role = (await aws.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}"))["Role"]
    pattern = f"{role['RoleId']}:*"
    detail = await refused_and_escalated(aws, tmp_path, "aws.iam.quarantine_principal",
                                         {"principal_type": "role", "principal_name": name}, pattern)
    assert f"matches protected id {pattern!r}" in detail
    assert (await aws.call("iam", "list_role_policies", RoleName=name))["PolicyNames"] == []


async def test_a_user_under_a_protected_path_keeps_its_key_when_named_by_name(aws, tmp_path):
    """A user under a protected `user/admins/*` path keeps its access key when a step names the user by name only."""
    name = f"ml-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    await aws.call("iam", "create_user", UserName=name, Path="/admins/")
    key = (await aws.call("iam", "create_access_key", UserName=name))["AccessKey"]["AccessKeyId"]
    await refused_and_escalated(aws, tmp_path, "aws.iam.deactivate_access_key",
                                {"user_name": name, "access_key_id": key}, "user/admins/*")
    keys = (await aws.call("iam", "list_access_keys", UserName=name))["AccessKeyMetadata"]
    assert [k["Status"] for k in keys] == ["Active"]


async def test_a_role_that_is_not_found_is_refused_while_a_role_id_is_protected(aws, tmp_path):
    """While a role id is protected, a step on a role IAM does not know is refused and paged as not found."""
    detail = await refused_and_escalated(aws, tmp_path, "aws.iam.revoke_sessions",
                                         {"principal_type": "role", "principal_name": "no-such-role"},
                                         "AROA3XFRBF535PLBIFPI4")
    assert "not found" in detail
    assert "no-such-role" in detail


class Overlapping:
    """Forwards to moto, holding each `iam.get_role` (a guard's read) until another is in flight, for at most 200
    turns of the loop (read one after another, never); `peak`: the most in flight at once."""

    def __init__(self, inner) -> None:
        self.inner, self.in_flight, self.peak = inner, 0, 0

    async def call(self, service: str, operation: str, **kwargs) -> dict:
        """The answer of moto, after a while with another read for company."""
        if (service, operation) != ("iam", "get_role"):
            return await self.inner.call(service, operation, **kwargs)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(200):
                if self.peak > 1:
                    break
                await asyncio.sleep(0)
            return await self.inner.call(service, operation, **kwargs)
        finally:
            self.in_flight -= 1


async def test_a_step_naming_several_roles_is_refused_when_one_is_protected_by_its_role_id(aws, tmp_path):
    """A step naming six roles, their ids read together, is refused when one's RoleId is protected, else it runs."""
    from responder.actuators.aws.sagemaker import policy_name
    from responder.engine.keptreads import KeptReads

    suffix = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]
    names = [f"gateway-{suffix}-{i}" for i in range(6)]
    ids = [(await aws.call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument="{}"))["Role"]["RoleId"]
           for name in names]
    other = await aws.call("iam", "create_role", RoleName=f"exec-{suffix}", AssumeRolePolicyDocument="{}")
    endpoint = f"scoring-{suffix}"
    await aws.call("sagemaker", "create_model", ModelName=endpoint, ExecutionRoleArn=other["Role"]["Arn"],
                   PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/scoring:1"})
    await aws.call("sagemaker", "create_endpoint_config", EndpointConfigName=endpoint, ProductionVariants=[
        {"VariantName": "main", "ModelName": endpoint, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    await aws.call("sagemaker", "create_endpoint", EndpointName=endpoint, EndpointConfigName=endpoint)
    params = {"endpoint_name": endpoint, "role_names": names}
    (tmp_path / "refused").mkdir()
    reads = Overlapping(aws)
    detail = await refused_and_escalated(reads, tmp_path / "refused", "aws.sagemaker.isolate_endpoint", params,
                                         ids[3])
    assert ids[3].casefold() in detail
    assert reads.peak > 1  # one after another: 1
    assert reads.peak <= KeptReads.CONCURRENCY
    assert [(await aws.call("iam", "list_role_policies", RoleName=n))["PolicyNames"] for n in names] == [[]] * 6

    (tmp_path / "allowed").mkdir()
    reads = Overlapping(aws)
    entries, _ = await one_protected_step(reads, tmp_path / "allowed", "aws.sagemaker.isolate_endpoint", params,
                                          other["Role"]["RoleId"])
    assert reads.peak > 1
    assert reads.peak <= KeptReads.CONCURRENCY
    assert not [b for k, b in entries if k == "guard.tripped"], entries
    assert [b["status"] for k, b in entries if k == "step.result"] == ["ok"], entries
    policies = [(await aws.call("iam", "list_role_policies", RoleName=n))["PolicyNames"] for n in names]
    assert policies == [[policy_name(endpoint)]] * 6
