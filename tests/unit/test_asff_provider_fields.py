"""Audit EV-2: an ASFF finding is typed, classified and scored by its provider's `FindingProviderFields`, which only
the provider writes, never by the top-level copies anyone allowed `securityhub:BatchUpdateFindings` may rewrite."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.models import RawRecord
from responder.models.threat import ThreatCategory
from responder.normalise import decode_doc
from responder.pipeline import Pipeline
from responder.rules.matcher import Matcher
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.source_kit import head_equals_full, sound

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "runbooks/examples/by-source/access-key-compromise.securityhub.json"
RECON = "TTPs/Discovery/Recon:IAMUser-UserPermissions"
MALICIOUS_IP = "TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"


def _recon() -> dict[str, Any]:
    """GuardDuty's own Recon finding (threat discovery, no runbook acts on it) as Security Hub holds it."""
    finding: dict[str, Any] = orjson.loads(EXAMPLE.read_bytes())
    finding["Types"] = finding["FindingProviderFields"]["Types"] = [RECON]
    return finding


def _relabelled() -> dict[str, Any]:
    """`_recon()` after an analyst's BatchUpdateFindings rewrote the top-level Types (the provider's unchanged)."""
    finding = _recon()
    finding["Types"] = [MALICIOUS_IP]
    return finding


def _imported(finding: dict[str, Any]) -> dict[str, Any]:
    """`finding` in the EventBridge event Security Hub sends after the update (`Security Hub Findings - Imported`)."""
    return {"version": "0", "id": "sh-ev2", "detail-type": "Security Hub Findings - Imported",
            "source": "aws.securityhub", "account": finding["AwsAccountId"], "time": finding["UpdatedAt"],
            "region": finding["Region"], "resources": [finding["ProductArn"]], "detail": {"findings": [finding]}}


@pytest.fixture(scope="module", name="shipped")
def _shipped() -> Matcher:
    """A matcher over the shipped runbooks (loaded once for the module)."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


def test_the_provider_s_types_type_and_classify_the_finding_over_a_rewritten_top_level() -> None:
    """A rewritten top-level Types changes neither the event's type, its `types` attribute nor its threat."""
    [event] = decode_doc(_relabelled())
    assert event.type == RECON
    assert event.attributes["types"] == [RECON]
    assert event.threat is not None
    assert event.threat.category is ThreatCategory.DISCOVERY


@pytest.mark.parametrize("provider", [None, "absent"])
def test_the_top_level_types_classify_only_when_the_provider_gave_none(provider: str | None) -> None:
    """Without FindingProviderFields.Types (absent or null) the top-level Types still types and classifies."""
    finding = _relabelled()
    if provider is None:
        finding["FindingProviderFields"]["Types"] = None
    else:
        del finding["FindingProviderFields"]["Types"]
    [event] = decode_doc(finding)
    assert event.type == MALICIOUS_IP
    assert event.threat is not None
    assert event.threat.category is ThreatCategory.CREDENTIAL_COMPROMISE


def test_an_empty_provider_types_is_the_provider_s_word_not_a_gap_for_the_top_level() -> None:
    """A provider that gave an empty Types list leaves the finding unclassified; the top-level one is not read."""
    finding = _relabelled()
    finding["FindingProviderFields"]["Types"] = []
    [event] = decode_doc(finding)
    assert (event.type, event.threat) == (finding["Title"], None)


def test_a_rewritten_top_level_types_does_not_make_access_key_compromise_match(shipped: Matcher) -> None:
    """The audit's case: a Recon finding relabelled MaliciousIPCaller by an analyst deactivates no key."""
    for doc in (_relabelled(), _imported(_relabelled())):
        [event] = decode_doc(doc)
        assert [m.runbook.id for m in shipped.match(event)] == []
    genuine = _recon()
    genuine["Types"] = genuine["FindingProviderFields"]["Types"] = [MALICIOUS_IP]  # GuardDuty's own word
    [event] = decode_doc(genuine)
    assert [m.runbook.id for m in shipped.match(event)] == ["access-key-compromise"]


def test_the_prefilter_and_the_full_decode_agree_on_a_relabelled_finding(shipped: Matcher) -> None:
    """Heads (if any) read the relabelled finding as the full decode does; the pipeline matches nothing for it."""
    pipeline = Pipeline(list(shipped.runbooks), Engine(Recorder(MemoryStore()), registry, FakeIam()))
    for doc in (_relabelled(), _imported(_relabelled())):
        head_equals_full(copy.deepcopy(doc))
        sound(shipped, copy.deepcopy(doc))
        found, failed = pipeline.prepare_batch([RawRecord(topic="t", value=orjson.dumps(doc))])
        assert (found, failed) == ([], [])


def test_the_provider_s_normalized_severity_scores_over_a_rewritten_one() -> None:
    """A rewritten top-level Severity.Normalized (or Product) cannot move the score the provider's copy gives."""
    finding = _recon()
    finding["FindingProviderFields"]["Severity"] = {"Label": "MEDIUM", "Normalized": 40}
    finding["Severity"] = {"Label": "MEDIUM", "Normalized": 60, "Product": 6}
    [event] = decode_doc(finding)
    assert event.severity.score == 4.0
    del finding["FindingProviderFields"]["Severity"]["Normalized"]
    [label_only] = decode_doc(finding)
    assert label_only.severity.score == 5.0  # the provider's label alone: its standard score, not the analyst's 6
    del finding["FindingProviderFields"]["Severity"]
    [fallback] = decode_doc(finding)
    assert fallback.severity.score == 6.0  # no provider's severity at all: the top-level numbers, as before


@pytest.mark.parametrize("rewritten", [{"Normalized": 40, "Product": 4}, {"Product": 4.5}, {"Normalized": 69},
                                       {"Normalized": 41, "Product": 6.9}])
def test_a_label_only_provider_severity_scores_its_label_whatever_the_top_level_numbers(
        rewritten: dict[str, Any], shipped: Matcher) -> None:
    """GuardDuty's label-only copy ({"Label": "MEDIUM"}) scores 5.0; an analyst's in-band number cannot move it."""
    genuine = _recon()
    genuine["Types"] = genuine["FindingProviderFields"]["Types"] = [MALICIOUS_IP]
    genuine["FindingProviderFields"]["Severity"] = {"Label": "MEDIUM"}
    genuine["Severity"] = {"Label": "MEDIUM", **rewritten}
    for doc in (genuine, _imported(genuine)):
        [event] = decode_doc(copy.deepcopy(doc))
        assert event.severity.score == 5.0
        assert [m.runbook.id for m in shipped.match(event)] == ["access-key-compromise"]


@pytest.mark.parametrize("provider", ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller",
                                      {"Types": [MALICIOUS_IP]}, 7, True, [None], [[MALICIOUS_IP]]])
def test_a_malformed_provider_types_leaves_the_finding_unclassified_not_the_top_level_s(provider: Any) -> None:
    """A FindingProviderFields.Types that is no list of texts types nothing; the analyst's top-level Types is unread."""
    finding = _recon()
    finding["Types"] = [MALICIOUS_IP]
    finding["FindingProviderFields"]["Types"] = provider
    [event] = decode_doc(finding)
    assert (event.type, event.threat, event.attributes.get("types") or []) == (finding["Title"], None, [])
