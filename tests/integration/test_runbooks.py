"""The shipped runbook set, run through the engine against moto with its test event from runbooks/examples/."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.engine.undo import Undoer
from responder.errors import DecodeError, PermanentActuationError
from responder.models import RawRecord
from responder.normalise import normalise
from responder.pipeline import Pipeline
from responder.rules.matcher import Matcher
from tests.integration.actuator_cases import _function, _instance
from tests.integration.example_kit import (
    EXAMPLE_INSTANCE,
    EXAMPLE_KEY,
    EXAMPLES,
    LEAKED_KEY,
    ROOT,
    example_engine,
    example_user_key,
    inline_policy_names,
    key_inactive,
    leaked_example_key,
    user_with_key,
)

pytestmark = pytest.mark.integration
EXAMPLE_API_KEY = "a1b2c3d4e5"


@dataclass(frozen=True)
class Scenario:
    """Resources the example names, and what must hold in the cloud after the runbook ran."""

    setup: Callable[[Any], Awaitable[dict[str, str]]]
    contained: Callable[[Any, dict[str, str]], Awaitable[bool]]


async def _role(aws: Any) -> dict[str, str]:
    await aws.call("iam", "create_role", RoleName="inference-host-role", AssumeRolePolicyDocument="{}")
    return {}


async def _revoked(aws: Any, ids: dict[str, str]) -> bool:
    names = (await aws.call("iam", "list_role_policies", RoleName="inference-host-role"))["PolicyNames"]
    return names == ["responder-revoke-older-sessions"]


async def _key_off_and_sessions_revoked(aws: Any, ids: dict[str, str]) -> bool:
    [key] = (await aws.call("iam", "list_access_keys", UserName="ml-training"))["AccessKeyMetadata"]
    names = (await aws.call("iam", "list_user_policies", UserName="ml-training"))["PolicyNames"]
    return key["AccessKeyId"] == ids[EXAMPLE_KEY] and key["Status"] == "Inactive" and names == [
        "responder-revoke-older-sessions"]


async def _host(aws: Any) -> dict[str, str]:
    return {EXAMPLE_INSTANCE: (await _instance(aws))["instance_id"]}


async def _isolated_and_snapshotted(aws: Any, ids: dict[str, str]) -> bool:
    instance = ids[EXAMPLE_INSTANCE]
    enis = (await aws.call("ec2", "describe_network_interfaces",
                           Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]))["NetworkInterfaces"]
    snaps = (await aws.call("ec2", "describe_snapshots", OwnerIds=["self"],
                            Filters=[{"Name": "tag:responder:instance", "Values": [instance]}]))["Snapshots"]
    return bool(snaps) and all([g["GroupName"] for g in e["Groups"]] == ["responder-quarantine"] for e in enis)


async def _bucket(aws: Any) -> dict[str, str]:
    await aws.call("s3", "create_bucket", Bucket="acme-training-data-prod")
    return {}


async def _blocked(aws: Any, ids: dict[str, str]) -> bool:
    try:
        conf = await aws.call("s3", "get_public_access_block", Bucket="acme-training-data-prod")
    except PermanentActuationError:
        return False
    return all(conf["PublicAccessBlockConfiguration"].values())


async def _fn(aws: Any) -> dict[str, str]:
    await _function(aws)
    key = await aws.call("apigateway", "create_api_key", name="partner-key", enabled=True)
    return {EXAMPLE_API_KEY: key["id"]}


async def _throttled(aws: Any, ids: dict[str, str]) -> bool:
    """The function is throttled and the API key the alarm's ApiKeyId dimension names is disabled."""
    got = await aws.call("lambda", "get_function_concurrency", FunctionName="inference-proxy")
    key = await aws.call("apigateway", "get_api_key", apiKey=ids[EXAMPLE_API_KEY])
    return got.get("ReservedConcurrentExecutions") == 0 and key["enabled"] is False


async def _writer(aws: Any) -> dict[str, str]:
    await aws.call("s3", "create_bucket", Bucket="acme-training-data-prod")
    return await user_with_key(aws, "contractor-sync", "AKIAEXAMPLECONTRACT1")


async def _writer_quarantined(aws: Any, ids: dict[str, str]) -> bool:
    return await key_inactive(aws, "contractor-sync", ids["AKIAEXAMPLECONTRACT1"]) and \
        await inline_policy_names(aws, "contractor-sync") == ["responder-quarantine"]


async def _secret(aws: Any) -> dict[str, str]:
    await aws.call("secretsmanager", "create_secret", Name="prod/inference/db-password", SecretString="s3cr3t")
    return {}


async def _rotated(aws: Any, ids: dict[str, str]) -> bool:
    prev = await aws.call("secretsmanager", "get_secret_value", SecretId="prod/inference/db-password",
                          VersionStage="AWSPREVIOUS")
    return prev["SecretString"] == "s3cr3t"


async def _stopped_trail(aws: Any) -> dict[str, str]:
    await aws.call("s3", "create_bucket", Bucket="acme-cloudtrail-logs")
    await aws.call("cloudtrail", "create_trail", Name="management-events", S3BucketName="acme-cloudtrail-logs")
    await aws.call("cloudtrail", "stop_logging", Name="management-events")
    return await user_with_key(aws, "ci-deployer", "AKIAEXAMPLESTOPLOG01")


async def _logging_and_key_off(aws: Any, ids: dict[str, str]) -> bool:
    """Undo gives the key back but never stops the trail again, so containment is judged on the key."""
    status = await aws.call("cloudtrail", "get_trail_status", Name="management-events")
    return bool(status["IsLogging"]) and await key_inactive(aws, "ci-deployer", ids["AKIAEXAMPLESTOPLOG01"])


async def _backdoor(aws: Any) -> dict[str, str]:
    return await user_with_key(aws, "ml-training", "AKIAEXAMPLEBACKDOOR1")


async def _backdoor_off(aws: Any, ids: dict[str, str]) -> bool:
    return await key_inactive(aws, "ml-training", ids["AKIAEXAMPLEBACKDOOR1"])


async def _jacked(aws: Any) -> dict[str, str]:
    return await user_with_key(aws, "ml-training", "AKIAEXAMPLELLMJACK01")


async def _jacked_off(aws: Any, ids: dict[str, str]) -> bool:
    return await key_inactive(aws, "ml-training", ids["AKIAEXAMPLELLMJACK01"]) and \
        await inline_policy_names(aws, "ml-training") == ["responder-deny-bedrock"]


async def _leaked_off(aws: Any, ids: dict[str, str]) -> bool:
    return await key_inactive(aws, "ml-training", ids[LEAKED_KEY]) and \
        await inline_policy_names(aws, "ml-training") == ["responder-revoke-older-sessions"]


SCENARIOS = {
    "iam-credential-compromise": Scenario(example_user_key, _key_off_and_sessions_revoked),
    "credential-exfiltration": Scenario(_role, _revoked),
    "compromised-inference-host": Scenario(_host, _isolated_and_snapshotted),
    "training-data-bucket-public": Scenario(_bucket, _blocked),
    "model-extraction-probing": Scenario(_fn, _throttled),
    "anomalous-secret-reads": Scenario(_secret, _rotated),
    "falco-shell-in-inference-container": Scenario(_host, _isolated_and_snapshotted),
    "cloudtrail-logging-stopped": Scenario(_stopped_trail, _logging_and_key_off),
    "iam-backdoor-key": Scenario(_backdoor, _backdoor_off),
    "llmjacking": Scenario(_jacked, _jacked_off),
    "access-key-compromise": Scenario(leaked_example_key, _leaked_off),
    "unauthorized-training-data-write": Scenario(_writer, _writer_quarantined),
}


MODEL_RUNBOOKS = {"model-artifact-tampered", "model-unsigned-deployed", "model-drift-sustained"}  # test_model_runbooks
# no cloud change to check: test_notify_only_runbook_notifies_once
NOTIFY_ONLY = {"model-monitor-violation", "training-data-write-unnamed-principal", "llmjacking-unnamed-principal",
               "access-key-compromise-unnamed-principal", "anomalous-credential-use", "cloudtrail-logging-changed"}


def test_every_runbook_has_an_example():
    """Each shipped runbook has a test event, and a scenario here, in test_model_runbooks or the notify-only test."""
    ids = {rb.id for rb in load_runbooks(ROOT / "runbooks", registry)}
    assert ids - MODEL_RUNBOOKS - NOTIFY_ONLY == set(SCENARIOS)
    assert ids == {p.stem for p in EXAMPLES.glob("*.json")}


def _decode(raw: bytes) -> list[Any]:
    try:
        return normalise(raw)
    except DecodeError as exc:
        pytest.skip(f"no decoder for this format on this branch yet (issue 3): {exc}")


@pytest.mark.parametrize("runbook", sorted(SCENARIOS))
async def test_runbook_contains_with_its_example(runbook, aws):
    """The example matches only its runbook; every step succeeds or is skipped by `when`; the cloud is contained."""
    scenario = SCENARIOS[runbook]
    ids = await scenario.setup(aws)
    text = (EXAMPLES / f"{runbook}.json").read_text()
    for old, new in ids.items():
        text = text.replace(old, new)
    raw = text.encode()
    books = load_runbooks(ROOT / "runbooks", registry)
    events = _decode(raw)
    assert [m.runbook.id for e in events for m in Matcher(books).match(e)] == [runbook]
    engine, publisher = example_engine(aws)
    [incident] = await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    results = [e.body for e in engine.recorder.entries() if e.kind == "step.result"]
    assert [r["status"] for r in results] == ["ok"] * len(results)
    assert await scenario.contained(aws, ids)
    assert [(topic, body["incident"]) for topic, body in publisher.sent] == [("responder.notifications", incident.id)]
    outcomes = await Undoer(engine.recorder, registry, aws).undo(incident.id)
    assert [o for o in outcomes if o["status"] == "failed"] == []
    assert not await scenario.contained(aws, ids)


@pytest.mark.parametrize("runbook", sorted(NOTIFY_ONLY))
async def test_notify_only_runbook_notifies_once(runbook, aws):
    """A notify-only runbook's example matches only it and sends exactly one notification for its incident."""
    raw = (EXAMPLES / f"{runbook}.json").read_bytes()
    books = load_runbooks(ROOT / "runbooks", registry)
    assert {m.runbook.id for e in _decode(raw) for m in Matcher(books).match(e)} == {runbook}
    engine, publisher = example_engine(aws)
    [incident] = {i.id for i in await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))}
    assert [(topic, body["incident"]) for topic, body in publisher.sent] == [("responder.notifications", incident)]


async def test_service_runs_a_runbook_and_notifies_through_its_own_producer(kafka_bootstrap, aws, topics, unique,
                                                                            tmp_path):
    """`responder run` wiring: a mining finding on Kafka isolates the host and the notification lands on the topic."""
    from responder.ingest.kafka import ensure_topics, publish
    from responder.service import Service
    from tests.integration.harness import make_settings, notifications, running, wait_for

    ids = await _host(aws)
    raw = (EXAMPLES / "compromised-inference-host.json").read_text().replace(EXAMPLE_INSTANCE, ids[EXAMPLE_INSTANCE])
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks"))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [raw.encode()])
        await wait_for(lambda: len(service.engine.state.results()) == 3, timeout=60)
    assert await _isolated_and_snapshotted(aws, ids)
    found = await notifications(kafka_bootstrap, lambda doc: doc["fields"].get("instance") == ids[EXAMPLE_INSTANCE])
    assert [f["title"] for f in found] == ["inference host isolated and snapshotted"]


def _matched(raw: bytes) -> list[str]:
    books = load_runbooks(ROOT / "runbooks", registry)
    return [m.runbook.id for e in _decode(raw) for m in Matcher(books).match(e)]


def test_failed_secret_read_does_not_rotate():
    """A GetSecretValue that CloudTrail records as failed (errorCode set) matches no runbook."""
    doc = orjson.loads((EXAMPLES / "anomalous-secret-reads.json").read_bytes())
    doc["errorCode"] = "AccessDenied"
    assert _matched(orjson.dumps(doc)) == []


@pytest.mark.parametrize(("runbook", "name", "benign"), [
    ("training-data-bucket-public", "acme-training-data-prod", "public-dataset-releases"),
    ("unauthorized-training-data-write", "acme-training-data-prod", "public-dataset-releases"),
    ("falco-shell-in-inference-container", "inference/vllm-server", "platform/log-observing-agent"),
    ("falco-shell-in-inference-container", "inference/vllm-server", "backup/preserving"),
])
def test_benign_names_do_not_match(runbook, name, benign):
    """The bucket/image regexes are anchored to naming conventions: a name merely containing a keyword is ignored."""
    raw = (EXAMPLES / f"{runbook}.json").read_text()
    assert name in raw
    assert _matched(raw.replace(name, benign).encode()) == []


async def test_failed_key_deactivation_escalates_and_is_counted(aws):
    """A key deactivation that fails in moto (no such user) runs the on_failure notify, recorded, and counts it."""
    from responder.metrics import Metrics, TimelineMetrics

    raw = (EXAMPLES / "iam-credential-compromise.json").read_bytes()  # the user does not exist in moto
    books = load_runbooks(ROOT / "runbooks", registry)
    (engine, publisher), metrics = example_engine(aws), Metrics()
    engine.recorder.sinks.append(TimelineMetrics(metrics, runbook_of=lambda i: engine.state.incidents.by_id[i].runbook))
    [incident] = await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    entries = list(engine.recorder.entries())
    results = {e.body["step"]: e.body for e in entries if e.kind == "step.result"}
    assert results["deactivate-key"]["status"] == "failed"
    assert results["escalate-oncall.deactivate-key"]["status"] == "ok"
    assert "revoke-sessions" not in results  # the runbook stopped at the failure, and still told a human
    [escalated] = [e.body for e in entries if e.kind == "step.escalated"]
    assert escalated["step"] == "deactivate-key"
    assert escalated["escalation"] == ["escalate-oncall.deactivate-key"]
    [(topic, body)] = publisher.sent
    assert topic == "responder.notifications"
    assert body["incident"] == incident.id
    assert body["fields"]["step"] == "deactivate-key"
    assert body["fields"]["actuator"] == "aws.iam.deactivate_access_key"
    assert body["fields"]["error"] == results["deactivate-key"]["error"]
    assert metrics.value("responder_step_failures_total", runbook="iam-credential-compromise",
                         actuator="aws.iam.deactivate_access_key") == 1


def test_allowed_or_failed_training_data_writes_match_nothing():
    """A PutObject by the training pipeline's role, or one S3 refused, is not an unauthorized write."""
    doc = orjson.loads((EXAMPLES / "unauthorized-training-data-write.json").read_bytes())
    pipeline = {**doc, "detail": {**doc["detail"], "userIdentity": {
        "type": "AssumedRole", "accessKeyId": "ASIAEXAMPLEPIPELINE1",
        "arn": "arn:aws:sts::123456789012:assumed-role/training-pipeline/job-7",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "training-pipeline",
                                             "arn": "arn:aws:iam::123456789012:role/training-pipeline"}}}}}
    other_role = copy.deepcopy(pipeline)
    other_role["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] = "notebook-role"
    other_role["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = \
        "arn:aws:iam::123456789012:role/notebook-role"
    refused = {**doc, "detail": {**doc["detail"], "errorCode": "AccessDenied"}}
    assert _matched(orjson.dumps(pipeline)) == []
    assert _matched(orjson.dumps(refused)) == []
    assert _matched(orjson.dumps(other_role)) == ["unauthorized-training-data-write"]


async def test_unknown_writer_that_cannot_be_quarantined_escalates(aws):
    """When the writer's quarantine fails (no such user in moto), on_failure pages on-call and the owners still hear."""
    raw = (EXAMPLES / "unauthorized-training-data-write.json").read_bytes()
    books = load_runbooks(ROOT / "runbooks", registry)
    engine, publisher = example_engine(aws)
    await Pipeline(books, engine).handle(RawRecord(topic="alerts", value=raw))
    await engine.recorder.flush()
    results = {e.body["step"]: e.body["status"] for e in engine.recorder.entries() if e.kind == "step.result"}
    assert results["quarantine-user"] == "failed"
    assert results["escalate-oncall.quarantine-user"] == "ok"
    assert results["notify-owners"] == "ok"
    titles = [body["title"] for _, body in publisher.sent]
    assert "containment failed: quarantine-user (aws.iam.quarantine_principal)" in titles
