"""Audit EV-2 in the OCSF lanes: Security Lake's OCSF copy of an ASFF finding maps the top-level `Types` and
`Severity` (anyone allowed `securityhub:BatchUpdateFindings` may rewrite them) into `finding_info.types` and
`severity_id`, and keeps the provider's own in `unmapped` ("FindingProviderFields.Types[]", "….Severity.Label"):
GuardDuty's finding is classified and scored by the provider's, as the ASFF lane does."""

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
from tests.source_kit import FIXTURE, head_equals_full, sound, v2_event

ROOT = Path(__file__).resolve().parents[2]
RECON = "TTPs/Discovery/Recon:IAMUser-UserPermissions"
MALICIOUS_IP = "TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"
DATA_EXPOSURE = "Effects/Data Exposure"
PROVIDER_TYPES, PROVIDER_LABEL = "FindingProviderFields.Types[]", "FindingProviderFields.Severity.Label"


def _relabelled() -> dict[str, Any]:
    """Security Lake's OCSF copy of GuardDuty's own HIGH Recon finding on an IAM user's AKIA key, after an analyst
    rewrote the ASFF top-level Types to MaliciousIPCaller (the provider's Types kept in `unmapped`)."""
    doc: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())["detail"]["findings"][0]
    doc["metadata"]["product"]["uid"] = "arn:aws:securityhub:us-east-2::product/aws/guardduty"
    doc["finding_info"]["types"] = [MALICIOUS_IP]
    doc["unmapped"] |= {PROVIDER_TYPES: RECON, PROVIDER_LABEL: "HIGH"}
    doc["severity_id"], doc["severity"] = 4, "High"
    doc["resources"] = [{"type": "AwsIamAccessKey", "uid": "AWS::IAM::AccessKey:AKIAEXAMPLEKEYID0001",
                         "data": orjson.dumps({"AwsIamAccessKey": {
                             "PrincipalName": "ml-training", "PrincipalType": "IAMUser"}}).decode()}]
    return doc


@pytest.fixture(scope="module", name="shipped")
def _shipped() -> Matcher:
    """A matcher over the shipped runbooks (loaded once for the module)."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


@pytest.mark.parametrize("provider", [RECON, [RECON], [RECON, MALICIOUS_IP]])
def test_the_provider_s_types_in_unmapped_classify_guardduty_s_ocsf_copy(provider: Any) -> None:
    """`unmapped["FindingProviderFields.Types[]"]` (one text or a list) classifies over `finding_info.types`."""
    doc = _relabelled()
    doc["unmapped"][PROVIDER_TYPES] = provider
    [event] = decode_doc(doc)
    assert event.threat is not None
    assert event.threat.category is ThreatCategory.DISCOVERY


@pytest.mark.parametrize("flat", ["{a},{b}", "{a}, {b}", " {a} ,{b} "])
@pytest.mark.parametrize("order", [(RECON, DATA_EXPOSURE), (DATA_EXPOSURE, RECON)])
def test_security_lake_s_comma_joined_provider_types_are_split_before_classifying(
        flat: str, order: tuple[str, str]) -> None:
    """Security Lake flattens the provider's Types list to "A,B": each type classifies, in either order."""
    doc = _relabelled()
    doc["unmapped"][PROVIDER_TYPES] = flat.format(a=order[0], b=order[1])
    for each in (doc, v2_event(doc)):
        [event] = decode_doc(copy.deepcopy(each))
        assert event.threat is not None
        assert event.threat.category is ThreatCategory.DISCOVERY
        head_equals_full(copy.deepcopy(each))


@pytest.mark.parametrize("provider", ["", " ", ",", [], {}, 7, [None], {"types": [MALICIOUS_IP]}])
def test_an_empty_or_malformed_provider_types_is_not_a_gap_for_finding_info_types(provider: Any,
                                                                                  shipped: Matcher) -> None:
    """An empty or malformed provider Types in `unmapped` classifies nothing; `finding_info.types` is not read."""
    doc = _relabelled()
    doc["unmapped"][PROVIDER_TYPES] = provider
    for each in (doc, v2_event(doc)):
        [event] = decode_doc(copy.deepcopy(each))
        assert event.threat is None or event.threat.category is not ThreatCategory.CREDENTIAL_COMPROMISE
        assert [m.runbook.id for m in shipped.match(event)] == []
        head_equals_full(copy.deepcopy(each))


def test_finding_info_types_classify_when_the_copy_keeps_no_provider_types() -> None:
    """Without the provider's Types in `unmapped`, `finding_info.types` classifies GuardDuty's copy as before."""
    doc = _relabelled()
    del doc["unmapped"][PROVIDER_TYPES]
    [event] = decode_doc(doc)
    assert event.threat is not None
    assert event.threat.category is ThreatCategory.CREDENTIAL_COMPROMISE


def test_the_provider_s_severity_label_scores_over_a_rewritten_severity_id() -> None:
    """A `severity_id` outside the provider's label's band is the analyst's: the provider's label scores."""
    doc = _relabelled()
    doc["unmapped"][PROVIDER_LABEL] = "LOW"
    [event] = decode_doc(doc)
    assert event.severity.score == 2.0
    doc["unmapped"][PROVIDER_LABEL] = "HIGH"
    assert decode_doc(doc)[0].severity.score == 7.5  # the same band: severity_id as before
    del doc["unmapped"][PROVIDER_LABEL]
    doc["severity_id"] = 5
    assert decode_doc(doc)[0].severity.score == 9.5  # no provider's label: severity_id as before


def test_a_relabelled_ocsf_copy_reaches_no_acting_runbook_in_either_lane(shipped: Matcher) -> None:
    """Bare (Security Lake) or in `Findings Imported V2`: no access-key-compromise; heads agree with the decode."""
    pipeline = Pipeline(list(shipped.runbooks), Engine(Recorder(MemoryStore()), registry, FakeIam()))
    for doc in (_relabelled(), v2_event(_relabelled())):
        [event] = decode_doc(copy.deepcopy(doc))
        assert [m.runbook.id for m in shipped.match(event)] == []
        head_equals_full(copy.deepcopy(doc))
        sound(shipped, copy.deepcopy(doc))
        found, failed = pipeline.prepare_batch([RawRecord(topic="t", value=orjson.dumps(doc))])
        assert (found, failed) == ([], [])
    genuine = _relabelled()
    genuine["unmapped"][PROVIDER_TYPES] = MALICIOUS_IP  # GuardDuty's own word
    [event] = decode_doc(genuine)
    assert [m.runbook.id for m in shipped.match(event)] == ["access-key-compromise"]
