"""Through the real broker and moto: Security Hub's `Findings Imported V2` events (OCSF) are answered as GuardDuty's
own findings and Security Hub CSPM's ASFF control findings are, by the shipped runbooks, and none is dead-lettered."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators.aws.session import AwsSession
from responder.ingest.kafka import ensure_topics, publish
from responder.service import Service
from tests.findings import envelope_bytes, guardduty_finding, rescore_ocsf, retype_ocsf
from tests.integration.harness import make_settings, read_all, running, wait_for
from tests.source_kit import SHAPES, asff_event, v2_finding

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/events/securityhub_v2_guardduty.json"  # AWS's envelope, ocsf/examples' finding
SEVERITY_WORDS = {2: "Low", 3: "Medium", 4: "High"}  # OCSF severity_id -> the word Security Lake maps it with


def _v2(finding_id: str, asff_type: str, severity_id: int, key: str, user: str) -> bytes:
    """The fixture's V2 event, its GuardDuty finding retyped, rescored and naming an IAM user's long-term key."""
    doc: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    finding = copy.deepcopy(doc["detail"]["findings"][0])
    finding["finding_info"].update(uid=f"arn:aws:guardduty:us-east-2:111111111111:detector/d/finding/{finding_id}",
                                   title=asff_type)
    retype_ocsf(finding, [asff_type])  # the provider's copy in `unmapped` too: it types and scores GuardDuty's own
    rescore_ocsf(finding, severity_id, SEVERITY_WORDS[severity_id])
    finding["resources"][0]["uid"] = f"AWS::IAM::AccessKey:{key}"
    finding["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {
        "PrincipalId": "AIDAEXAMPLEPRINCIPAL9", "PrincipalName": user, "PrincipalType": "IAMUser"}}).decode()
    doc["detail"]["findings"] = [finding]
    return orjson.dumps(doc)


def _as_security_hub_writes(record: bytes, gd_type: str) -> bytes:
    """`record` as Security Hub's own V2 findings spell it: the type in GuardDuty's form and the key as an
    `AWS::IAM::AccessKey` resource (bare key id, principal in `data`), as published V2 samples show."""
    doc = orjson.loads(record)
    finding = doc["detail"]["findings"][0]
    retype_ocsf(finding, [gd_type])
    old = orjson.loads(finding["resources"][0]["data"])["AwsIamAccessKey"]
    key = finding["resources"][0]["uid"].removeprefix("AWS::IAM::AccessKey:")
    finding["resources"] = [{"type": "AWS::IAM::AccessKey", "uid": key, "name": old["PrincipalName"], "data": {
        "access_key_id": key, "principal_id": old["PrincipalId"], "user_name": old["PrincipalName"],
        "user_type": old["PrincipalType"]}}]
    return orjson.dumps(doc)


def _settled(service: Service) -> bool:
    """All three records read and both matched runbooks' steps done (or something dead-lettered)."""
    done = service.pipeline.counters.records >= 3 and len(service.engine.state.results()) >= 4
    return done or bool(service.deadlettered)


async def _key(aws: AwsSession, user: str) -> str:
    await aws.call("iam", "create_user", UserName=user)
    return str((await aws.call("iam", "create_access_key", UserName=user))["AccessKey"]["AccessKeyId"])


async def _status(aws: AwsSession, user: str) -> list[str]:
    listed = await aws.call("iam", "list_access_keys", UserName=user)
    return [k["Status"] for k in listed["AccessKeyMetadata"]]


def _s3_8_on(bucket: str, compliance: dict[str, Any] | None = None, **fields: Any) -> bytes:
    """Security Hub CSPM's failed S3.8 check on `bucket` in a V2 event (`compliance` merged, finding `fields` set)."""
    finding = v2_finding("S3.8")
    finding["finding_info"]["uid"] += f"-{bucket}"
    finding["compliance"].update(compliance or {})
    finding.update(fields)
    finding["resources"] = [{"type": "AWS::S3::Bucket", "uid": bucket, "uid_alt": f"arn:aws:s3:::{bucket}",
                             "region": "us-east-2"}]
    doc: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    doc["detail"]["findings"] = [finding]
    return orjson.dumps(doc)


async def _only_blocked(service: Service, aws: AwsSession, records: list[bytes], spared: list[str], live: str,
                        bootstrap: str, topic: str) -> None:
    """`records` through `service`: nothing dead-lettered, nothing run on the `spared` buckets, `live` blocked."""
    async with running(service):
        await publish(bootstrap, topic, records)
        await wait_for(lambda: (service.pipeline.counters.records >= len(records)
                                and len(service.engine.state.results()) >= 2) or bool(service.deadlettered),
                       timeout=60)
    assert service.deadlettered == {}
    assert [i.runbook for i in service.engine.state.incidents.by_id.values()] == ["training-data-bucket-public"]
    assert not [r for r in service.engine.state.results() if any(b in str(r) for b in spared)]
    conf = await aws.call("s3", "get_public_access_block", Bucket=live)
    assert all(conf["PublicAccessBlockConfiguration"].values())


async def test_v2_findings_are_contained_or_paged_as_guardduty_s_own(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """Security Hub V2 GuardDuty findings deactivate a compromised key or page; an unclassified one matches nothing."""
    leaked, anomalous = await _key(aws, "ml-training"), await _key(aws, "ml-serving")
    anomaly = orjson.loads(_v2("anomaly", "TTPs/Credential Access/CredentialAccess:IAMUser-AnomalousBehavior", 3,
                               anomalous, "ml-serving"))
    anomaly["detail"]["findings"][0]["finding_info"]["attacks"] = [{"technique": {"uid": "T1078.004"}}]
    leak = _v2("leak", "TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller", 4, leaked, "ml-training")
    records = [_as_security_hub_writes(leak, "UnauthorizedAccess:IAMUser/MaliciousIPCaller"),
               _as_security_hub_writes(orjson.dumps(anomaly), "CredentialAccess:IAMUser/AnomalousBehavior"),
               _v2("other", "Software and Configuration Checks/Unmapped", 2, anomalous, "ml-serving")]
    await ensure_topics(kafka_bootstrap, ["responder.notifications"], partitions=1)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks"))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], records)
        await wait_for(lambda: _settled(service), timeout=60)
    assert service.deadlettered == {}
    assert await _status(aws, "ml-training") == ["Inactive"]
    assert await _status(aws, "ml-serving") == ["Active"]
    runbooks = sorted({i.runbook for i in service.engine.state.incidents.by_id.values()})
    assert runbooks == ["access-key-compromise", "anomalous-credential-use"]
    assert not [r for r in service.engine.state.results() if r.actuator.startswith("aws.") and anomalous in str(r)]


async def test_a_v2_control_finding_on_a_training_bucket_blocks_public_access(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """A failed S3.8 control in a Security Hub V2 event on a training bucket turns Block Public Access back on."""
    bucket = f"{unique}-training-data-prod"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    finding = v2_finding("S3.8")
    finding["resources"] = [{"type": "AWS::S3::Bucket", "uid": bucket, "uid_alt": f"arn:aws:s3:::{bucket}",
                             "region": "us-east-2"}]
    doc: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    doc["detail"]["findings"] = [finding]
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks"))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [orjson.dumps(doc)])
        await wait_for(lambda: len(service.engine.state.results()) >= 2 or bool(service.deadlettered), timeout=60)
    assert service.deadlettered == {}
    assert [i.runbook for i in service.engine.state.incidents.by_id.values()] == ["training-data-bucket-public"]
    conf = await aws.call("s3", "get_public_access_block", Bucket=bucket)
    assert all(conf["PublicAccessBlockConfiguration"].values())


async def test_a_passed_v2_control_check_leaves_its_bucket_alone(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """A passed S3.8 check in a V2 event runs nothing on its bucket, while a failed one beside it blocks access."""
    passed, failed = f"{unique}-training-data-dev", f"{unique}-training-data-prod"
    for bucket in (passed, failed):
        await aws.call("s3", "create_bucket", Bucket=bucket)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks"))
    await _only_blocked(service, aws, [_s3_8_on(passed, {"status": "Pass", "status_id": 1}), _s3_8_on(failed)],
                        [passed], failed, kafka_bootstrap, topics["alerts"])


@pytest.mark.parametrize("lane", ["asff", "v2"])
async def test_one_bad_finding_is_deadlettered_and_its_neighbour_still_blocks_public_access(
        lane: str, kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """In a V2 event of two failed S3.8 checks, the first blocks public access and the record is dead-lettered once."""
    build, spoil, what = SHAPES[lane]
    doc = spoil(build(2), 1)
    if lane == "asff":
        doc["detail"]["findings"][0]["Resources"][0]["Id"] = f"arn:aws:s3:::{unique}-training-data-prod"
    else:
        doc["detail"]["findings"][0]["resources"][0].update(uid=f"{unique}-training-data-prod",
                                                            uid_alt=f"arn:aws:s3:::{unique}-training-data-prod")
    bucket = f"{unique}-training-data-prod"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks"))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [orjson.dumps(doc)])
        await wait_for(lambda: len(service.engine.state.results()) >= 2 and bool(service.deadlettered), timeout=60)
    assert service.deadlettered == {"validation": 1}
    [dead] = await read_all(kafka_bootstrap, topics["deadletter"], 1)
    headers = dict(dead.headers)
    assert headers["dlq.detail"].decode().startswith(f"{what} [1] of 2: ")
    assert dead.value == orjson.dumps(doc)
    conf = await aws.call("s3", "get_public_access_block", Bucket=bucket)
    assert all(conf["PublicAccessBlockConfiguration"].values())


async def test_retired_control_checks_leave_their_buckets_alone(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """An archived or closed failed S3.8 check runs nothing on its bucket, while a live one beside it blocks access."""
    archived, closed, live = (f"{unique}-training-data-{env}" for env in ("dev", "test", "prod"))
    asff = asff_event("S3.8")
    asff["detail"]["findings"][0].update(RecordState="ARCHIVED", Resources=[
        {"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::{archived}", "Region": "us-east-2"}])
    for bucket in (archived, closed, live):
        await aws.call("s3", "create_bucket", Bucket=bucket)
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks"))
    records = [orjson.dumps(asff), _s3_8_on(closed, activity_id=3, activity_name="Close"), _s3_8_on(live)]
    await _only_blocked(service, aws, records, [archived, closed], live, kafka_bootstrap, topics["alerts"])


async def test_a_v2_event_on_a_topic_pinned_to_ocsf_blocks_public_access(
        kafka_bootstrap: str, aws: AwsSession, topics: dict[str, str], unique: str, tmp_path: Path) -> None:
    """On a topic pinned to `ocsf`, a V2 S3.8 event blocks public access; a GuardDuty finding is dead-lettered."""
    bucket = f"{unique}-training-data-prod"
    await aws.call("s3", "create_bucket", Bucket=bucket)
    records = [_s3_8_on(bucket), envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001"))]
    service = Service(make_settings(kafka_bootstrap, aws, topics, unique, tmp_path / "t.jsonl", ROOT / "runbooks",
                                    topic_formats={topics["alerts"]: "ocsf"}))
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], records)
        await wait_for(lambda: len(service.engine.state.results()) >= 2 and bool(service.deadlettered), timeout=60)
    assert service.deadlettered == {"validation": 1}
    assert [i.runbook for i in service.engine.state.incidents.by_id.values()] == ["training-data-bucket-public"]
    conf = await aws.call("s3", "get_public_access_block", Bucket=bucket)
    assert all(conf["PublicAccessBlockConfiguration"].values())
