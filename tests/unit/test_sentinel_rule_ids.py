"""A runbook keyed on a Sentinel incident's analytics rule id (read-only in Sentinel) is not moved by its title,
which incident editors can change (docs/threat-model.md)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = ROOT / "runbooks/examples/by-source/access-key-compromise.sentinel.json"


def _pinned_runbooks(tmp_path: Path, rule_id: str) -> Path:
    """The shipped access-key-compromise runbook, a Sentinel event also needing the incident's analytics rule id."""
    text = (ROOT / "runbooks/access-key-compromise.yaml").read_text()
    anchor = "    - {field: event.source, op: ne, value: guardduty}\n"
    pinned = ("    - any:\n        - {field: event.source, op: ne, value: sentinel}\n"
              f'        - {{field: event.attributes.analytic_rule_ids, op: contains, value: "{rule_id}"}}\n')
    assert anchor in text
    (tmp_path / "access-key-compromise.yaml").write_text(text.replace(anchor, anchor + pinned, 1))
    return tmp_path


def _matched(books_dir: Path, doc: dict[str, Any]) -> list[str]:
    [event] = decode_doc(doc)
    return [m.runbook.id for m in Matcher(load_runbooks(books_dir, registry)).match(event)]


def test_a_retitled_incident_of_another_rule_does_not_match_a_rule_pinned_runbook(tmp_path: Path) -> None:
    """An incident renamed "AWS access key exposed" matches the shipped runbook, not one pinned to the rule's id."""
    genuine = orjson.loads(INCIDENT.read_bytes())
    [rule_id] = genuine["object"]["properties"]["relatedAnalyticRuleIds"]
    forged = copy.deepcopy(genuine)
    forged["object"]["properties"]["title"] = "AWS access key exposed in a public repository"
    forged["object"]["properties"]["relatedAnalyticRuleIds"] = [rule_id.rsplit("/", 1)[0] + "/benign-rule"]
    assert _matched(ROOT / "runbooks", forged).count("access-key-compromise") == 1  # the title alone classifies
    pinned = _pinned_runbooks(tmp_path, rule_id)
    assert _matched(pinned, forged) == []
    assert _matched(pinned, genuine) == ["access-key-compromise"]


def test_pinning_sentinel_incidents_to_a_rule_leaves_the_other_sources_matching(tmp_path: Path) -> None:
    """The narrowing the threat model gives keeps the runbook matching the Security Hub example it matched before."""
    other = orjson.loads((ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json").read_bytes())
    assert _matched(ROOT / "runbooks", other) == ["access-key-compromise"]
    assert _matched(_pinned_runbooks(tmp_path, "/subscriptions/x/alertRules/y"), other) == ["access-key-compromise"]


def _alert(rule_name: str | None = None, product: str = "Azure Sentinel",
           alert_type: str = "7c1d9a40-3b2e-4f55-a1d8-0e6c2f9b8a77") -> dict[str, Any]:
    """The fixture's Sentinel alert as a scheduled rule raises it: its alertType the rule's id, its rule's name."""
    doc: dict[str, Any] = orjson.loads((ROOT / "tests/fixtures/events/sentinel_alert_entities.json").read_bytes())
    props = doc["value"][0]["properties"]
    props.update(alertType=alert_type, productName=product)
    if rule_name is not None:
        props.setdefault("additionalData", {})["Analytic Rule Name"] = rule_name
    return doc


def _category(doc: dict[str, Any]) -> str | None:
    [event] = decode_doc(doc)
    return None if event.threat is None else str(event.threat.category)


def test_a_scheduled_rule_s_alert_is_classified_by_the_rule_s_name() -> None:
    """A Sentinel rule's alert whose alertType is the rule's id is classified by `Analytic Rule Name`, and acted on."""
    doc = _alert("AWS access key exposed on a public repository")
    assert _category(doc) == "credential_compromise"
    assert _matched(ROOT / "runbooks", doc) == ["access-key-compromise"]


@pytest.mark.parametrize(("doc", "why"), [
    (_alert(), "the display name alone (an alert details override can build it from logged text)"),
    (_alert("AWS access key exposed on a public repository", product="Microsoft Defender for Cloud"),
     "another product's alert"),
])
def test_an_alert_is_not_classified_by_what_logged_text_or_another_product_names(doc: dict[str, Any],
                                                                                  why: str) -> None:
    """Neither an alert's display name nor another product's rule name classifies a Sentinel alert."""
    assert _category(doc) is None, why


def test_the_alert_type_wins_over_the_rule_name() -> None:
    """An alert whose alertType classifies keeps that threat whatever its rule name says."""
    doc = _alert("AWS access key exposed on a public repository", alert_type="AWS CloudTrail logging disabled")
    assert _category(doc) == "defense_evasion_logging"


def test_a_custom_detail_named_like_the_rule_name_does_not_classify() -> None:
    """A query column surfaced as custom detail `Analytic Rule Name` is logged text: it classifies nothing."""
    doc = _alert()
    props = doc["value"][0]["properties"]
    props["customDetails"]["Analytic Rule Name"] = ["AWS access key exposed on a public repository"]
    props.setdefault("additionalData", {})["Custom Details"] = {"Analytic Rule Name": ["AWS leaked access key"]}
    assert _category(doc) is None


def test_an_incident_is_not_classified_by_a_rule_name() -> None:
    """The rule-name fallback is for alerts: an incident carrying a Sentinel product and rule name keeps no threat."""
    doc = orjson.loads(INCIDENT.read_bytes())
    props = doc["object"]["properties"]
    props.update(title="Benign rule", productName="Azure Sentinel")
    props["additionalData"]["Analytic Rule Name"] = "AWS access key exposed on a public repository"
    assert _category(doc) is None


def test_techniques_decide_before_the_rule_name() -> None:
    """An alert's own technique ids classify it first, whatever its rule name says."""
    doc = _alert("AWS access key exposed on a public repository")
    doc["value"][0]["properties"]["techniques"] = ["T1562.008"]
    assert _category(doc) == "defense_evasion_logging"
