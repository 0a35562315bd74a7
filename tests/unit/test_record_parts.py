"""A record of many findings (Security Hub's ASFF and V2 events, a JSON array) with one bad finding: the good ones
are handled, the bad one is dead-lettered by its index, and redelivery gives the same event ids."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from responder.actuators.registry import registry
from responder.catalog import load_runbooks
from responder.engine import Engine
from responder.errors import PartlyRejected, UnknownShape, ValidationFailed
from responder.models.event import RawRecord
from responder.normalise import decode_doc, normalise
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam
from tests.source_kit import (
    REPORT,
    ROOT,
    SHAPES,
    _asff_findings,
    _spoil_asff,
    _spoil_v2,
    _v2_findings,
)

EVENTS = ROOT / "tests/fixtures/events"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_one_bad_finding_keeps_the_others(shape: str) -> None:
    """A record with one bad finding of three decodes the good two; the rejection names the bad index and reason."""
    build, spoil, what = SHAPES[shape]
    good = decode_doc(build(3))
    with pytest.raises(PartlyRejected) as caught:
        decode_doc(spoil(build(3), 1))
    assert [e.id for e in caught.value.kept] == [good[0].id, good[2].id]
    assert caught.value.parts == (1,)
    assert caught.value.reason_code == "validation"
    assert caught.value.detail.startswith(f"{what} [1] of 3: ")


def test_a_findings_list_and_a_json_array_keep_their_good_parts() -> None:
    """A Findings list and a JSON array of records keep their good parts and name the bad ones with their reasons."""
    doc = _spoil_asff(_asff_findings(2), 1)
    with pytest.raises(PartlyRejected) as listed:
        decode_doc({"Findings": doc["detail"]["findings"]})
    assert listed.value.parts == (1,)
    with pytest.raises(PartlyRejected) as array:
        normalise(orjson.dumps([{"unknown": "shape"}, _asff_findings(1)]))
    assert array.value.parts == (0,)
    assert array.value.reason_code == "unknown_shape"  # the bad element's own reason, for `deadletter replay --reason`
    with pytest.raises(UnknownShape):  # none left: the elements' own reason, as before
        normalise(orjson.dumps([{"unknown": "shape"}, {"other": "shape"}]))
    assert [e.id for e in array.value.kept] == [e.id for e in decode_doc(_asff_findings(1))]


def _fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((EVENTS / name).read_bytes())
    return doc


def _alertmanager() -> dict[str, Any]:
    """An Alertmanager group of two alerts."""
    doc = _fixture("alertmanager_resolved.json")
    doc["alerts"].append({**doc["alerts"][0], "fingerprint": "def"})
    return doc


def _report() -> dict[str, Any]:
    """A Model Monitor report of two violations."""
    second = {"feature_name": "country", "constraint_check_type": "data_type_check", "description": "not a string"}
    return {**REPORT, "violations": [*REPORT["violations"], second]}


# each many-part record the service reads, built with two good parts, and what its decoder calls a part
MANY: dict[str, tuple[Any, str, str]] = {
    "alertmanager": (_alertmanager, "alerts", "alertmanager alert"),
    "cloudtrail": (lambda: _fixture("cloudtrail_records_invalid_ip.json"), "Records", "cloudtrail record"),
    "model-monitor": (_report, "violations", "sagemaker violation"),
    "secops": (lambda: _fixture("secops_two_rules.json"), "detection", "google-secops detection"),
}


@pytest.mark.parametrize("shape", sorted(MANY))
def test_every_many_part_record_keeps_its_good_parts(shape: str) -> None:
    """Alertmanager, CloudTrail, Model Monitor and SecOps records keep a good part's event and id past a bad part."""
    build, key, what = MANY[shape]
    good = decode_doc(build())
    spoiled = build()
    spoiled[key][1] = "not a part"
    with pytest.raises(PartlyRejected) as caught:
        decode_doc(spoiled)
    assert [e.id for e in caught.value.kept] == [good[0].id]
    assert caught.value.parts == (1,)
    assert caught.value.detail.startswith(f"{what} [1] of 2: ")


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_record_of_only_bad_findings_is_rejected_whole(shape: str) -> None:
    """Nothing left to handle: a plain ValidationFailed naming every bad finding; one finding keeps its old reason."""
    build, spoil, what = SHAPES[shape]
    with pytest.raises(ValidationFailed) as caught:
        decode_doc(spoil(spoil(build(2), 0), 1))
    assert not isinstance(caught.value, PartlyRejected)
    assert f"{what} [0] of 2" in caught.value.detail
    assert f"{what} [1] of 2" in caught.value.detail
    with pytest.raises(ValidationFailed) as single:
        decode_doc(spoil(build(1), 0))
    assert not isinstance(single.value, PartlyRejected)
    assert "[0]" not in single.value.detail


def _pipeline() -> Pipeline:
    engine = Engine(Recorder(MemoryStore()), registry, FakeIam(), dry_run=True)
    return Pipeline(load_runbooks(ROOT / "runbooks", registry), engine)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_batch_path_acts_on_the_good_findings_and_fails_the_bad_one(shape: str) -> None:
    """`prepare_batch` returns the good findings' matches with a PartlyRejected to dead-letter after acting."""
    build, spoil, _ = SHAPES[shape]
    value = orjson.dumps(spoil(build(3), 1))
    pipeline = _pipeline()
    found, failed = pipeline.prepare_batch([RawRecord(topic="a", offset=0, value=value)])
    [prepared] = found
    assert [m.runbook.id for _, ms in prepared.found for m in ms] == ["training-data-bucket-public"] * 2
    assert type(prepared.rejected) is PartlyRejected
    assert failed == []
    again, _ = pipeline.prepare_batch([RawRecord(topic="a", offset=1, value=value)])
    assert [e.id for e, _ in again[0].found] == [e.id for e, _ in prepared.found]


async def test_handle_acts_on_the_good_findings_then_raises_for_the_bad_one() -> None:
    """The per-record path (tracing on) opens the good findings' incidents, then raises for the dead letter."""
    pipeline = _pipeline()
    with pytest.raises(PartlyRejected):
        await pipeline.handle(RawRecord(topic="a", offset=0, value=orjson.dumps(_spoil_v2(_v2_findings(3), 2))))
    assert len(pipeline.engine.state.incidents.by_id) == 2


async def _received(pipeline: Pipeline) -> list[str]:
    """The event ids the pipeline recorded as received, in order."""
    await pipeline.engine.recorder.flush()
    return [str(e.body["event_id"]) for e in pipeline.engine.recorder.entries() if e.kind == "event.received"]


def _same_inputs() -> dict[str, bytes]:
    """One record of each many-part shape with a bad part (and one of only bad parts), as bytes."""
    return {
        "asff": orjson.dumps(_spoil_asff(_asff_findings(3), 1)),
        "v2": orjson.dumps(_spoil_v2(_v2_findings(3), 0)),
        "array": orjson.dumps([{"unknown": "shape"}, _asff_findings(1), _spoil_v2(_v2_findings(1), 0)]),
        "only-bad": orjson.dumps(_spoil_v2(_spoil_v2(_v2_findings(2), 0), 1)),
        "model-monitor": orjson.dumps({**_report(), "violations": [REPORT["violations"][0], {"no": "check type"}]}),
    }


@pytest.mark.parametrize("shape", sorted(_same_inputs()))
async def test_the_batch_and_per_record_lanes_agree_on_the_same_record(shape: str) -> None:
    """The batch and per-record lanes act on the same event ids and raise the same rejection for the same record."""
    value = _same_inputs()[shape]
    batch, single = _pipeline(), _pipeline()
    found, failed = batch.prepare_batch([RawRecord(topic="a", offset=0, value=value)])
    for prepared in found:  # as the service's `_handle_partition`: act, then the rejection of the bad parts
        await batch.act(prepared)
    [in_batch] = [exc for _, exc in failed] + [p.rejected for p in found if p.rejected is not None]
    with pytest.raises(ValidationFailed) as per_record:
        await single.handle(RawRecord(topic="a", offset=0, value=value))
    ids = await _received(single)
    assert await _received(batch) == ids
    assert (shape == "only-bad") == (not ids)
    assert isinstance(in_batch, ValidationFailed)
    assert type(in_batch) is type(per_record.value)
    assert (in_batch.reason_code, in_batch.detail) == (per_record.value.reason_code, per_record.value.detail)
    assert getattr(in_batch, "parts", None) == getattr(per_record.value, "parts", None)
