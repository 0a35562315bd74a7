"""A signature required per source guards only that source: start-up warns naming the acting runbooks an unsigned
record of another source (a GuardDuty finding wrapped as Security Hub or OCSF) still triggers, and a runbook can
require a signed record itself (`require_signature: true`); since 2026-12-07."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from responder.actuators import registry
from responder.auth import signed_headers
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.errors import AuthenticationFailed
from responder.fleet_digest import digested_runbook, fleet_digest
from responder.ingest.authn import RecordAuthenticator
from responder.models.event import RawRecord
from responder.models.runbook import Runbook
from responder.pipeline import Pipeline
from responder.service.wiring import warn_unsigned_triggers
from responder.settings import Settings
from responder.tabletop.replay import backtest, difference
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding

EVENTS = Path(__file__).parents[1] / "fixtures" / "events"
WARNING = "signature_requirement_bypassable"


def _warnings(books: list[Runbook], **settings: object) -> list[dict[str, object]]:
    with capture_logs() as logs:
        warn_unsigned_triggers(Settings(**settings), books, registry)  # type: ignore[arg-type]
    return [e for e in logs if e["event"] == WARNING]


def test_a_per_source_requirement_warns_naming_the_runbooks_and_the_unguarded_sources(runbooks_dir):
    """`["guardduty"]`: one warning naming credential-exfiltration (securityhub, ocsf), cloudtrail-logging-stopped."""
    [warned] = _warnings(load_runbooks(runbooks_dir, registry), require_signature=["guardduty"])
    assert warned["log_level"] == "warning"
    assert warned["setting"] == "RESPONDER_REQUIRE_SIGNATURE"
    reach = warned["runbooks"]
    assert isinstance(reach, dict)
    assert {"securityhub", "ocsf"} <= set(reach["credential-exfiltration"])
    assert "ocsf" in reach["cloudtrail-logging-stopped"]
    assert "guardduty" not in warned["unguarded_sources"]  # type: ignore[operator]
    assert "model-monitor-violation" not in reach  # it only notifies: it changes nothing


@pytest.mark.parametrize("settings", [
    {"require_signature": ["*"]},
    {"require_signature": ["security.alerts", "ml.drift"]},  # every topic consumed
    {"require_signature": []},  # signatures not asked for at all: nothing to warn about
])
def test_no_warning_when_every_record_must_be_signed_or_none(runbooks_dir, settings):
    """`*`, every consumed topic, or an empty list: no warning."""
    assert _warnings(load_runbooks(runbooks_dir, registry), **settings) == []


def test_a_topic_pinned_to_a_format_carries_only_its_sources(runbooks_dir):
    """Requiring `security.alerts` with `ml.drift` pinned to the drift format leaves only drift runbooks named."""
    [warned] = _warnings(load_runbooks(runbooks_dir, registry), require_signature=["security.alerts"],
                         topic_formats={"ml.drift": "responder.drift"})
    assert warned["unguarded_sources"] == ["responder.drift"]


def test_a_runbook_requiring_a_signature_or_not_acting_is_not_named(runbooks_dir):
    """A runbook with `require_signature: true`, one in dry_run and one that only notifies are left out."""
    books = {rb.id: rb for rb in load_runbooks(runbooks_dir, registry)}
    exfil = books["credential-exfiltration"]
    chosen = [exfil.model_copy(update={"require_signature": True}),
              books["cloudtrail-logging-stopped"].model_copy(update={"mode": "dry_run"}),
              exfil.model_copy(update={"id": "notify-only", "steps": exfil.steps[1:]})]
    assert _warnings(chosen, require_signature=["guardduty"]) == []


def _pipeline(runbooks_dir: Path, signed_only: str) -> Pipeline:
    books = [rb.model_copy(update={"require_signature": True}) if rb.id == signed_only else rb
             for rb in load_runbooks(runbooks_dir, registry)]
    engine = Engine(Recorder(MemoryStore()), registry, FakeIam())
    engine.recover()
    return Pipeline(books, engine, authenticator=RecordAuthenticator({"k": "s"}, require=["guardduty"]))


def test_a_runbook_requiring_a_signature_refuses_the_unsigned_security_hub_form(runbooks_dir):
    """The repro's unsigned Security Hub finding is refused (handle and batch paths); signed, it matches."""
    p = _pipeline(runbooks_dir, "credential-exfiltration")
    value = (EVENTS / "securityhub_imported_mismatch.json").read_bytes()
    unsigned = RawRecord(topic="security.alerts", value=value)
    with pytest.raises(AuthenticationFailed, match="credential-exfiltration acts on signed records only"):
        p.prepare(unsigned)
    found, [(_, error)] = p.prepare_batch([unsigned])
    assert found == []
    assert isinstance(error, AuthenticationFailed)
    signed = RawRecord(topic="security.alerts", value=value, headers=tuple(signed_headers("k", b"s", value)))
    [prepared] = p.prepare_batch([signed])[0]
    assert [m.runbook.id for _, matches in prepared.found for m in matches] == ["credential-exfiltration"]


def test_an_unsigned_record_no_signed_only_runbook_matches_still_acts(runbooks_dir):
    """Only the runbook that asks for it refuses: the unsigned OCSF finding still matches its own runbook."""
    p = _pipeline(runbooks_dir, "credential-exfiltration")
    value = (EVENTS / "securityhub_v2_guardduty.json").read_bytes()
    prepared = p.prepare(RawRecord(topic="security.alerts", value=value))
    assert [m.runbook.id for _, matches in prepared.found for m in matches] == ["cloudtrail-logging-stopped"]


def test_the_fleet_digest_holds_the_runbook_flag_only_when_set(runbooks_dir):
    """A runbook not setting `require_signature` is digested as before the flag; setting it changes the digest."""
    books = load_runbooks(runbooks_dir, registry)
    assert all("require_signature" not in digested_runbook(rb) for rb in books)
    flagged = [books[0].model_copy(update={"require_signature": True}), *books[1:]]
    assert fleet_digest(flagged, Settings()) != fleet_digest(books, Settings())


def test_a_runbook_requiring_a_signature_without_signing_keys_warns_naming_it(runbooks_dir):
    """No event_signing_keys: `runbook_signature_unsatisfiable` names the flagged runbook; with a key, none."""
    books = [rb.model_copy(update={"require_signature": rb.id == "credential-exfiltration"})
             for rb in load_runbooks(runbooks_dir, registry)]
    with capture_logs() as logs:
        warn_unsigned_triggers(Settings(), books, registry)
        warn_unsigned_triggers(Settings(event_signing_keys={"k": "s"}), books, registry)  # type: ignore[arg-type]
    [warned] = [e for e in logs if e["event"] == "runbook_signature_unsatisfiable"]
    assert (warned["log_level"], warned["runbooks"]) == ("warning", ["credential-exfiltration"])


async def test_replay_plans_a_runbook_requiring_a_signature_as_one_without(runbooks_dir):
    """A back-test ignores `require_signature: true` (records carry no headers): same plan, no baseline difference."""
    books = load_runbooks(runbooks_dir, registry)
    flagged = [rb.model_copy(update={"require_signature": True}) for rb in books]
    values = [envelope_bytes(guardduty_finding("AKIAPARTIALPARTIAL01"))]
    base, new = await backtest(values, books, registry), await backtest(values, flagged, registry)
    assert base.planned
    assert new.rejected == {}
    assert [p.key() for p in new.planned] == [p.key() for p in base.planned]
    assert not any(difference(new, base).values())
