"""A topic pinned to `ocsf` (`topic_formats`) takes Security Hub's `Findings Imported V2` events, whose findings are
decoded as OCSF events, and still refuses every record that would decode to another source."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.errors import ValidationFailed
from responder.models.event import RawRecord
from responder.normalise import decode_doc, head
from responder.normalise.registry import detect
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.findings import envelope_bytes, guardduty_finding
from tests.source_kit import ROOT, asff_event, v2_event, v2_finding


def test_a_v2_event_decodes_under_an_ocsf_pin_as_without_one() -> None:
    """A Security Hub V2 event decodes under an `ocsf` topic pin as it does without one."""
    doc = v2_event(v2_finding("S3.8"))
    assert detect(doc, "ocsf").name == "securityhub.v2"
    assert decode_doc(doc, "ocsf") == decode_doc(doc)
    assert {e.source for e in decode_doc(doc, "ocsf")} == {"ocsf"}
    assert head(doc, "ocsf") == head(doc)


@pytest.mark.parametrize("doc", [
    asff_event("S3.8"), orjson.loads(envelope_bytes(guardduty_finding("AKIAEXAMPLE000000001"))),
], ids=["asff", "guardduty"])
def test_an_ocsf_pin_still_refuses_other_sources(doc: dict[str, Any]) -> None:
    """An `ocsf` topic pin still refuses ASFF or GuardDuty records on the pinned topic."""
    with pytest.raises(ValidationFailed, match=r"^ocsf: "):
        decode_doc(doc, "ocsf")


def test_a_v2_event_that_is_not_ocsf_inside_is_refused_with_its_reason() -> None:
    """A V2 envelope whose finding is no OCSF object is refused under the pin with the V2 decoder's reason."""
    with pytest.raises(ValidationFailed, match=r"^securityhub\.v2: "):
        decode_doc(v2_event({"Id": "asff-inside"}), "ocsf")


def test_the_pipeline_matches_a_v2_event_on_an_ocsf_topic() -> None:
    """Through `prepare_batch` on an `ocsf`-pinned topic, the V2 control finding matches its runbook."""
    engine = Engine(Recorder(MemoryStore()), registry, FakeIam(), dry_run=True)
    pipeline = Pipeline(load_runbooks(ROOT / "runbooks", registry), engine, topic_formats={"lake": "ocsf"})
    value = orjson.dumps(v2_event(v2_finding("S3.8")))
    found, failed = pipeline.prepare_batch([RawRecord(topic="lake", value=value)])
    assert failed == []
    assert [m.runbook.id for p in found for _, ms in p.found for m in ms] == ["training-data-bucket-public"]
