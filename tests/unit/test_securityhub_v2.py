"""Security Hub's `Findings Imported V2` EventBridge event (OCSF findings): decoded, ruled out cheaply, and a
GuardDuty finding relayed through it classified and answered as GuardDuty's own.

The fixture tests/fixtures/events/securityhub_v2_guardduty.json is AWS's documented envelope
(docs.aws.amazon.com/securityhub/latest/userguide/securityhub-v2-cwe-event-formats.html, whose example leaves the
finding as `<finding content>`) around the OCSF 1.1 Detection Finding that ocsf/examples maps from a GuardDuty
finding in Security Hub (corpus ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json), with
`metadata.product.uid` as Security Hub says it for OCSF findings (`…::productv2/aws/guardduty`): AWS publishes no
complete V2 example. Its `finding_info.types` and key resource keep Security Lake's (ASFF-derived) spelling; the
spelling published V2 samples show (GuardDuty's type form, `AWS::IAM::AccessKey`) is tested in
test_securityhub_v2_shapes.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.errors import ValidationFailed
from responder.models.event import Event
from responder.normalise import decode_doc, head, normalise
from responder.normalise.registry import detect
from responder.rules.matcher import Matcher
from tests.findings import rescore_ocsf, retype_ocsf
from tests.source_kit import (
    ANOMALIES,
    ANOMALY_KEY,
    FIXTURE,
    ROOT,
    anomaly_copies,
    head_equals_full,
    notify_runbook,
    principal_of,
    sound,
    v2_event,
)

GUARDDUTY_V2 = "arn:aws:securityhub:us-east-2::productv2/aws/guardduty"


def test_a_v2_event_is_decoded_as_the_ocsf_finding_it_carries() -> None:
    """A Security Hub V2 event decodes to the OCSF finding it carries, with the envelope's detail-type and id."""
    doc = v2_event()
    assert detect(doc).name == "securityhub.v2"
    [event] = normalise(FIXTURE.read_bytes())
    [bare] = decode_doc(doc["detail"]["findings"][0])
    assert event.source == "ocsf"
    assert event.id == doc["detail"]["findings"][0]["finding_info"]["uid"]
    assert (event.type, event.severity, event.threat, event.account, event.region) == (
        bare.type, bare.severity, bare.threat, "111111111111", "us-east-2")
    assert event.threat is not None
    assert event.threat.category == "defense_evasion_logging"
    assert principal_of(event) == principal_of(bare)
    assert (event.attributes["detail_type"], event.attributes["envelope_id"]) == ("Findings Imported V2",
                                                                                 "CWE-event-id")


def test_each_finding_of_a_v2_event_is_its_own_event() -> None:
    """Two findings in detail.findings give two events, each keyed on its own finding_info.uid."""
    first, second = v2_event()["detail"]["findings"][0], v2_event()["detail"]["findings"][0]
    second["finding_info"]["uid"] = "arn:aws:guardduty:us-east-2:111111111111:detector/d/finding/other"
    events = decode_doc(v2_event(first, second))
    assert [e.id for e in events] == [first["finding_info"]["uid"], second["finding_info"]["uid"]]


def test_the_envelope_fills_only_what_the_finding_does_not_name() -> None:
    """A finding without cloud.account or cloud.region takes the envelope's; the finding's own always win."""
    finding = v2_event()["detail"]["findings"][0]
    doc = v2_event(finding)
    doc["account"], doc["region"] = "999999999999", "eu-west-1"
    [own] = decode_doc(doc)
    assert (own.account, own.region) == ("111111111111", "us-east-2")
    del finding["cloud"]
    [filled] = decode_doc(v2_event(finding) | {"account": "999999999999", "region": "eu-west-1"})
    assert (filled.account, filled.region) == ("999999999999", "eu-west-1")


@pytest.mark.parametrize("findings", [[], ["not an object"], [{"class_uid": 2004}], [{"class_uid": 3002,
                                                                                        "metadata": {}}]])
def test_a_v2_event_without_an_ocsf_finding_is_a_clear_validation_failure(findings: list[Any]) -> None:
    """A V2 event without a proper OCSF finding fails with ValidationFailed naming the format, never a crash."""
    doc = v2_event()
    doc["detail"]["findings"] = findings
    with pytest.raises(ValidationFailed, match=r"securityhub\.v2"):
        decode_doc(doc)


def test_security_hub_cspm_events_still_go_to_the_asff_decoder() -> None:
    """`Security Hub Findings - Imported` keeps its ASFF decoder; a topic pinned to `securityhub` takes V2 too."""
    cspm = orjson.loads((ROOT / "tests/fixtures/events/securityhub_imported_mismatch.json").read_bytes())
    assert detect(cspm).name == "securityhub.eventbridge"
    assert detect(v2_event(), "securityhub").name == "securityhub.v2"
    assert decode_doc(v2_event(), "securityhub")[0].source == "ocsf"


def test_the_v2_head_equals_the_full_event() -> None:
    """A one-finding V2 event's head equals its decoded event's, and a two-finding event has no head."""
    doc = v2_event()
    assert head(doc) is not None
    head_equals_full(doc)
    assert head(v2_event(doc["detail"]["findings"][0], doc["detail"]["findings"][0])) is None


def test_an_unmatched_v2_event_is_ruled_out_by_its_head() -> None:
    """A V2 event's head alone rules out a Low finding for a runbook of severity 5 or more, but not a Medium copy."""
    rb = notify_runbook({"source": "ocsf", "conditions": [{"field": "event.severity.score", "op": "ge", "value": 5}]})
    low = v2_event()
    medium = v2_event()
    rescore_ocsf(medium["detail"]["findings"][0], 3, "Medium")
    assert sound(Matcher([rb]), low)
    assert not sound(Matcher([rb]), medium)
    unmapped = v2_event()
    retype_ocsf(unmapped["detail"]["findings"][0], ["Software and Configuration Checks/Unmapped"])
    assert sound(Matcher(load_runbooks(ROOT / "runbooks", registry)), unmapped)  # no shipped runbook: ruled out


def _v2_copy(gd_type: str) -> Event:
    """The OCSF copy of the GuardDuty ML anomaly (`anomaly_copies`) relayed in a V2 event, as Security Hub names
    GuardDuty's product for OCSF findings, decoded."""
    finding = anomaly_copies(gd_type)["ocsf"].raw
    finding["metadata"]["product"]["uid"] = GUARDDUTY_V2
    [event] = decode_doc(v2_event(finding))
    return event


@pytest.mark.parametrize("gd_type", sorted(ANOMALIES))
def test_a_guardduty_ml_anomaly_as_native_asff_and_v2_matches_the_same_runbooks(gd_type: str) -> None:
    """GuardDuty's ML anomaly as native, ASFF and V2 findings gets the same category, runbooks and key."""
    matcher = Matcher(load_runbooks(ROOT / "runbooks", registry))
    events = {**anomaly_copies(gd_type), "securityhub-v2": _v2_copy(gd_type)}
    found = {lane: ([m.runbook.id for m in matcher.match(e)], e.threat and e.threat.category, principal_of(e)[:3])
             for lane, e in events.items()}
    expected = (["anomalous-credential-use"], "anomalous_credential_use", (ANOMALY_KEY, "ml-training", "IAMUser"))
    assert found == dict.fromkeys(found, expected)


def test_a_v2_guardduty_ml_anomaly_naming_t1078_is_never_contained() -> None:
    """A V2-relayed GuardDuty ML anomaly naming T1078.004 pages via anomalous-credential-use, no actuator run."""
    finding = anomaly_copies("CredentialAccess:IAMUser/AnomalousBehavior")["ocsf"].raw
    finding["metadata"]["product"]["uid"] = GUARDDUTY_V2
    finding["finding_info"]["attacks"] = [{"technique": {"uid": "T1078.004", "name": "Cloud Accounts"}}]
    [event] = decode_doc(v2_event(finding))
    assert event.threat is not None
    assert event.threat.category == "anomalous_credential_use"
    matches = Matcher(load_runbooks(ROOT / "runbooks", registry)).match(event)
    assert [m.runbook.id for m in matches] == ["anomalous-credential-use"]
    assert not [s for m in matches for s in m.runbook.steps if s.actuator.startswith("aws.")]
