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
    """PutEventSelectors narrows what is logged, UpdateTrail redirects it: logging is still on, so no restart, no
    key deactivation, no "audit logging was stopped" page; `cloudtrail-logging-changed` tells on-call (before:
    PutEventSelectors fired the stopped runbook and UpdateTrail nothing)."""
    [event] = normalise(_call(name, params))
    assert event.threat is not None
    assert event.threat.category == "audit_logging_changed"
    assert event.threat.techniques == ("T1562.008",)
    assert _matched(_call(name, params)) == ["cloudtrail-logging-changed"]


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


def test_a_configuration_modified_siem_alert_is_a_change_notice() -> None:
    """Datadog's "AWS CloudTrail configuration modified" fires on any trail change (UpdateTrail, PutEventSelectors):
    the change notice, not a page saying audit logging was stopped."""
    assert _matched(_datadog("AWS CloudTrail configuration modified")) == ["cloudtrail-logging-changed"]


def test_the_change_notice_is_lower_severity_and_says_logging_is_still_on() -> None:
    """The change runbook only notifies, at a severity below the stopped runbook's page, and never says stopped."""
    by_id = {rb.id: rb for rb in _books()}
    changed, stopped = by_id["cloudtrail-logging-changed"], by_id["cloudtrail-logging-stopped"]
    assert [s.actuator for s in changed.steps] == ["notify.kafka.publish_message"]
    [notice] = changed.steps
    assert notice.with_["severity"] == "medium"
    assert "stopped" not in notice.with_["title"]
    assert {s.with_.get("severity") for s in stopped.steps if s.id == "notify-oncall"} == {"high"}
