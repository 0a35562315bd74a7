"""A GuardDuty IAMUser ML anomaly gets the same response whether GuardDuty's EventBridge event or Security Hub's
`Findings - Imported` event reports it: the same runbooks, none of which contains the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.catalog import load_runbooks
from responder.demo import eventbridge
from responder.engine import Engine
from responder.engine.approvals import MemoryPublisher
from responder.models import RawRecord
from responder.models.event import Event
from responder.normalise import decode_doc
from responder.pipeline import Pipeline
from responder.rules.matcher import Matcher
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.source_kit import anomaly_copies

ROOT = Path(__file__).resolve().parents[2]
TACTICS = ("CredentialAccess", "InitialAccess", "DefenseEvasion", "Persistence", "PrivilegeEscalation", "Discovery",
           "Exfiltration", "Impact")
LABELS = {2: "LOW", 5: "MEDIUM"}


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


def _wrapped(gd_type: str, severity: int) -> dict[str, Event]:
    """The finding as GuardDuty's EventBridge event and as Security Hub's `Findings - Imported` event, decoded."""
    copies = anomaly_copies(gd_type)
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
    """A GuardDuty anomaly and its Security Hub copy match the same runbooks, none calling an AWS actuator."""
    events = _wrapped(f"{tactic}:IAMUser/AnomalousBehavior", severity)
    seen = {source: (event.threat and event.threat.category, event.severity.score,
                     sorted(m.runbook.id for m in matcher.match(event))) for source, event in events.items()}
    assert seen["guardduty"] == seen["securityhub"]
    assert seen["guardduty"][0] == "anomalous_credential_use"
    assert seen["guardduty"][2] == ["anomalous-credential-use"]
    for event in events.values():
        for match in matcher.match(event):
            assert not [s.actuator for s in match.runbook.steps if s.actuator.startswith("aws.")]


async def _notified(matcher: Matcher, key: str, *severities: float, restart: bool = False,
                    upgrade: bool = False) -> list[dict[str, Any]]:
    """The notifications the shipped runbooks send for the Discovery anomaly example on access key `key`, one
    distinct finding per score in `severities`, in order (one incident: the same key, minutes apart); `restart`: a
    new engine, its state replayed from the timeline, takes each finding after the first; `upgrade`: with each
    runbook's next version (a deploy)."""
    publisher, store = MemoryPublisher(), MemoryStore()
    engine = Engine(Recorder(store), registry, FakeIam(), context=ActuationContext(aws=FakeIam(), publisher=publisher))
    runbooks = matcher.runbooks
    pipeline = Pipeline(runbooks, engine)
    for n, severity in enumerate(severities):
        if restart and n:
            engine.recorder.flush_sync()  # what a stopping service makes durable
            engine = Engine(Recorder(store), registry, FakeIam(),
                            context=ActuationContext(aws=FakeIam(), publisher=publisher))
            engine.recover()
            if upgrade:
                runbooks = [rb.model_copy(update={"version": rb.version + n}) for rb in matcher.runbooks]
            engine.use_runbooks(runbooks)
            pipeline = Pipeline(runbooks, engine)
        doc = orjson.loads((ROOT / "runbooks/examples/anomalous-credential-use.json").read_bytes())
        doc.update(type="Discovery:IAMUser/AnomalousBehavior", severity=severity, id=f"anomaly-{key}-{n}",
                   updatedAt=f"2026-11-25T10:0{n}:00.000Z")
        doc["resource"]["accessKeyDetails"]["accessKeyId"] = key
        await pipeline.handle(RawRecord(topic="alerts", value=orjson.dumps(doc)))
    return [orjson.loads(value) for _, _, value in publisher.sent]


@pytest.mark.parametrize(("severity", "expected"), [(1.0, "low"), (2.0, "low"), (3.9, "low"), (4.0, "high"),
                                                    (8.0, "high")])
async def test_an_anomaly_below_medium_sends_a_low_urgency_notification_not_silence(severity: float, expected: str,
                                                                                   matcher: Matcher) -> None:
    """A Low anomaly sends one `low` triage notification and a Medium or higher one pages, never both nor nothing."""
    sent = await _notified(matcher, f"AKIAEXAMPLEKEY{int(severity * 10):06d}", severity)
    assert [body["severity"] for body in sent] == [expected]
    assert sent[0]["fields"]["finding"] == "Discovery:IAMUser/AnomalousBehavior"


@pytest.mark.parametrize(("severities", "expected"), [((2.0, 5.0), ["low", "high"]), ((5.0, 6.0), ["high"]),
                                                      ((2.0, 3.0), ["low"])])
async def test_a_medium_anomaly_joining_a_low_ones_incident_still_pages(severities: tuple[float, float],
                                                                        expected: list[str],
                                                                        matcher: Matcher) -> None:
    """A Medium anomaly joining a Low one's incident pages on-call; a second one of the same kind notifies nobody."""
    key = f"AKIAJOINEDKEY{int(severities[0] * 10):02d}{int(severities[1] * 10):02d}000"
    sent = await _notified(matcher, key, *severities)
    assert [body["severity"] for body in sent] == expected
    assert len({body["incident"] for body in sent}) == 1


@pytest.mark.parametrize(("severities", "expected"), [((5.0, 2.0), ["high"]), ((5.0, 2.0, 3.0), ["high"]),
                                                      ((2.0, 5.0, 3.0), ["low", "high"])])
@pytest.mark.parametrize("restart", [False, True], ids=["live", "restarted"])
async def test_a_low_anomaly_joining_a_paged_incident_sends_no_triage_note(severities: tuple[float, ...],
                                                                          expected: list[str], restart: bool,
                                                                          matcher: Matcher) -> None:
    """A Low anomaly joining an incident that already paged sends no triage note, also after a restart."""
    key = "AKIAPAGEDKEY" + "".join(f"{int(s * 10):02d}" for s in severities).ljust(7, "0") + str(int(restart))
    sent = await _notified(matcher, key, *severities, restart=restart)
    assert [body["severity"] for body in sent] == expected
    assert len({body["incident"] for body in sent}) == 1


async def test_the_triage_note_claims_only_what_it_knows(matcher: Matcher) -> None:
    """The Low note says this finding pages nobody, never that nobody was paged for the incident."""
    [note] = await _notified(matcher, "AKIATRIAGENOTE000001", 2.0)
    assert note["severity"] == "low"
    assert "nobody paged" not in note["title"]
    assert "pages nobody" in note["title"]


@pytest.mark.parametrize("severities", [(5.0, 6.0), (5.0, 2.0)])
async def test_an_incident_that_paged_under_an_older_version_is_not_paged_again_after_an_upgrade(
        severities: tuple[float, ...], matcher: Matcher) -> None:
    """An incident paged under a runbook's older version is not paged again when a finding joins after an upgrade."""
    key = "AKIAUPGRADE" + "".join(f"{int(s * 10):02d}" for s in severities).ljust(9, "0")
    sent = await _notified(matcher, key, *severities, restart=True, upgrade=True)
    assert [body["severity"] for body in sent] == ["high"]
