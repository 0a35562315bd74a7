"""Every decoder on the project's own fixtures (tests/fixtures/events), including the formats' traps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from responder.errors import NotJson, TooLarge, UnknownShape, ValidationFailed
from responder.normalise import decode_doc, formats, normalise, parse_documents
from responder.normalise.fields import parse_time, severity_from_label, valid_ip

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"

# file → every event it yields: (source, type, score, incident key, [(kind, id), ...])
EXPECTED: dict[str, list[tuple[str, str, float, str, list[tuple[str, str]]]]] = {
    "alertmanager_resolved.json": [
        ("alertmanager", "ModelLatencyHigh", 9.5, "-:pod:scorer-7d9f",
         [("pod", "scorer-7d9f"), ("model", "fraud-scorer")]),
    ],
    "cloudtrail_eventbridge.json": [
        ("cloudtrail", "iam.amazonaws.com/AttachUserPolicy", 7.5, "111122223333:access_key:AKIAEXAMPLEKEY000004",
         [("access_key", "AKIAEXAMPLEKEY000004"), ("iam_user", "mallory"), ("iam_user", "backdoor"), ("ip", "198.51.100.4")]),  # noqa: E501
    ],
    "cloudtrail_records_invalid_ip.json": [
        ("cloudtrail", "secretsmanager.amazonaws.com/GetSecretValue", 2.0, "111122223333:access_key:ASIAEXAMPLEKEY000003",  # noqa: E501
         [("access_key", "ASIAEXAMPLEKEY000003"), ("iam_role", "ml-node"), ("instance", "i-0abc1234567890def"), ("secret", "prod/openai-key-AbCdEf")]),  # noqa: E501
        ("cloudtrail", "kms.amazonaws.com/ScheduleKeyDeletion", 7.5, "111122223333:access_key:AKIAEXAMPLEKEY000004",
         [("access_key", "AKIAEXAMPLEKEY000004"), ("iam_user", "mallory"), ("kms_key", "1234abcd-12ab-34cd-56ef-1234567890ab"), ("ip", "203.0.113.7")]),  # noqa: E501
    ],
    "cloudwatch_eventbridge_sagemaker.json": [
        ("cloudwatch", "ALARM", 5.0, "111122223333:endpoint:fraud-scorer-prod",
         [("endpoint", "fraud-scorer-prod"), ("other", "arn:aws:cloudwatch:us-east-1:111122223333:alarm:fraud-drift")]),
    ],
    "datadog_access_key.json": [
        ("datadog", "Access key used from TOR", 7.5, "111122223333:access_key:AKIAEXAMPLEKEY000005",
         [("access_key", "AKIAEXAMPLEKEY000005"), ("iam_user", "carol")]),
    ],
    "drift_detected.json": [
        ("responder.drift", "model.drift", 7.5, "111122223333:model:fraud-scorer",
         [("model", "fraud-scorer"), ("model_version", "fraud-scorer:7"), ("endpoint", "fraud-scorer-prod")]),
    ],
    "falco_evt_time_ns.json": [
        ("falco", "Terminal shell in container", 5.0, "-:container:4f1e2d3c4b5a",
         [("container", "4f1e2d3c4b5a"), ("pod", "scorer-7d9f"), ("host", "gpu-node-7")]),
    ],
    "falcosidekick_alertmanager.json": [
        ("falco", "Write below etc", 7.5, "-:pod:trainer-0",
         [("pod", "trainer-0"), ("host", "node-3")]),
    ],
    "gcp_scc_key.json": [
        ("gcp-scc", "Persistence: New API Key", 7.5, "ml-prod:access_key://iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/abc123",
         [("access_key", "//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/abc123")]),
    ],
    "guardduty_envelope_mismatch_invalid_ip.json": [
        ("guardduty", "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8.0, "111122223333:access_key:ASIAQWERTYUIOPASDFGH",  # noqa: E501
         [("access_key", "ASIAQWERTYUIOPASDFGH"), ("iam_role", "ml-inference-role")]),
    ],
    "guardduty_getfindings_pascal.json": [
        ("guardduty", "CryptoCurrency:EC2/BitcoinTool.B!DNS", 8.0, "111122223333:instance:i-0123456789abcdef0",
         [("instance", "i-0123456789abcdef0")]),
    ],
    "mixed.jsonl": [
        ("responder.drift", "model.drift", 5.0, "-:model:m",
         [("model", "m"), ("model_version", "m:1")]),
        ("splunk", "x", 5.0, "-:host:h1",
         [("host", "h1")]),
    ],
    "ocsf_list_versions.json": [
        ("ocsf", "Old schema finding", 7.5, "111122223333:function:scorer",
         [("function", "scorer")]),
        ("ocsf", "ExfilRule", 9.5, "111122223333:access_key:AKIAEXAMPLEKEY000001",
         [("access_key", "AKIAEXAMPLEKEY000001")]),  # no PrincipalType: svc-ml is no IAM user we can vouch for
        ("ocsf", "Bucket encryption", 5.0, "-:bucket:model-artifacts",
         [("bucket", "model-artifacts")]),
        ("ocsf", "iam.amazonaws.com/CreateUser", 0.0, "-:access_key:AKIAEXAMPLEKEY000002",
         [("access_key", "AKIAEXAMPLEKEY000002"), ("iam_user", "alice"), ("iam_user", "backdoor")]),
        ("ocsf", "Authentication: Logon", 2.0, "-:other:bob",  # an untyped (Okta) user is no IAM user
         [("other", "bob"), ("ip", "203.0.113.9")]),
        ("ocsf", "sagemaker.amazonaws.com/UpdateEndpoint", 0.0, "-:iam_role:Deployer",
         [("iam_role", "Deployer")]),
    ],
    "sagemaker_wrapped_report.json": [
        ("sagemaker-model-monitor", "baseline_drift_check", 5.0, "111122223333:endpoint:fraud-scorer-prod",
         [("endpoint", "fraud-scorer-prod")]),
    ],
    "secops_two_rules.json": [
        ("google-secops", "Model registry tampering", 8.5, "-:host:build-7",
         [("host", "build-7"), ("ip", "10.0.0.7")]),
        ("google-secops", "Unusual download", 3.0, "-:host:build-7",
         [("host", "build-7"), ("ip", "10.0.0.7")]),
    ],
    # GuardDuty's label-only provider Severity (HIGH) scores 7.5: the top-level Product 8 is BatchUpdateFindings'
    "securityhub_imported_mismatch.json": [
        ("securityhub", "TTPs/Credential Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS", 7.5, "111122223333:access_key:ASIAQWERTYUIOPASDFGH",  # noqa: E501
         [("access_key", "ASIAQWERTYUIOPASDFGH"), ("iam_role", "ml-inference-role")]),
        ("securityhub", "Software and Configuration Checks/Industry and Regulatory Standards", 9.0, "111122223333:bucket:training-data-bucket",  # noqa: E501
         [("bucket", "training-data-bucket")]),
    ],
    # Security Hub's `Findings Imported V2` (AWS's documented envelope) around GuardDuty's OCSF finding (ocsf/examples)
    "securityhub_v2_guardduty.json": [
        ("ocsf", "AWS CloudTrail trail arn:aws:cloudtrail:us-east-2:111111111111:trail/delete-me was disabled.", 2.0, "111111111111:access_key:ASIATMJPC7EXAMPLE",  # noqa: E501
         [("access_key", "ASIATMJPC7EXAMPLE"), ("iam_role", "Admin")]),
    ],
    "sentinel_logicapp.json": [
        ("sentinel", "Anomalous token use", 5.0, "-:sentinel:inc-9",  # names no AWS account
         []),
    ],
    # an AWS rule's alert: the Account entity names the user, the AccessKeyId custom detail the key
    "sentinel_alert_entities.json": [
        ("sentinel", "AWS access key exposed", 7.5, "-:access_key:AKIAEXAMPLEKEY000009",
         [("access_key", "AKIAEXAMPLEKEY000009"), ("iam_user", "build-bot"), ("ip", "203.0.113.9")]),
    ],
    "splunk_urgency.json": [
        ("splunk", "Possible API key exfiltration", 9.5, "-:host:api-gw-1",
         [("host", "api-gw-1")]),
    ],
    "wazuh_real.json": [
        ("wazuh", "sshd: brute force", 8.0, "-:host:bastion",
         [("host", "bastion"), ("ip", "203.0.113.50")]),
    ],
}


def _events(name: str) -> list:
    return [e for doc in parse_documents((FIXTURES / name).read_bytes()) for e in decode_doc(doc)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_decodes_to_expected_events(name: str) -> None:
    """Each fixture yields exactly the expected events: source, type, severity, incident key and resources."""
    got = [(e.source, e.type, e.severity.score, e.incident_key, [(r.kind.value, r.id) for r in e.resources])
           for e in _events(name)]
    assert got == EXPECTED[name]


def test_every_fixture_has_expectations() -> None:
    """No fixture file is left out of the table."""
    assert {p.name for p in FIXTURES.iterdir()} == set(EXPECTED)


def test_every_decoder_has_a_fixture() -> None:
    """Each registered format family is exercised by at least one fixture."""
    families = {f.family for f in formats().values()}
    assert families <= {e.source.split(".")[0] for name in EXPECTED for e in _events(name)}


def test_guardduty_envelope_disagreeing_with_its_finding() -> None:
    """Account and region come from the finding, the disagreement is recorded, invalid IPs are attributes."""
    [event] = _events("guardduty_envelope_mismatch_invalid_ip.json")
    assert (event.account, event.region) == ("111122223333", "us-east-1")
    assert event.attributes["envelope_mismatch"] == ["account", "region"]
    assert event.attributes["invalid_ips"] == ["075.050.255.67"]
    assert event.attributes["sample"] is True
    key = event.first("access_key")
    assert key is not None
    assert key.attributes["user_name"] == "ml-inference-role"


def test_security_hub_imported_envelope_keys_each_finding_on_its_own_id() -> None:
    """One event per finding; ids are the findings' Ids; the stale envelope `resources` is only recorded."""
    events = _events("securityhub_imported_mismatch.json")
    assert [e.id for e in events] == [
        "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/sh-1",
        "arn:aws:securityhub:us-east-1:111122223333:security-control/S3.8/finding/sh-2",
    ]
    assert all(e.attributes["envelope_mismatch"] is True for e in events)
    assert events[1].attributes["control_id"] == "S3.8"


def test_falco_evt_time_nanoseconds_beyond_2_to_53() -> None:
    """Without `time`, Falco's evt.time (epoch ns > 2^53) gives the exact microsecond, and is kept as a string."""
    [event] = _events("falco_evt_time_ns.json")
    assert event.time == datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
    assert event.attributes["evt_time_ns"] == "1764064800123456789"
    assert all(r.kind != "ip" for r in event.resources)


@pytest.mark.parametrize(("value", "expected"), [
    (1764064800, datetime(2025, 11, 25, 10, 0, tzinfo=UTC)),
    (1764064800123, datetime(2025, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
    (1764064800123456, datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    (1764064800123456789, datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("1764064800", datetime(2025, 11, 25, 10, 0, tzinfo=UTC)),
    (1513612691.551, datetime(2017, 12, 18, 15, 58, 11, 551000, tzinfo=UTC)),
    ("2024-02-17T11:53:08.431+0000", datetime(2024, 2, 17, 11, 53, 8, 431000, tzinfo=UTC)),
    ("2021-12-13T19:52:38.852+0800", datetime(2021, 12, 13, 11, 52, 38, 852000, tzinfo=UTC)),
    ("2020-07-20T18:21:53.6158361Z", datetime(2020, 7, 20, 18, 21, 53, 615836, tzinfo=UTC)),
    ("2024-10-04T09:49:02.698985", datetime(2024, 10, 4, 9, 49, 2, 698985, tzinfo=UTC)),
])
def test_time_accepts_every_unit_and_iso_form(value: object, expected: datetime) -> None:
    """Epoch s/ms/us/ns (by magnitude, strings too) and ISO with Z, +0000, 7 digits or no zone all parse to UTC."""
    assert parse_time(value) == expected


def test_unparsable_time_is_a_validation_failure() -> None:
    """A placeholder time string is refused by the strict parser."""
    with pytest.raises(ValidationFailed):
        parse_time("year-month-dayThours:minuts:seconds+0000")


def test_placeholder_time_falls_back_to_the_receive_time() -> None:
    """Formats whose time may be a placeholder (Wazuh template) use the record's broker time, and say so."""
    doc = {"timestamp": "year-month-day", "rule": {"level": 3, "description": "d", "id": "1"}, "agent": {"name": "a"}}
    received = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    [event] = decode_doc(doc, received=received)
    assert event.time == received
    assert event.attributes["time_source"] == "received"


@pytest.mark.parametrize(("value", "ok"), [
    ("075.050.255.67", False), ("225.01.00.16", False), ("256.1.1.1", False), ("1.2.3", False),
    ("203.0.113.7", True), ("0.0.0.0", True), ("2001:db8::1", True), ("not-an-ip", False), (None, False),
])
def test_ip_validation_never_raises(value: object, ok: bool) -> None:
    """Anonymised or malformed addresses are recognised as invalid without an exception."""
    assert (valid_ip(value) is not None) is ok


def test_severity_label_keeps_a_hint_inside_its_band_only() -> None:
    """ASFF LOW with Normalized 40 stays low (2.0); HIGH with 70 keeps 7.0; unknown words fall back to the default."""
    assert severity_from_label("LOW", hint=4.0).score == 2.0
    assert severity_from_label("HIGH", hint=7.0).score == 7.0
    assert severity_from_label("whatever", default=5.0).label == "medium"


def test_drift_event_failing_its_schema_is_a_validation_failure() -> None:
    """A drift event with an unknown verdict or a missing field is refused with the schema's reason."""
    good = orjson.loads((FIXTURES / "drift_detected.json").read_bytes())
    with pytest.raises(ValidationFailed, match="verdict"):
        decode_doc({**good, "verdict": "maybe"})
    with pytest.raises(ValidationFailed, match="threshold"):
        decode_doc({k: v for k, v in good.items() if k != "threshold"})


def test_poison_bytes_raise_the_right_rejection() -> None:
    """Not JSON, too large and unknown shapes each raise their own EventRejected subclass and reason."""
    with pytest.raises(NotJson) as not_json:
        normalise(b"{nope")
    with pytest.raises(TooLarge):
        normalise(b"[" + b"1," * 600 + b"1]", max_bytes=1000)
    with pytest.raises(UnknownShape):
        normalise(b'{"hello": "world"}')
    with pytest.raises(UnknownShape):
        normalise(b"[]")
    assert not_json.value.reason_code == "not_json"


def test_forced_format_overrides_detection() -> None:
    """A topic forced to `cloudtrail` decodes a record whose shape alone would not say so, or fails validation."""
    record = {"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": "2026-11-25T10:00:00Z"}
    assert decode_doc(record, "cloudtrail")[0].type == "s3.amazonaws.com/GetObject"
    with pytest.raises(ValidationFailed):
        decode_doc({"foo": 1}, "guardduty")


def test_json_lines_and_arrays_are_split_into_documents() -> None:
    """A JSON Lines file is one document per line; an array file is one document decoded element by element."""
    assert len(parse_documents((FIXTURES / "mixed.jsonl").read_bytes())) == 2
    with pytest.raises(NotJson, match="line 2"):
        parse_documents(b'{"a": 1}\n{broken\n')


def test_detection_is_unambiguous_on_fixtures() -> None:
    """Exactly one registered format recognises each fixture document, so detection order cannot matter."""
    for path in FIXTURES.iterdir():
        for doc in parse_documents(path.read_bytes()):
            for item in doc if isinstance(doc, list) else [doc]:
                hits = [f.name for f in formats().values() if f.detect(item)]
                assert len(hits) == 1, (path.name, hits)


def test_drift_event_accepts_a_numeric_version_and_epoch_time() -> None:
    """`version: 7` is read as "7" and an epoch-ms time is accepted, as monitors often emit them."""
    [event] = decode_doc({"source": "responder.drift", "model": "m", "version": 7, "metric": "psi", "window": "1h",
                          "statistic": 1, "threshold": 0.5, "verdict": "suspected", "time": 1764064800000})
    assert event.first("model_version").id == "m:7"
    assert event.time == datetime(2025, 11, 25, 10, 0, tzinfo=UTC)
    assert event.severity.score == 5.0


def test_every_emitted_attribute_is_declared_by_its_decoder() -> None:
    """Each attribute key a decoder sets on the recorded fixtures, examples and corpus is in its declared list."""
    from responder.normalise.registry import detect
    from tests.conftest import CORPUS

    root = FIXTURES.parents[2]
    paths = [*FIXTURES.iterdir(), *(root / "runbooks" / "examples").rglob("*.json"),
             *(root / "playbooks" / "events").glob("*.json")]
    if CORPUS.is_dir():
        paths += [p for p in CORPUS.rglob("*.json*") if p.is_file()]
    undeclared: dict[str, set[str]] = {}
    decoded = 0
    for path in paths:
        try:
            docs = parse_documents(path.read_bytes())
        except (NotJson, TooLarge):
            continue
        for doc in docs:
            try:
                fmt = detect(doc)
                events = decode_doc(doc)
            except (UnknownShape, ValidationFailed):
                continue
            for event in events:
                decoded += 1
                extra = set(event.attributes) - fmt.attributes
                if extra:
                    undeclared.setdefault(fmt.name, set()).update(extra)
    assert decoded > 50
    assert undeclared == {}
