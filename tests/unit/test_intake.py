"""The HTTP intake: auth per source, limits, idempotency, problem documents, signing, corpus payloads."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from responder.auth import KEY_ID_HEADER, KeyRing
from responder.errors import BrokerUnavailable, ConfigError, RecordTooLarge
from responder.ingest.authn import RecordAuthenticator
from responder.intake import Intake, create_app
from responder.intake.auth import TOLERANCE_S
from responder.models.event import RawRecord
from responder.normalise import normalise
from tests.intake_kit import (
    BEARER,
    CORPUS,
    CORPUS_PAYLOADS,
    HMAC_NEW,
    SIGNING,
    SPLUNK_TOKEN,
    WHSEC_OLD,
    FakeSender,
    corpus,
    intake_settings,
    webhook_headers,
)

JSON = {"content-type": "application/json"}


@pytest.fixture(name="sender")
def _sender() -> FakeSender:
    return FakeSender()


@pytest.fixture(name="intake")
def _intake(sender: FakeSender) -> Intake:
    return Intake(intake_settings(intake_max_body_bytes=64 * 1024, intake_max_depth=16), sender)


@pytest.fixture(name="client")
def _client(intake: Intake) -> Iterator[TestClient]:
    with TestClient(create_app(intake)) as client:
        yield client


def _bearer() -> dict[str, str]:
    return {**JSON, "authorization": f"Bearer {BEARER}"}


@pytest.mark.parametrize("name", sorted(CORPUS_PAYLOADS))
def test_corpus_payloads_are_accepted_and_produced_keyed_by_incident(name: str, client: TestClient,
                                                                     sender: FakeSender) -> None:
    """Every real SIEM payload is decoded, produced keyed by its incident key, and answered 202."""
    body = corpus(name)
    answer = client.post("/v1/events/dd", content=body, headers=_bearer())
    assert answer.status_code == 202, answer.text
    doc = answer.json()
    assert doc["produced"] >= 1
    assert doc["duplicates"] == 0
    for _, value, key, _ in sender.sent:
        events = normalise(value)
        assert key is not None
        assert key.decode() == events[0].incident_key


def test_alertmanager_group_becomes_one_record_per_alert(client: TestClient, sender: FakeSender) -> None:
    """An Alertmanager group of two alerts is produced as two records, each keyed by its own alert's incident."""
    answer = client.post("/v1/events/dd", content=corpus("alertmanager"), headers=_bearer())
    assert answer.json()["produced"] == 2
    docs = [orjson.loads(value) for _, value, _, _ in sender.sent]
    assert all(len(doc["alerts"]) == 1 for doc in docs)
    assert len({doc["alerts"][0]["fingerprint"] for doc in docs}) == 2


def test_produced_records_carry_the_intake_signature_ingest_accepts(client: TestClient,
                                                                    sender: FakeSender) -> None:
    """The record's headers verify under the intake signing key, as responder.ingest checks them."""
    client.post("/v1/events/dd", content=corpus("splunk"), headers=_bearer())
    topic, value, key, headers = sender.sent[0]
    record = RawRecord(topic=topic, value=value, key=key, headers=tuple(headers))
    ring = KeyRing({"intake": SIGNING})
    assert record.header(KEY_ID_HEADER) == b"intake"
    assert ring.check("intake", (record.header("responder-signature") or b"").decode(), value) is None
    assert record.header("responder-intake-auth-key") == b"k1"


def test_standard_webhooks_any_active_key_verifies(client: TestClient, sender: FakeSender) -> None:
    """During rotation both the old (whsec_) and the new key verify."""
    import base64

    body = corpus("splunk")
    old = base64.b64decode(WHSEC_OLD.removeprefix("whsec_"))
    assert client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, old, "a")).status_code == 202
    assert client.post("/v1/events/hooks", content=body.replace(b"sudo", b"SUDO"),
                       headers=webhook_headers(body.replace(b"sudo", b"SUDO"), wid="b")).status_code == 202
    assert len(sender.sent) == 2


def test_redelivery_is_acknowledged_and_not_produced_twice(client: TestClient, sender: FakeSender) -> None:
    """The same webhook-id re-signed later (a sender retry) gets 202 and produces nothing."""
    body = corpus("datadog")
    first = client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, wid="m1"))
    again = client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, wid="m1",
                                                                                  ts=int(time.time()) + 1))
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicates"] == 1
    assert len(sender.sent) == 1


@pytest.mark.parametrize("name", ["splunk", "alertmanager", "sentinel"])
def test_derived_delivery_keys_deduplicate(name: str, client: TestClient, sender: FakeSender) -> None:
    """Splunk sid, Alertmanager groupKey+fingerprint+startsAt and event ids make a resend a no-op."""
    body = corpus(name)
    client.post("/v1/events/dd", content=body, headers=_bearer())
    count = len(sender.sent)
    again = client.post("/v1/events/dd", content=body, headers=_bearer())
    assert again.status_code == 202
    assert len(sender.sent) == count


def test_splunk_url_token_is_checked_and_never_logged(client: TestClient, sender: FakeSender,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The URL token authenticates Splunk; a wrong one is 401; the token appears in no log line."""
    body = corpus("splunk")
    assert client.post(f"/v1/events/splunk?token={SPLUNK_TOKEN}", content=body, headers=JSON).status_code == 202
    assert client.post("/v1/events/splunk?token=wrong", content=body, headers=JSON).status_code == 401
    out = capsys.readouterr()
    assert SPLUNK_TOKEN not in out.out + out.err


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BAD = [
    ("no credentials", "/v1/events/dd", JSON, None, 401, "unauthenticated"),
    ("wrong bearer", "/v1/events/dd", {**JSON, "authorization": "Bearer nope"}, None, 401, "bad-signature"),
    ("bad signature", "/v1/events/hooks", "badsig", None, 401, "bad-signature"),
    ("stale timestamp", "/v1/events/hooks", "stale", None, 401, "stale-timestamp"),
    ("unknown source", "/v1/events/nope", JSON, None, 404, "unknown-source"),
    ("wrong content type", "/v1/events/open", {"content-type": "text/plain"}, None, 415, "unsupported-media-type"),
    ("oversized", "/v1/events/open", JSON, b"[" + b"1," * 40_000 + b"1]", 413, "too-large"),
    ("too deep", "/v1/events/open", JSON, _deep(40), 400, "too-deep"),
    ("far too deep", "/v1/events/open", JSON, _deep(2000), 400, "too-deep"),
    ("not JSON", "/v1/events/open", JSON, b"{nope", 422, "not-json"),
    ("undecodable", "/v1/events/open", JSON, b'{"hello": "world"}', 422, "undecodable"),
    ("partly undecodable", "/v1/events/open", JSON, b"[" + corpus("splunk") + b', {"hello": "world"}]', 422,
     "undecodable"),  # nothing half-accepted: the sender learns which element (docs/events.md)
    ("an Alertmanager group with a bad alert", "/v1/events/open", JSON,
     b'{"version": "4", "status": "firing", "alerts": [{"labels": {"alertname": "a"}, "fingerprint": "f1",'
     b' "startsAt": "2026-11-25T09:00:00Z"}, "not an alert"]}', 422, "undecodable"),  # refused whole, as an array
]


@pytest.mark.parametrize(("case", "path", "headers", "body", "status", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_a_problem_document_and_never_reach_kafka(
        case: str, path: str, headers: object, body: bytes | None, status: int, reason: str,
        client: TestClient, sender: FakeSender, intake: Intake) -> None:
    """Each refusal is the right 4xx, an RFC 9457 document with the reason, counted, and produces nothing."""
    payload = body if body is not None else corpus("splunk")
    if headers == "badsig":
        headers = {**webhook_headers(payload), "webhook-signature": "v1,AAAA"}
    elif headers == "stale":
        headers = webhook_headers(payload, ts=int(time.time()) - TOLERANCE_S - 60)
    answer = client.post(path, content=payload, headers=headers)  # type: ignore[arg-type]
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert problem["reason"] == reason
    assert problem["detail"]
    assert sender.sent == []
    label = path.rsplit("/", 1)[-1] if path.rsplit("/", 1)[-1] in intake.auth else "unknown"
    assert intake.metrics.value("responder_intake_rejected_total", source=label, reason=reason) == 1


def test_replayed_request_is_refused(client: TestClient, sender: FakeSender, intake: Intake) -> None:
    """The identical signed request sent twice is 409 the second time; a reused id with another body too."""
    body = corpus("splunk")
    headers = webhook_headers(body, wid="r1")
    assert client.post("/v1/events/hooks", content=body, headers=headers).status_code == 202
    replay = client.post("/v1/events/hooks", content=body, headers=headers)
    assert replay.status_code == 409
    assert replay.json()["reason"] == "replayed"
    other = body.replace(b"sudo", b"SUDO")
    reused = client.post("/v1/events/hooks", content=other, headers=webhook_headers(other, wid="r1",
                                                                                    ts=int(time.time()) + 2))
    assert reused.status_code == 409
    assert len(sender.sent) == 1
    assert intake.metrics.value("responder_intake_rejected_total", source="hooks", reason="replayed") == 2


def test_replay_is_per_source(sender: FakeSender) -> None:
    """One source's webhook-id and timestamp do not make another source's delivery a 409 replay."""
    secrets = {"a": "secret-of-source-a", "b": "secret-of-source-b"}
    sources = {name: {"auth": "standard-webhooks", "keys": {"k": secret}} for name, secret in secrets.items()}
    stamp = int(time.time())
    with TestClient(create_app(Intake(intake_settings(intake_sources=sources), sender))) as client:
        for name, body in (("a", corpus("splunk")), ("b", corpus("datadog"))):
            headers = webhook_headers(body, secrets[name].encode(), wid="evt-1", ts=stamp)
            assert client.post(f"/v1/events/{name}", content=body, headers=headers).status_code == 202
    assert [headers[0][1] for _, _, _, headers in sender.sent] == [b"a", b"b"]


def _splunk_on(host: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(corpus("splunk"))
    doc["sid"] += host
    doc["result"]["host"] = host
    return doc


def _one_key_per_record(sender: FakeSender) -> list[tuple[bytes, list[str]]]:
    """(key, incident keys of its events) per produced record; each record must hold its key's events only."""
    out = []
    for _, value, key, _ in sender.sent:
        assert key is not None
        keys = [e.incident_key for e in normalise(value)]
        assert set(keys) == {key.decode()}, (key, keys)
        out.append((key, keys))
    return out


def test_a_batch_becomes_one_record_per_incident_key(client: TestClient, sender: FakeSender) -> None:
    """A JSON array over two resources is one record per incident key, each holding its elements in order."""
    batch = [_splunk_on("host-a"), _splunk_on("host-b"), _splunk_on("host-a")]
    answer = client.post("/v1/events/dd", content=orjson.dumps(batch), headers=_bearer())
    assert answer.status_code == 202
    assert answer.json()["produced"] == 2
    records = _one_key_per_record(sender)
    assert [len(keys) for _, keys in records] == [2, 1]
    assert [d["sid"] for d in orjson.loads(sender.sent[0][1])] == [batch[0]["sid"], batch[2]["sid"]]


def test_a_signed_alertmanager_group_is_split_per_incident_key(client: TestClient, sender: FakeSender) -> None:
    """A Standard Webhooks delivery of a group over two resources is one record per key, retried as a whole."""
    doc = orjson.loads(corpus("alertmanager"))
    doc["alerts"][1]["labels"]["host"] = "orion"
    body = orjson.dumps(doc)
    assert len({e.incident_key for e in normalise(body)}) == 2
    assert client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, wid="g1")).status_code == 202
    assert len(_one_key_per_record(sender)) == 2
    retry = client.post("/v1/events/hooks", content=body, headers=webhook_headers(body, wid="g1",
                                                                                  ts=int(time.time()) + 1))
    assert retry.json()["duplicates"] == 2
    assert len(sender.sent) == 2


class _FailsOnce(FakeSender):
    """Fails the `nth` send once, as a broker that did not acknowledge it."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.calls = 0
        self.nth = nth

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        self.calls += 1
        if self.calls == self.nth:
            raise BrokerUnavailable("not acknowledged")
        return await super().send(topic, value, key=key, headers=headers)


def test_a_partly_failed_batch_is_503_and_its_retry_sends_only_what_is_missing() -> None:
    """When one key's record is not acknowledged the answer is 503; the retry produces only that record."""
    sender = _FailsOnce(nth=2)
    body = orjson.dumps([_splunk_on("host-a"), _splunk_on("host-b")])
    with TestClient(create_app(Intake(intake_settings(), sender))) as client:
        assert client.post("/v1/events/dd", content=body, headers=_bearer()).status_code == 503
        retry = client.post("/v1/events/dd", content=body, headers=_bearer())
    assert retry.status_code == 202
    assert (retry.json()["produced"], retry.json()["duplicates"]) == (1, 1)
    keys = [key for key, _ in _one_key_per_record(sender)]
    assert len(keys) == len(set(keys)) == 2  # each key's record produced once


def test_kafka_down_answers_503_with_retry_after_then_accepts_the_retry(client: TestClient,
                                                                        sender: FakeSender) -> None:
    """Without a broker ack the answer is 503 + Retry-After and the delivery is not remembered."""
    sender.down = True
    body = corpus("splunk")
    answer = client.post("/v1/events/open", content=body, headers=JSON)
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) > 0
    assert client.get("/readyz").status_code == 503
    sender.down = False
    retry = client.post("/v1/events/open", content=body, headers=JSON)
    assert retry.status_code == 202
    assert retry.json()["produced"] == 1


def test_rate_limit_per_source(sender: FakeSender) -> None:
    """A source over its burst gets 429 with Retry-After; other sources are unaffected."""
    settings = intake_settings(intake_sources={"open": {"auth": "open", "rate_per_s": 0.01, "burst": 2},
                                               "other": {"auth": "open"}}, intake_signing_key_id=None)
    with TestClient(create_app(Intake(settings, sender))) as client:
        answers = [client.post("/v1/events/open", content=b"{}", headers=JSON).status_code for _ in range(3)]
        assert answers[-1] == 429
        assert 429 not in answers[:2]
        assert client.post("/v1/events/other", content=b"{}", headers=JSON).status_code == 422


def test_unauthenticated_requests_do_not_spend_the_source_rate(sender: FakeSender) -> None:
    """Requests that fail authentication are refused without using the source's rate: the SIEM still gets in."""
    settings = intake_settings(intake_sources={"dd": {"auth": "bearer", "keys": {"k": BEARER}, "rate_per_s": 0.01,
                                                      "burst": 1}})
    with TestClient(create_app(Intake(settings, sender))) as client:
        for _ in range(3):
            assert client.post("/v1/events/dd", content=corpus("splunk"), headers=JSON).status_code == 401
        assert client.post("/v1/events/dd", content=corpus("splunk"), headers=_bearer()).status_code == 202


@pytest.mark.parametrize("sources", [
    {"x": {"auth": "bearer"}},
    {"x": {"auth": "standard-webhooks", "keys": {}}},
    {},
])
def test_source_without_auth_keys_is_refused_at_start(sources: dict[str, object], sender: FakeSender) -> None:
    """A source needing keys but with none, or no source at all, is a ConfigError at start-up."""
    with pytest.raises(ConfigError, match="intake_sources"):
        Intake(intake_settings(intake_sources=sources), sender)


@pytest.mark.parametrize("secret", ["", "whsec_", "short-secret", "whsec_" + "c2hvcnQtc2VjcmV0"])
@pytest.mark.parametrize("auth", ["standard-webhooks", "bearer", "url-token"])
def test_empty_or_short_secret_is_refused_at_start(auth: str, secret: str, sender: FakeSender) -> None:
    """A key of fewer than 16 bytes (after whsec_ decoding), empty included, is a ConfigError naming it."""
    sources = {"w": {"auth": auth, "keys": {"k": secret}}}
    with pytest.raises(ConfigError, match=r"^intake_sources\.w\.keys\.k: .*at least 16 bytes") as refused:
        Intake(intake_settings(intake_sources=sources), sender)
    assert "\n" not in str(refused.value)
    assert secret.removeprefix("whsec_") == "" or secret.removeprefix("whsec_") not in str(refused.value)


GUARDDUTY = CORPUS / "guardduty" / "eventbridge_detail_only_unauthorizedaccess_ec2_sshbruteforce.json"


def test_an_unpinned_source_cannot_have_a_required_source_signed(sender: FakeSender) -> None:
    """A GuardDuty finding (require_signature) POSTed with a Datadog token to an unpinned source is 403, unsigned."""
    settings = intake_settings(require_signature=["guardduty"])
    with TestClient(create_app(Intake(settings, sender))) as client:
        answer = client.post("/v1/events/dd", content=GUARDDUTY.read_bytes(), headers=_bearer())
        assert client.post("/v1/events/dd", content=corpus("datadog"), headers=_bearer()).status_code == 202
    assert answer.status_code == 403
    assert answer.json()["reason"] == "format-not-pinned"
    assert "intake_sources.dd.format" in answer.json()["detail"]
    assert [normalise(value)[0].source for _, value, _, _ in sender.sent] == ["datadog"]


def test_a_source_pinned_to_a_required_format_delivers_it_signed(sender: FakeSender) -> None:
    """A source whose `format` pins guardduty delivers GuardDuty findings that require_signature accepts."""
    sources = {"gd": {"auth": "bearer", "keys": {"k1": BEARER}, "format": "guardduty"}}
    settings = intake_settings(require_signature=["guardduty"], intake_sources=sources)
    with TestClient(create_app(Intake(settings, sender))) as client:
        assert client.post("/v1/events/gd", content=GUARDDUTY.read_bytes(), headers=_bearer()).status_code == 202
    topic, value, key, headers = sender.sent[0]
    record = RawRecord(topic=topic, value=value, key=key, headers=tuple(headers))
    consumer = RecordAuthenticator(KeyRing({"intake": SIGNING}), require=["guardduty"])
    signed_by = consumer.verify(record)
    assert signed_by == "intake"
    consumer.check_sources(normalise(value), signed_by)  # what `responder run` does: accepted


def test_authenticated_sources_need_a_signing_key(sender: FakeSender) -> None:
    """Without intake_signing_key_id the intake refuses to start when any source authenticates."""
    with pytest.raises(ConfigError, match="intake_signing_key_id"):
        Intake(intake_settings(intake_signing_key_id=None), sender)


def test_source_missing_auth_is_a_settings_error() -> None:
    """`auth` has no default: a source must say how it authenticates (or `open`)."""
    from responder.settings_errors import SettingsInvalid

    with pytest.raises(SettingsInvalid, match="auth"):
        intake_settings(intake_sources={"x": {"keys": {"a": "b"}}})


def test_metrics_count_requests_by_source_and_status(client: TestClient) -> None:
    """/metrics exports requests by source and status, auth failures and latency."""
    client.post("/v1/events/dd", content=corpus("splunk"), headers=_bearer())
    client.post("/v1/events/dd", content=corpus("splunk"), headers=JSON)
    text = client.get("/metrics").text
    assert 'responder_intake_requests_total{source="dd",status="202"} 1.0' in text
    assert 'responder_intake_auth_failures_total{reason="unauthenticated",source="dd"} 1.0' in text
    assert "responder_intake_request_duration_seconds_bucket" in text


def test_traceparent_is_carried_to_kafka(client: TestClient, sender: FakeSender) -> None:
    """A SIEM's W3C traceparent continues on the produced record: same trace id (the span id may be the intake's)."""
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    answer = client.post("/v1/events/dd", content=corpus("splunk"), headers={**_bearer(), "traceparent": trace})
    carried = dict(sender.sent[0][3])["traceparent"].decode().split("-")
    assert carried[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert answer.json()["trace_id"] == carried[1]


def test_trace_context_starts_at_the_intake_when_the_siem_sends_none(client: TestClient, sender: FakeSender) -> None:
    """Without a valid traceparent the intake creates one; the 202 names its trace id."""
    answer = client.post("/v1/events/dd", content=corpus("splunk"), headers={**_bearer(), "traceparent": "junk"})
    parent = dict(sender.sent[0][3])["traceparent"].decode()
    assert parent.split("-")[1] == answer.json()["trace_id"]
    assert parent.startswith("00-")


def test_no_secret_reaches_the_logs(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    """Tokens, HMAC secrets, signatures and the signing key appear in no log line, accepted or refused."""
    body = corpus("splunk")
    signed = webhook_headers(body, wid="logs")
    client.post("/v1/events/hooks", content=body, headers=signed)
    client.post("/v1/events/hooks", content=body, headers={**signed, "webhook-signature": "v1,Zm9yZ2Vk"})
    client.post("/v1/events/dd", content=body, headers=_bearer())
    client.post("/v1/events/dd", content=body, headers={**JSON, "authorization": f"Bearer {BEARER}x"})
    client.post(f"/v1/events/splunk?token={SPLUNK_TOKEN}", content=body, headers=JSON)
    out = capsys.readouterr()
    logs = out.out + out.err
    assert "intake_request" in logs
    for secret in (BEARER, SPLUNK_TOKEN, SIGNING, HMAC_NEW, signed["webhook-signature"].split(",")[1], "Zm9yZ2Vk"):
        assert secret not in logs


def test_unknown_route_and_method_are_problem_documents(client: TestClient) -> None:
    """404 and 405 from routing are problem documents too."""
    missing = client.get("/nope")
    wrong = client.get("/v1/events/dd")
    assert (missing.status_code, wrong.status_code) == (404, 405)
    assert json.loads(wrong.text)["reason"] == "method-not-allowed"


@pytest.mark.parametrize("require", [["*"], ["security.alerts"]])
def test_require_signature_of_every_record_needs_every_authenticated_source_pinned(
        sender: FakeSender, require: list[str]) -> None:
    """With `*` or the intake's topic in require_signature, an unpinned authenticated source is 403, nothing signed."""
    settings = intake_settings(require_signature=require)
    with TestClient(create_app(Intake(settings, sender))) as client:
        forged = client.post("/v1/events/dd", content=GUARDDUTY.read_bytes(), headers=_bearer())
        pinned = client.post(f"/v1/events/splunk?token={SPLUNK_TOKEN}", content=corpus("splunk"),
                             headers={"content-type": "application/json"})
    assert forged.status_code == 403
    assert forged.json()["reason"] == "format-not-pinned"
    assert "intake_sources.dd.format" in forged.json()["detail"]
    assert pinned.status_code == 202
    assert [normalise(value)[0].source for _, value, _, _ in sender.sent] == ["splunk"]


def test_a_reused_webhook_id_with_another_body_is_409_whatever_the_split(sender: FakeSender) -> None:
    """The same webhook-id with another body is 409 and produces nothing, even when the body splits differently."""
    with TestClient(create_app(Intake(intake_settings(), sender))) as client:
        one = orjson.dumps(_splunk_on("host-a"))
        assert client.post("/v1/events/hooks", content=one, headers=webhook_headers(one, wid="m1")).status_code == 202
        two = orjson.dumps([_splunk_on("host-a"), _splunk_on("host-b")])
        answer = client.post("/v1/events/hooks", content=two,
                             headers=webhook_headers(two, wid="m1", ts=int(time.time()) + 1))
    assert answer.status_code == 409
    assert answer.json()["reason"] == "replayed"
    assert len(sender.sent) == 1


class _TooLargeSecond(FakeSender):
    calls = 0

    async def send(self, topic: str, value: bytes, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        self.calls += 1
        if self.calls == 2:
            raise RecordTooLarge("the record exceeds max_request_size")
        return await super().send(topic, value, key=key, headers=headers)


def test_a_record_too_large_mid_batch_does_not_lose_the_records_after_it() -> None:
    """One record too large for Kafka in a batch: the others are still produced, and 413 names the refused one."""
    sender = _TooLargeSecond()
    with TestClient(create_app(Intake(intake_settings(), sender))) as client:
        body = orjson.dumps([_splunk_on("host-a"), _splunk_on("host-b"), _splunk_on("host-c")])
        answer = client.post("/v1/events/dd", content=body, headers=_bearer())
    assert answer.status_code == 413
    assert "record 2 " in answer.json()["detail"]
    assert "host-b" in answer.json()["detail"]
    assert [key.rsplit(b":", 1)[-1] for _, _, key, _ in sender.sent] == [b"host-a", b"host-c"]


def test_an_alertmanager_group_over_several_keys_inside_an_array_is_split_per_key(
        client: TestClient, sender: FakeSender) -> None:
    """An array holding a multi-key Alertmanager group and a Splunk alert: every record holds one incident key."""
    doc = orjson.loads(corpus("alertmanager"))
    doc["alerts"][1]["labels"]["host"] = "orion"
    answer = client.post("/v1/events/dd", content=orjson.dumps([doc, _splunk_on("host-a")]), headers=_bearer())
    assert answer.status_code == 202
    assert len(_one_key_per_record(sender)) == 3


def test_an_incident_key_over_1_kib_is_hashed_into_the_kafka_key(client: TestClient, sender: FakeSender) -> None:
    """A payload-chosen incident key over 1 KiB becomes its SHA-256 as the Kafka key (it only routes)."""
    body = orjson.dumps(_splunk_on("h" * 5000))
    assert client.post("/v1/events/dd", content=body, headers=_bearer()).status_code == 202
    key = sender.sent[0][2]
    assert key == b"sha256:" + hashlib.sha256(normalise(body)[0].incident_key.encode()).hexdigest().encode()
