"""The intake never produces a record that `responder run` would decode with another decoder than the intake did.

A body two shape tests accept (a GuardDuty finding with Splunk's `sid` and `search_name` added, or with Datadog's
`detail-type` and `detail.meta.signal`) was decoded here with the source's pinned format, signed, and decoded there
by shape as a signed GuardDuty finding: any Splunk or Datadog token could have an access key deactivated.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from responder.auth import KeyRing
from responder.ingest.authn import RecordAuthenticator
from responder.intake import Intake, create_app
from responder.intake.produce import check_decoders
from responder.intake.records import Record
from responder.models.event import RawRecord
from responder.normalise import decoders, formats, normalise, parse_documents
from tests.intake_kit import BEARER, CORPUS, SIGNING, SPLUNK_TOKEN, FakeSender, corpus, intake_settings

JSON = {"content-type": "application/json"}
BEARER_JSON = {**JSON, "authorization": f"Bearer {BEARER}"}
SPLUNK_URL = f"/v1/events/splunk?token={SPLUNK_TOKEN}"
SOURCES: dict[str, Any] = {
    "splunk": {"auth": "url-token", "keys": {"s1": SPLUNK_TOKEN}, "format": "splunk"},
    "dd": {"auth": "bearer", "keys": {"k1": BEARER}, "format": "datadog"},
}
GUARDDUTY: dict[str, Any] = orjson.loads(
    (CORPUS / "guardduty" / "eventbridge_detail_only_unauthorizedaccess_ec2_sshbruteforce.json").read_bytes())

# a raw GuardDuty finding naming an access key (the shipped iam-credential-compromise runbook deactivates it)
FINDING: dict[str, Any] = {
    "id": "gd-forged-1", "accountId": "123456789012", "region": "us-east-1",
    "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "severity": 8, "createdAt": "2026-11-25T10:00:00Z", "updatedAt": "2026-11-25T10:00:00Z",
    "resource": {"resourceType": "AccessKey", "accessKeyDetails": {
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "ml-training", "userType": "IAMUser"}},
    "service": {"action": {}},
}
SPLUNK_HYBRID = {**GUARDDUTY, "sid": "s-1", "search_name": "harmless search"}
DATADOG_HYBRID = {**FINDING, "detail-type": "Datadog Alert Notification",
                  "detail": {"meta": {"signal": {"id": "s1", "severity": "high", "title": "x", "rule": {"name": "x"}}}}}


def _settings(**overrides: Any) -> Any:
    return intake_settings(**({"require_signature": ["guardduty"], "intake_sources": SOURCES} | overrides))


def _post(settings: Any, url: str, doc: Any, headers: dict[str, str]) -> tuple[Any, FakeSender, str]:
    """The answer, what was produced and the metrics text after one POST."""
    sender = FakeSender()
    with TestClient(create_app(Intake(settings, sender))) as client:
        answer = client.post(url, content=orjson.dumps(doc), headers=headers)
        metrics = client.get("/metrics").text
    return answer, sender, metrics


def _accepted_by_run(sender: FakeSender, require: list[str]) -> list[str]:
    """The event sources `responder run` (no topic_formats) reads from what was produced, checked as it checks."""
    consumer = RecordAuthenticator(KeyRing({"intake": SIGNING}), require=require)
    sources = []
    for topic, value, key, headers in sender.sent:
        record = RawRecord(topic=topic, value=value, key=key, headers=tuple(headers))
        events = normalise(value)
        consumer.check_sources(events, consumer.verify(record))
        sources += [e.source for e in events]
    return sources


def test_the_hybrids_are_what_the_audit_found() -> None:
    """Each hybrid passes its pinned format's shape test and is a GuardDuty finding by shape."""
    assert decoders(SPLUNK_HYBRID, "splunk") == ["splunk"]
    assert decoders(SPLUNK_HYBRID) == ["guardduty.detail"]
    assert decoders(DATADOG_HYBRID, "datadog") == ["datadog"]
    assert decoders(DATADOG_HYBRID) == ["guardduty"]


@pytest.mark.parametrize("require", [["guardduty"], ["*"]])
@pytest.mark.parametrize(("url", "headers", "doc", "pinned", "by_shape"), [
    (SPLUNK_URL, JSON, SPLUNK_HYBRID, "splunk", "guardduty.detail"),
    ("/v1/events/dd", BEARER_JSON, DATADOG_HYBRID, "datadog", "guardduty"),
], ids=["splunk", "datadog"])
def test_a_pinned_source_cannot_have_a_guardduty_finding_signed(url: str, headers: dict[str, str], doc: Any,
                                                                 pinned: str, by_shape: str,
                                                                 require: list[str]) -> None:
    """A GuardDuty finding dressed as the source's format is 422 format-mismatch naming both, counted, not produced."""
    answer, sender, metrics = _post(_settings(require_signature=require), url, doc, headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "tag:responder,2026:problem/format-mismatch"
    assert problem["reason"] == "format-mismatch"
    assert f"as {pinned!r}" in problem["detail"]
    assert f"decode it as {by_shape!r}" in problem["detail"]
    assert sender.sent == []
    source = url.split("/")[-1].split("?")[0]
    assert f'responder_intake_rejected_total{{reason="format-mismatch",source="{source}"}} 1.0' in metrics


@pytest.mark.parametrize(("url", "headers", "name", "source"), [
    (SPLUNK_URL, JSON, "splunk", "splunk"),
    ("/v1/events/dd", BEARER_JSON, "datadog", "datadog"),
    ("/v1/events/dd", BEARER_JSON, "datadog-cspm", "datadog"),
])
def test_genuine_payloads_of_a_pinned_source_are_still_produced_signed(url: str, headers: dict[str, str], name: str,
                                                                       source: str) -> None:
    """The corpus' Splunk and Datadog payloads are 202, signed, and read by `responder run` as the intake read them."""
    answer, sender, _ = _post(_settings(require_signature=["*"]), url, orjson.loads(corpus(name)), headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["produced"] == 1
    assert _accepted_by_run(sender, ["*"]) == [source]


def _splunk(sid: str, host: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(corpus("splunk"))
    doc["sid"] = sid
    if host is None:  # no result: keyed by its search, as the hybrid is
        doc.pop("result")
        doc["search_name"] = SPLUNK_HYBRID["search_name"]
    else:
        doc["result"]["host"] = host
    return doc


@pytest.mark.parametrize(("batch", "where"), [
    ([_splunk("s-0", "host-a"), SPLUNK_HYBRID], "record 2 (element 1 of 1)"),  # split: one record per incident key
    ([_splunk("s-0", None), SPLUNK_HYBRID], "record 1 (element 2 of 2)"),  # one key: one record of both
], ids=["split", "one-record"])
def test_a_hybrid_inside_an_array_refuses_the_whole_request(batch: list[Any], where: str) -> None:
    """Each record is checked element by element, as `responder run` decodes it: nothing of the batch is produced."""
    answer, sender, _ = _post(_settings(), SPLUNK_URL, batch, JSON)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(where)
    assert sender.sent == []


def test_an_unpinned_source_cannot_have_what_a_topic_format_reads_otherwise_signed() -> None:
    """An unpinned source's Datadog signal that the topic's topic_formats reads as a required Splunk alert is 422."""
    # the intake's guard (check_pinned) saw a Datadog signal; `responder run` would read a signed Splunk alert
    doc = {**orjson.loads(corpus("datadog")), "sid": "s-9", "search_name": "forged search"}
    assert decoders(doc) == ["datadog"]
    sources = {"dd": {"auth": "bearer", "keys": {"k1": BEARER}}}
    settings = _settings(require_signature=["splunk"], intake_sources=sources,
                         topic_formats={"security.alerts": "splunk"})
    answer, sender, _ = _post(settings, "/v1/events/dd", doc, BEARER_JSON)
    assert answer.status_code == 422, answer.text
    assert "topic_formats['security.alerts'] = 'splunk'" in answer.json()["detail"]
    assert sender.sent == []
    answer, sender, _ = _post(settings, "/v1/events/dd", orjson.loads(corpus("datadog")), BEARER_JSON)
    assert answer.status_code == 422  # a genuine Datadog signal is no Splunk alert to `responder run` either


@pytest.mark.parametrize("where", [
    {"topic_formats": {"security.alerts": "splunk"}},  # the intake topic pinned as the source
    {"topics": ["security.alerts", "alerts.splunk"], "topic_formats": {"alerts.splunk": "splunk"},  # docs/intake.md
     "intake_sources": {**SOURCES, "splunk": {**SOURCES["splunk"], "topic": "alerts.splunk"}}},
], ids=["intake-topic", "own-topic"])
def test_a_topic_pinned_as_the_source_still_refuses_a_hybrid(where: dict[str, Any]) -> None:
    """A topic_formats pin agreeing with the source's does not sign bytes that decode by shape as GuardDuty: 422."""
    answer, sender, _ = _post(_settings(require_signature=["*"], **where), SPLUNK_URL, SPLUNK_HYBRID, JSON)
    assert answer.status_code == 422, answer.text
    assert "a reader by shape (no format) would decode it as 'guardduty.detail'" in answer.json()["detail"]
    assert sender.sent == []


@pytest.mark.parametrize("topic_formats", [{}, {"alerts.sentinel": "sentinel"}], ids=["unpinned", "pinned"])
def test_a_format_only_forced_by_the_pin_is_refused(topic_formats: dict[str, str]) -> None:
    """An unmodified GuardDuty finding POSTed to a source pinned to sentinel (whose shape test fails) is 422."""
    finding = (CORPUS / "guardduty" / "raw_finding_recon_iamuser_maliciousipcaller_custom.json").read_bytes()
    assert decoders(orjson.loads(finding), "sentinel") == ["sentinel"]  # forced: Sentinel's shape test fails
    sources = {"sentinel": {"auth": "bearer", "keys": {"k1": BEARER}, "format": "sentinel", "topic": "alerts.sentinel"}}
    settings = _settings(require_signature=["*"], intake_sources=sources, topic_formats=topic_formats,
                         topics=["security.alerts", "alerts.sentinel"])
    sender = FakeSender()
    with TestClient(create_app(Intake(settings, sender))) as client:
        answer = client.post("/v1/events/sentinel", content=finding, headers=BEARER_JSON)
    assert answer.status_code == 422, answer.text
    assert "would decode it as 'guardduty'" in answer.json()["detail"]
    assert sender.sent == []


CORPUS_DOCS = [(path, n, doc) for path in sorted(CORPUS.rglob("*.json*"))
               for n, doc in enumerate(parse_documents(path.read_bytes()))] if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_DOCS, reason=f"corpus folder {CORPUS} is absent")
@pytest.mark.parametrize(("path", "n", "doc"), CORPUS_DOCS, ids=[f"{p.name}:{n}" for p, n, _ in CORPUS_DOCS])
def test_every_corpus_document_passes_pinned_to_its_own_format_family_and_source(path: Any, n: int, doc: Any) -> None:
    """Each corpus document, with the source and the topic pinned to its format, family or event source, is signed."""
    [shape] = set(decoders(doc))
    assert shape is not None
    found = formats()[shape]
    for pin in (found.name, found.family, found.source):
        settings = _settings(intake_sources={"src": {"auth": "bearer", "keys": {"k1": BEARER}, "format": pin}},
                             topic_formats={"security.alerts": pin})
        check_decoders(settings, "src", [Record(orjson.dumps(doc), b"k", "d", None)])
