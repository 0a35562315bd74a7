"""The shipped runbooks and example events as each source sends them, for the decoders' and the matcher's tests:
Security Hub (ASFF and V2) control findings, GuardDuty ML anomalies as every lane reports them, a Datadog signal, a
SageMaker monitoring report, the prefilter's checks against a full decode, and an engine upgraded across a deploy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from responder.actuators.base import ActuationContext
from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.engine.approvals import MemoryPublisher
from responder.errors import EventRejected
from responder.models import RawRecord
from responder.models.event import Event
from responder.models.runbook import Runbook
from responder.normalise import decode_doc, guardduty, guardduty_fast, head, keyed
from responder.pipeline import Pipeline
from responder.rules.matcher import ACCEPTED, Matcher
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.findings import rescore_ocsf, retype_ocsf

ROOT = Path(__file__).resolve().parents[1]  # the repository
FIXTURE = ROOT / "tests/fixtures/events/securityhub_v2_guardduty.json"
ACCOUNT = "111122223333"
SECURITYHUB_V2 = "arn:aws:securityhub:us-east-2::productv2/aws/securityhub"
CONTROL_BUCKET = "acme-training-data-prod"
# control → (ASFF resource, V2 resource, the shipped runbooks it reaches)
CONTROLS: dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]] = {
    "S3.8": ({"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::{CONTROL_BUCKET}", "Region": "us-east-2"},
             {"type": "AWS::S3::Bucket", "uid": CONTROL_BUCKET, "uid_alt": f"arn:aws:s3:::{CONTROL_BUCKET}",
              "region": "us-east-2"},
             ["training-data-bucket-public"]),
    "CloudTrail.1": ({"Type": "AwsAccount", "Id": f"AWS::::Account:{ACCOUNT}", "Region": "us-east-2"},
                     {"type": "AWS::::Account", "uid": ACCOUNT, "region": "us-east-2"},
                     ["cloudtrail-logging-stopped"]),
}
_PIPELINE = Pipeline([], Engine(Recorder(MemoryStore()), registry, FakeIam()))
ANOMALIES = {"CredentialAccess:IAMUser/AnomalousBehavior": "Credential Access",
             "InitialAccess:IAMUser/AnomalousBehavior": "Initial Access",
             "DefenseEvasion:IAMUser/AnomalousBehavior": "Defense Evasion",
             "Persistence:IAMUser/AnomalousBehavior": "Persistence",
             "PrivilegeEscalation:IAMUser/AnomalousBehavior": "Privilege Escalation",
             "Discovery:IAMUser/AnomalousBehavior": "Discovery",
             "Exfiltration:IAMUser/AnomalousBehavior": "Data Exfiltration",
             "Impact:IAMUser/AnomalousBehavior": "Data Destruction"}
ANOMALY_KEY = "AKIAEXAMPLEKEYID0001"
ENVS = ("prod", "dev", "test")
REPORT: dict[str, Any] = {
    "EndpointName": "fraud-scorer-prod", "MonitoringScheduleName": "fraud-dq", "AccountId": "111122223333",
    "violations": [{"feature_name": "amount", "constraint_check_type": "baseline_drift_check",
                    "description": "Baseline drift distance exceeds threshold"}]}
DATADOG = ROOT / "runbooks" / "examples" / "by-source" / "training-data-bucket-public.datadog.json"


def v2_event(*findings: dict[str, Any]) -> dict[str, Any]:
    """The fixture's envelope around `findings` (the fixture's own finding when none)."""
    doc: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    if findings:
        doc["detail"]["findings"] = [copy.deepcopy(f) for f in findings]
    return doc


def asff_event(control: str) -> dict[str, Any]:
    """Security Hub CSPM's failed control finding in a `Security Hub Findings - Imported` event."""
    finding = {"SchemaVersion": "2018-10-08", "Id": f"arn:aws:securityhub:us-east-2:{ACCOUNT}:security-control/"
               f"{control}/finding/f-1", "ProductArn": "arn:aws:securityhub:us-east-2::product/aws/securityhub",
               "GeneratorId": f"security-control/{control}", "AwsAccountId": ACCOUNT, "Region": "us-east-2",
               "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
               "Title": f"control {control}", "Severity": {"Label": "HIGH", "Normalized": 70},
               "UpdatedAt": "2026-11-25T11:00:00Z", "Compliance": {"Status": "FAILED", "SecurityControlId": control},
               "Resources": [CONTROLS[control][0]]}
    return {"version": "0", "id": "sh-imported", "detail-type": "Security Hub Findings - Imported",
            "source": "aws.securityhub", "account": ACCOUNT, "time": "2026-11-25T11:00:00Z", "region": "us-east-2",
            "resources": [finding["Id"]], "detail": {"findings": [finding]}}


def v2_finding(control: str, product: str = SECURITYHUB_V2) -> dict[str, Any]:
    """The same control's failed finding as Security Hub writes it in a V2 event (an OCSF Compliance Finding)."""
    return {"class_uid": 2003, "class_name": "Compliance Finding", "activity_id": 1, "severity_id": 4,
            "severity": "High", "status": "New", "time_dt": "2026-11-25T11:00:00Z",
            "cloud": {"account": {"uid": ACCOUNT}, "provider": "AWS", "region": "us-east-2"},
            "compliance": {"control": control, "status": "Fail", "status_id": 3,
                           "standards": ["standards/aws-foundational-security-best-practices/v/1.0.0"]},
            "finding_info": {"uid": f"arn:aws:securityhub:us-east-2:{ACCOUNT}:security-control/{control}/finding/f-1",
                             "title": f"control {control}", "analytic": {"name": f"securityhub-{control.lower()}",
                                                                        "type": "Rule", "type_id": 1},
                             "types": ["Software and Configuration Checks/Industry and Regulatory Standards",
                                       "Posture Management"]},
            "metadata": {"product": {"name": "Security Hub", "vendor_name": "AWS", "uid": product},
                         "version": "1.6.0", "uid": "0123abcd"},
            "resources": [copy.deepcopy(CONTROLS[control][1])]}


def seen(event: Event, matcher: Matcher) -> tuple[Any, ...]:
    """What decides the response: the category, the matched runbooks, the bucket."""
    bucket = event.first("bucket")
    return (event.threat and event.threat.category, sorted(m.runbook.id for m in matcher.match(event)),
            bucket and bucket.id)


def notify_runbook(trigger: dict[str, Any], rid: str = "gen") -> Runbook:
    """A runbook `rid` triggered by `trigger` whose one step logs a message."""
    return Runbook.model_validate({"id": rid, "trigger": trigger,
                                   "steps": [{"id": "s", "actuator": "notify.log", "with": {"message": "m"}}]})


def _full(doc: Any) -> list[Event] | None:
    try:
        return decode_doc(doc)
    except EventRejected:
        return None


def sound(matcher: Matcher, doc: Any) -> bool:
    """Whether the head (or the keyed head) ruled the document out; asserts that the full decode then matches
    nothing, and that the pipeline's verdict (keyed head first, remembered per key) is the same."""
    partial, by_key = head(doc), keyed(doc)
    ruled = partial is not None and matcher.rejects(*partial)
    ruled_by_key = by_key is not None and isinstance(matcher.verdict(*by_key), Event)
    _PIPELINE.matcher = matcher
    assert (_PIPELINE._ruled_out(doc, None) is not None) == (ruled or ruled_by_key)
    if by_key is not None and matcher.verdict(*by_key) is ACCEPTED:  # the whole head is then not built: it could
        assert not ruled  # not have ruled the document out, and the full decode, when it reads, matches
        events = _full(doc)
        assert events is None or [m for e in events for m in matcher.match(e)]
    if not (ruled or ruled_by_key):
        return False
    events = _full(doc)
    if events is not None:
        assert [m for e in events for m in matcher.match(e)] == []
    return True


def _typed(value: Any) -> Any:
    """A value with the Python type of every leaf, so that 1, 1.0 and True differ (the operators tell them apart)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_typed(v) for v in value]
    return type(value), value


def _fields(event: Event, names: frozenset[str]) -> dict[str, Any]:
    return {name: _typed(event.model_dump(include={name}).get(name)) for name in sorted(names)}


def head_equals_full(doc: Any) -> None:
    """Assert that the head (and the keyed head) of `doc` reads its fields as the full decode does."""
    partial, by_key, events = head(doc), keyed(doc), _full(doc)
    if events is None:
        return
    if partial is not None:
        event, fields = partial
        assert len(events) == 1
        assert _fields(event, fields) == _fields(events[0], fields)
    if by_key is not None:
        build, key, fields = by_key
        try:
            event = build(key)
        except Exception:  # noqa: BLE001 - a key it cannot build is never ruled out (test_a_key_that_cannot_build…)
            return
        assert len(events) == 1
        assert _fields(event, fields) == _fields(events[0], fields)


def principal_of(event: Event) -> tuple[Any, ...]:
    """The key, its user name, type and credential, and the role an event names."""
    key, role = event.first("access_key"), event.first("iam_role")
    assert key is not None
    return (key.id, key.attributes.get("user_name"), key.attributes.get("user_type"),
            key.attributes.get("credential"), role and role.id)


def _ocsf_guardduty() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((ROOT / "runbooks/examples/by-source/cloudtrail-logging-stopped.ocsf.json")
                                       .read_bytes())
    return doc


def anomaly_copies(gd_type: str) -> dict[str, Event]:
    """One GuardDuty ML anomaly finding on an IAM user's AKIA key, as each lane and each source reports it."""
    native = orjson.loads((ROOT / "runbooks/examples/iam-credential-compromise.json").read_bytes())
    native.update(type=gd_type, severity=5)
    fast, general = guardduty_fast.event(native, None), guardduty.finding_to_event(native, None)
    assert fast is not None  # the fast lane took it
    asff = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    purpose, _, family = gd_type.partition("/")
    asff_type = f"TTPs/{ANOMALIES[gd_type]}/{purpose}-{family}"
    asff["Types"] = asff["FindingProviderFields"]["Types"] = [asff_type]
    asff["Severity"] = {"Label": "MEDIUM", "Normalized": 40}
    asff["FindingProviderFields"]["Severity"] = {"Label": "MEDIUM", "Original": "5"}
    asff["Resources"][0]["Id"] = f"AWS::IAM::AccessKey:{ANOMALY_KEY}"
    asff["Resources"][0]["Details"]["AwsIamAccessKey"]["PrincipalName"] = "ml-training"
    ocsf = _ocsf_guardduty()
    retype_ocsf(ocsf, [asff_type])
    rescore_ocsf(ocsf, 3, "Medium")
    ocsf["resources"][0]["data"] = orjson.dumps({"AwsIamAccessKey": {
        "PrincipalId": "AIDAEXAMPLEPRINCIPAL2", "PrincipalName": "ml-training", "PrincipalType": "IAMUser"}}).decode()
    ocsf["resources"][0]["uid"] = f"AWS::IAM::AccessKey:{ANOMALY_KEY}"
    [sh_event], [ocsf_event] = decode_doc(asff), decode_doc(ocsf)
    return {"guardduty-fast": fast, "guardduty-general": general, "securityhub": sh_event, "ocsf": ocsf_event}


def _asff_findings(n: int) -> dict[str, Any]:
    """A `Security Hub Findings - Imported` event of `n` failed S3.8 checks, each on its own bucket."""
    doc = asff_event("S3.8")
    one = doc["detail"]["findings"][0]
    doc["detail"]["findings"] = []
    for i in range(n):
        f = copy.deepcopy(one)
        f["Id"] += f"-{i}"
        f["Resources"][0]["Id"] = f"arn:aws:s3:::acme-training-data-{ENVS[i]}"
        doc["detail"]["findings"].append(f)
    return doc


def _v2_findings(n: int) -> dict[str, Any]:
    """A `Findings Imported V2` event of `n` failed S3.8 checks, each on its own bucket."""
    findings = []
    for i in range(n):
        f = v2_finding("S3.8")
        f["finding_info"]["uid"] += f"-{i}"
        f["resources"] = [{"type": "AWS::S3::Bucket", "uid": f"acme-training-data-{ENVS[i]}", "region": "us-east-2",
                           "uid_alt": f"arn:aws:s3:::acme-training-data-{ENVS[i]}"}]
        findings.append(f)
    return v2_event(*findings)


def _spoil_asff(doc: dict[str, Any], n: int) -> dict[str, Any]:
    del doc["detail"]["findings"][n]["Severity"]
    return doc


def _spoil_v2(doc: dict[str, Any], n: int) -> dict[str, Any]:
    doc["detail"]["findings"][n]["class_uid"] = 9999
    return doc


@cache
def _example() -> bytes:
    return DATADOG.read_bytes()


def datadog_signal(signal_id: str, bucket: str = "acme-training-data", account: str | None = None) -> dict[str, Any]:
    """The shipped Datadog example as signal `signal_id` about `bucket`, naming `account` (none by default)."""
    doc: dict[str, Any] = copy.deepcopy(orjson.loads(_example()))
    doc.pop("account", None)
    doc["detail"]["tags"] = [t for t in doc["detail"]["tags"] if not t.startswith("account:")]
    if account is not None:
        doc["account"] = account
    signal = doc["detail"]["meta"]["signal"]
    signal["id"] = signal_id
    signal["rule"]["group_by_fields"] = {"bucket_name": bucket}
    return doc


async def upgraded(runbook: str, first: bytes, second: bytes, iam: FakeIam,
                   meanwhile: Callable[[], None] = lambda: None) -> tuple[MemoryPublisher, Engine]:
    """`first` handled with `runbook` at version 1, then (after `meanwhile`) `second` by a restarted engine with the
    shipped version 2 (a deploy); the publisher and the second engine."""
    shipped = load_runbooks(ROOT / "runbooks", registry)
    old: list[Runbook] = [rb.model_copy(update={"version": 1}) if rb.id == runbook else rb for rb in shipped]
    assert [rb.version for rb in shipped if rb.id == runbook] == [2]
    publisher, store = MemoryPublisher(), MemoryStore()
    for runbooks, raw in ((old, first), (shipped, second)):
        engine = Engine(Recorder(store), registry, iam, context=ActuationContext(aws=iam, publisher=publisher))
        engine.recover()
        engine.use_runbooks(runbooks)
        await Pipeline(runbooks, engine).handle(RawRecord(topic="alerts", value=raw))
        engine.recorder.flush_sync()
        meanwhile()
    return publisher, engine


SHAPES = {"asff": (_asff_findings, _spoil_asff, "securityhub finding"),
          "v2": (_v2_findings, _spoil_v2, "securityhub.v2 finding")}
