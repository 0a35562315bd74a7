"""A GuardDuty IAMUser ML anomaly gets the same response whether GuardDuty's EventBridge event or Security Hub's
`Findings - Imported` event reports it: the same runbooks, none of which contains the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.demo import eventbridge
from responder.models.event import Event
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.unit.test_source_consistency import _anomaly_copies

ROOT = Path(__file__).resolve().parents[2]
TACTICS = ("CredentialAccess", "InitialAccess", "DefenseEvasion", "Persistence", "PrivilegeEscalation", "Discovery",
           "Exfiltration", "Impact")
LABELS = {5: "MEDIUM"}


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


def _wrapped(gd_type: str, severity: int) -> dict[str, Event]:
    """The finding as GuardDuty's EventBridge event and as Security Hub's `Findings - Imported` event, decoded."""
    copies = _anomaly_copies(gd_type)
    native: dict[str, Any] = dict(copies["guardduty-general"].raw)
    native["severity"] = severity
    asff: dict[str, Any] = dict(copies["securityhub"].raw)
    asff["Severity"] = {"Label": LABELS[severity], "Normalized": severity * 10}
    asff["FindingProviderFields"] = {**asff["FindingProviderFields"],
                                     "Severity": {"Label": LABELS[severity], "Original": str(severity)}}
    imported = {"version": "0", "id": "sh-eb-anomaly", "detail-type": "Security Hub Findings - Imported",
                "source": "aws.securityhub", "account": native["accountId"], "time": native["updatedAt"],
                "region": native["region"], "resources": [asff["ProductArn"]], "detail": {"findings": [asff]}}
    [gd], [sh] = decode_doc(orjson.loads(orjson.dumps(eventbridge(native)))), decode_doc(imported)
    return {"guardduty": gd, "securityhub": sh}


@pytest.mark.parametrize("severity", sorted(LABELS))
@pytest.mark.parametrize("tactic", TACTICS)
def test_guardduty_and_its_security_hub_copy_match_the_same_runbooks(tactic: str, severity: int,
                                                                      matcher: Matcher) -> None:
    """Native and Security-Hub-wrapped, the anomaly has the same category and severity, matches the same runbooks
    (anomalous-credential-use), and no matched step calls an AWS actuator (a verdict, not proof: page, not contain)."""
    events = _wrapped(f"{tactic}:IAMUser/AnomalousBehavior", severity)
    seen = {source: (event.threat and event.threat.category, event.severity.score,
                     sorted(m.runbook.id for m in matcher.match(event))) for source, event in events.items()}
    assert seen["guardduty"] == seen["securityhub"]
    assert seen["guardduty"][0] == "anomalous_credential_use"
    assert seen["guardduty"][2] == ["anomalous-credential-use"]
    for event in events.values():
        for match in matcher.match(event):
            assert not [s.actuator for s in match.runbook.steps if s.actuator.startswith("aws.")]
