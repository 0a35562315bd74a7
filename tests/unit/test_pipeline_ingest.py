"""The pipeline's ingest edge: per-topic formats, signatures before anything acts, and the counters."""

from __future__ import annotations

import orjson
import pytest

from responder.actuators import registry
from responder.auth import signed_headers
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.errors import AuthenticationFailed, TooLarge
from responder.ingest.authn import RecordAuthenticator
from responder.models.event import RawRecord
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding

KEY = "AKIAABCDEFGHIJKLMNOP"


def _pipeline(iam: FakeIam, runbooks_dir, **kwargs) -> Pipeline:
    engine = Engine(Recorder(MemoryStore()), registry, iam)
    engine.recover()
    return Pipeline(load_runbooks(runbooks_dir, registry), engine, **kwargs)


async def test_forced_topic_format_decodes_what_detection_would_refuse(runbooks_dir):
    """A topic mapped to `cloudtrail` decodes a minimal record that has no other recognisable shape."""
    p = _pipeline(FakeIam(), runbooks_dir, topic_formats={"trail": "cloudtrail"})
    record = orjson.dumps({"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": 1764064800})
    await p.handle(RawRecord(topic="trail", value=record, timestamp_ms=1764064800000))
    assert p.metrics.value("responder_events_total", source="cloudtrail") == 1


async def test_unsigned_finding_from_a_required_source_never_acts(runbooks_dir):
    """An unsigned GuardDuty finding is refused before matching; the same bytes signed act once."""
    iam = FakeIam()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, runbooks_dir, authenticator=RecordAuthenticator({"k": "s"}, require=["guardduty"]))
    body = envelope_bytes(guardduty_finding(KEY))
    with pytest.raises(AuthenticationFailed):
        await p.handle(RawRecord(topic="alerts", value=body))
    assert iam.count("update_access_key") == 0
    await p.handle(RawRecord(topic="alerts", value=body, headers=tuple(signed_headers("k", b"s", body))))
    assert iam.count("update_access_key") == 1
    assert p.metrics.value("responder_records_authenticated_total", key_id="k") == 1
    assert p.metrics.value("responder_events_matched_total") == 1


async def test_a_key_bound_to_one_source_cannot_sign_another(runbooks_dir):
    """A key issued to the falco producer cannot sign a GuardDuty finding; the GuardDuty key can."""
    iam = FakeIam()
    iam.add_key("ml-training", KEY)
    auth = RecordAuthenticator({"falco-k": "s1", "gd-k": "s2"}, require=["guardduty"],
                               bindings={"falco-k": ["falco"], "gd-k": ["guardduty", "securityhub"]})
    p = _pipeline(iam, runbooks_dir, authenticator=auth)
    body = envelope_bytes(guardduty_finding(KEY))
    with pytest.raises(AuthenticationFailed, match="falco-k"):
        await p.handle(RawRecord(topic="alerts", value=body, headers=tuple(signed_headers("falco-k", b"s1", body))))
    assert iam.count("update_access_key") == 0
    await p.handle(RawRecord(topic="alerts", value=body, headers=tuple(signed_headers("gd-k", b"s2", body))))
    assert iam.count("update_access_key") == 1


def test_settings_bind_signing_keys_to_sources():
    """`event_signing_key_sources` must name configured keys; the service builds the bound authenticator."""
    from responder.errors import ConfigError
    from responder.service import authenticator_from
    from responder.settings import Settings

    auth = authenticator_from(Settings(event_signing_keys={"k": "s"}, event_signing_key_sources={"k": ["falco"]}))
    assert auth.bindings == {"k": frozenset({"falco"})}
    with pytest.raises(ConfigError, match="RESPONDER_EVENT_SIGNING_KEY_SOURCES"):
        authenticator_from(Settings(event_signing_key_sources={"nope": ["falco"]}))


async def test_oversized_record_is_refused_before_it_is_parsed_or_verified(runbooks_dir):
    """A record over the limit raises TooLarge even on a topic that requires signatures."""
    p = _pipeline(FakeIam(), runbooks_dir, max_record_bytes=100, authenticator=RecordAuthenticator(require=["*"]))
    with pytest.raises(TooLarge):
        await p.handle(RawRecord(topic="alerts", value=b"{" + b" " * 200 + b"}"))


@pytest.mark.parametrize("stamp", [1_764_064_800_000_000, 2**62, -(2**62)])
async def test_a_record_timestamp_out_of_datetime_range_still_acts(runbooks_dir, stamp):
    """A finding whose Kafka timestamp a producer set in µs (or any int64) acts as usual, not dead-lettered."""
    iam = FakeIam()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, runbooks_dir)
    await p.handle(RawRecord(topic="alerts", value=envelope_bytes(guardduty_finding(KEY)), timestamp_ms=stamp))
    assert iam.count("update_access_key") == 1


async def _acted_at(runbooks_dir, stamp, headers=()):
    """A pipeline with the timeline metrics' sink (its clock at 1,764,064,800 s) after one GuardDuty finding whose
    Kafka timestamp is `stamp` acted, its entries flushed; and the fake IAM it acted on."""
    from responder.metrics import TimelineMetrics

    iam = FakeIam()
    iam.add_key("ml-training", KEY)
    p = _pipeline(iam, runbooks_dir)
    sink = TimelineMetrics(p.metrics, clock=lambda: 1_764_064_800.0)
    p.engine.recorder.observers.append(sink.observe)
    p.engine.recorder.sinks.append(sink)
    await p.handle(RawRecord(topic="alerts", value=envelope_bytes(guardduty_finding(KEY)), timestamp_ms=stamp,
                             headers=headers))
    await p.engine.recorder.flush()
    return p, iam


@pytest.mark.parametrize(("stamp", "headers"), [
    (-1, ()),  # no time (an old format's -1)
    (2**62, ()),  # µs by mistake: past year 9999
    (1_763_000_000_000, (("responder-replay-of", b"responder.deadletter:0:3"),)),  # a replay: the original's time
])
async def test_an_out_of_range_timestamp_gives_no_alert_to_dispatch_sample(runbooks_dir, stamp, headers):
    """A record with an out-of-range Kafka timestamp acts but adds no alert-to-dispatch latency sample."""
    p, iam = await _acted_at(runbooks_dir, stamp, headers)
    assert iam.count("update_access_key") == 1
    assert p.metrics.value("responder_alert_to_dispatch_seconds_count") == 0


async def test_a_record_s_timestamp_gives_one_alert_to_dispatch_sample_from_its_time(runbooks_dir):
    """Each step intent of an acting record gives one alert → dispatch sample: its durable time less the Kafka time."""
    p, _ = await _acted_at(runbooks_dir, 1_764_064_797_500)
    intents = sum(1 for e in p.engine.recorder.entries() if e.kind == "step.intent")
    assert intents >= 1
    assert p.metrics.value("responder_alert_to_dispatch_seconds_count") == intents
    assert p.metrics.value("responder_alert_to_dispatch_seconds_sum") == 2.5 * intents
