"""`cloudtrail-logging-stopped` fires only when audit logging stopped; a narrowed or reconfigured trail (logging
still on) gets its own lower-severity notice from `cloudtrail-logging-changed`, never silence."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.models.runbook import Runbook
from responder.normalise import normalise
from responder.rules.matcher import Matcher
from tests.conftest import CORPUS
from tests.fakes import FakeIam
from tests.source_kit import upgraded

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "runbooks" / "examples"
SELECTORS = {"trailName": "management-events", "eventSelectors": [
    {"readWriteType": "WriteOnly", "includeManagementEvents": True, "dataResources": []}]}


@cache
def _books() -> list[Runbook]:
    return load_runbooks(ROOT / "runbooks", registry)


def _matched(raw: bytes) -> list[str]:
    return sorted({m.runbook.id for e in normalise(raw) for m in Matcher(_books()).match(e)})


def _call(name: str, params: dict[str, Any] | None = None) -> bytes:
    """The shipped StopLogging example (a Stratus detonation record) as CloudTrail call `name`."""
    doc: dict[str, Any] = orjson.loads((EXAMPLES / "cloudtrail-logging-stopped.json").read_bytes())
    doc["eventName"] = name
    if params is not None:
        doc["requestParameters"] = params
    return orjson.dumps(doc)


@pytest.mark.parametrize("name", ["StopLogging", "DeleteTrail"])
def test_a_stop_or_a_deleted_trail_fires_the_stopped_runbook(name: str) -> None:
    """StopLogging and DeleteTrail end logging: `cloudtrail-logging-stopped` (restart, contain, page)."""
    assert _matched(_call(name)) == ["cloudtrail-logging-stopped"]


def test_the_corpus_stop_logging_record_fires_the_stopped_runbook() -> None:
    """The Stratus Red Team StopLogging detonation log from the corpus still fires the stopped runbook."""
    raw = (CORPUS / "cloudtrail" / "stratus_cloudtrail_stoplogging.json").read_bytes()
    assert "cloudtrail-logging-stopped" in _matched(raw)
    assert "cloudtrail-logging-changed" not in _matched(raw)


@pytest.mark.parametrize(("name", "params"), [
    ("PutEventSelectors", SELECTORS),
    ("UpdateTrail", {"name": "management-events", "s3BucketName": "elsewhere-logs", "isMultiRegionTrail": False}),
])
def test_a_narrowed_or_reconfigured_trail_gets_the_change_notice(name: str, params: dict[str, Any]) -> None:
    """A narrowed or redirected trail gets the `cloudtrail-logging-changed` notice, not containment or a stop page."""
    [event] = normalise(_call(name, params))
    assert event.threat is not None
    assert event.threat.category == "audit_logging_changed"
    assert event.threat.techniques == ("T1562.008",)
    assert _matched(_call(name, params)) == ["cloudtrail-logging-changed"]


MANAGEMENT = {"field": "eventCategory", "equals": ["Management"]}
BLINDING = {  # what is left logs no write management call: the trail still reports logging, blinded
    "management excluded (Stratus Red Team cloudtrail-event-selectors)": {"eventSelectors": [
        {"readWriteType": "All", "includeManagementEvents": False,
         "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::"]}]}]},
    "reads only": {"eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": True}]},
    "no selector": {"eventSelectors": []},
    "advanced, management reads only": {"advancedEventSelectors": [
        {"name": "reads", "fieldSelectors": [MANAGEMENT, {"field": "readOnly", "equals": ["true"]}]}]},
    "advanced, data events only": {"advancedEventSelectors": [{"fieldSelectors": [
        {"field": "eventCategory", "equals": ["Data"]}, {"field": "resources.type", "equals": ["AWS::S3::Object"]}]}]},
    "request not recorded": None,
}
NARROWING = {  # write management calls still logged
    "writes only": SELECTORS,
    "defaults": {"eventSelectors": [{"dataResources": []}]},
    "advanced, one source excluded": {"advancedEventSelectors": [{"fieldSelectors": [
        MANAGEMENT, {"field": "eventSource", "notEquals": ["rdsdata.amazonaws.com"]}]}]},
    "advanced, writes only": {"advancedEventSelectors": [{"fieldSelectors": [
        MANAGEMENT, {"field": "readOnly", "equals": ["false"]}]}]},
}


@pytest.mark.parametrize("params", list(BLINDING.values()), ids=list(BLINDING))
def test_selectors_that_log_no_write_management_call_are_a_stop(params: dict[str, Any] | None) -> None:
    """PutEventSelectors logging no write management call is a stop: the stopped runbook, not the change notice."""
    doc = orjson.loads(_call("PutEventSelectors", {"trailName": "management-events", **(params or {})}))
    if params is None:
        del doc["requestParameters"]
    [event] = normalise(orjson.dumps(doc))
    assert event.threat is not None
    assert event.threat.category == "defense_evasion_logging"
    assert _matched(orjson.dumps(doc)) == ["cloudtrail-logging-stopped"]


@pytest.mark.parametrize("params", list(NARROWING.values()), ids=list(NARROWING))
def test_selectors_that_still_log_write_management_calls_are_a_change(params: dict[str, Any]) -> None:
    """Selectors that still log write management calls (fewer reads, a source excluded, defaults) are the notice."""
    assert _matched(_call("PutEventSelectors", {"trailName": "management-events", **params})) == [
        "cloudtrail-logging-changed"]


def test_a_failed_narrowing_fires_nothing() -> None:
    """A PutEventSelectors CloudTrail refused (errorCode) changed nothing: no notice."""
    doc = orjson.loads(_call("PutEventSelectors", SELECTORS))
    doc["errorCode"] = "AccessDenied"
    assert _matched(orjson.dumps(doc)) == []


def _datadog(rule: str) -> bytes:
    doc: dict[str, Any] = copy.deepcopy(orjson.loads(
        (EXAMPLES / "by-source" / "training-data-bucket-public.datadog.json").read_bytes()))
    signal = doc["detail"]["meta"]["signal"]
    signal["rule"]["name"] = signal["title"] = rule
    signal["rule"]["group_by_fields"] = {"@userIdentity.arn": "arn:aws:iam::671642278147:user/ci-deployer"}
    doc["detail"]["tags"] = ["source:cloudtrail", "tactic:TA0005-defense-evasion", "technique:T1562-impair-defenses"]
    return orjson.dumps(doc)


def test_a_configuration_modified_siem_alert_is_a_stop() -> None:
    """Datadog's "AWS CloudTrail configuration modified" signal is a stop (contain, high page), not a notice."""
    [event] = normalise(_datadog("AWS CloudTrail configuration modified"))
    assert event.threat is not None
    assert event.threat.category == "defense_evasion_logging"
    assert _matched(_datadog("AWS CloudTrail configuration modified")) == ["cloudtrail-logging-stopped"]


def test_the_change_notice_is_lower_severity_and_says_logging_is_still_on() -> None:
    """The change runbook only notifies, at a severity below the stopped runbook's page, and never says stopped."""
    by_id = {rb.id: rb for rb in _books()}
    changed, stopped = by_id["cloudtrail-logging-changed"], by_id["cloudtrail-logging-stopped"]
    assert [s.actuator for s in changed.steps] == ["notify.kafka.publish_message"]
    [notice] = changed.steps
    assert notice.with_["severity"] == "medium"
    assert "stopped" not in notice.with_["title"]
    assert {s.with_.get("severity") for s in stopped.steps if s.id == "notify-oncall"} == {"high"}


def test_the_stopped_runbook_is_version_2_since_its_match_narrowed() -> None:
    """cloudtrail-logging-stopped is version 2, no longer matching a PutEventSelectors that leaves writes logged."""
    assert {rb.id: rb.version for rb in _books()}["cloudtrail-logging-stopped"] == 2


async def test_an_incident_paged_under_version_1_is_not_paged_again_under_version_2() -> None:
    """An incident paged under runbook version 1 is not paged again when the next stop joins it under version 2."""
    iam = FakeIam()
    iam.add_key("ci-deployer", "AKIAEXAMPLESTOPLOG01")
    doc: dict[str, Any] = orjson.loads(_call("StopLogging", {}))  # no trail named: nothing to restart in FakeIam
    first = orjson.dumps(doc)
    doc["eventID"] = "stop-logging-after-the-upgrade"
    publisher, engine = await upgraded("cloudtrail-logging-stopped", first, orjson.dumps(doc), iam)
    assert len(publisher.sent) == 1
    assert len(engine.state.incidents.by_id) == 1
    results = [(e.body["step"], e.body["status"], e.body.get("changed")) for e in engine.recorder.entries()
               if e.kind == "step.result"]
    assert results == [("deactivate-key", "ok", True), ("notify-oncall", "ok", True), ("deactivate-key", "ok", False)]
    skipped = [(e.body["step"], e.body.get("reason")) for e in engine.recorder.entries() if e.kind == "step.skipped"]
    assert [step for step, _ in skipped] == ["restart-logging", "restart-logging", "notify-oncall"]  # no trail named
