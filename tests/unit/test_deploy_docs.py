"""The SIEM configuration examples in docs/deploying.md are valid and produce payloads the intake decodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from responder.normalise import normalise

DOC = (Path(__file__).resolve().parents[2] / "docs" / "deploying.md").read_text()
DATADOG_VARS = {"$ID": "7054735012425627419", "$DATE": "1651270209000", "$ALERT_TYPE": "error",
                "$EVENT_TITLE": "[Critical] Access key used from a new ASN", "$SECURITY_SIGNAL_ID": "AAAAAYA",
                "$SECURITY_SIGNAL_TITLE": "Access key used from a new ASN", "$SECURITY_SIGNAL_SEVERITY": "high",
                "$SECURITY_RULE_ID": "abc-def-123", "$SECURITY_RULE_NAME": "Access key used from a new ASN",
                "$SECURITY_RULE_TYPE": "log_detection"}


def _block(language: str, containing: str) -> str:
    return next(b for b in re.findall(rf"```{language}\n(.*?)```", DOC, re.S) if containing in b)


def test_datadog_payload_template_decodes_as_a_datadog_signal() -> None:
    """The documented Datadog webhook template, rendered with sample values, decodes as a datadog event."""
    template = _block("json", "Datadog Alert Notification")
    for name in sorted(DATADOG_VARS, key=len, reverse=True):
        template = template.replace(name, DATADOG_VARS[name])
    [event] = normalise(template.encode())
    assert event.source == "datadog"
    assert event.type == "Access key used from a new ASN"
    assert event.severity.score >= 7


def test_alertmanager_and_sentinel_examples_parse() -> None:
    """The Alertmanager receiver is YAML with a bearer credential; the Logic App action is JSON posting the trigger."""
    am = yaml.safe_load(_block("yaml", "webhook_configs"))
    hook = am["receivers"][0]["webhook_configs"][0]
    assert hook["url"].endswith("/v1/events/alertmanager")
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    action = json.loads("{" + _block("json", "Post_to_responder") + "}")["Post_to_responder"]
    assert action["inputs"]["body"] == "@triggerBody()"
    assert action["inputs"]["uri"].endswith("/v1/events/sentinel")
