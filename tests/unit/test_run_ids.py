"""Events that are distinct get distinct, redelivery-stable ids: two SecOps detections of one rule in one record,
and a SageMaker Model Monitor violation of one monitoring run and of the next."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from responder.engine import Engine
from responder.models import RawRecord
from responder.models.runbook import Runbook
from responder.models.timeline import EntryKind
from responder.normalise import decode_doc
from responder.pipeline import Pipeline
from responder.timeline import MemoryStore, Recorder
from tests.fakes import FakeIam, test_registry
from tests.source_kit import REPORT

SECOPS: dict[str, Any] = {
    "type": "RULE_DETECTION", "id": "de_1", "detectionTime": "2026-11-25T10:00:00Z",
    "detection": [{"ruleName": "Model registry tampering", "ruleId": "ru_a", "ruleVersion": "ru_a@v_1",
                   "detectionFields": [{"key": "bucket", "value": "models-prod"}]},
                  {"ruleName": "Model registry tampering", "ruleId": "ru_a", "ruleVersion": "ru_a@v_1",
                   "detectionFields": [{"key": "bucket", "value": "models-staging"}]}],
    "collectionElements": [{"references": [{"event": {"principal": {"hostname": "build-7"}}}]}]}


def _runbook(source: str) -> Runbook:
    return Runbook.model_validate({
        "id": "rb", "trigger": {"source": source}, "group_by": "${event.incident_key}",
        "steps": [{"id": "note", "actuator": "test.echo", "with": {"target": "t1", "message": "${event.id}"}}]})


async def _joined(source: str, *values: bytes, received: list[int] | None = None) -> list[dict[str, Any]]:
    """The `incident.joined` entries of the records `values` through one pipeline (broker times `received`, ms)."""
    reg, _, _ = test_registry()
    engine = Engine(Recorder(MemoryStore()), reg, FakeIam())
    pipeline = Pipeline([_runbook(source)], engine)
    for n, value in enumerate(values):
        await pipeline.handle(RawRecord(topic="t", offset=n, value=value,
                                        timestamp_ms=received[n] if received else None))
    await engine.recorder.flush()
    return [e.body for e in engine.recorder.entries() if e.kind == EntryKind.INCIDENT_JOINED]


def test_two_detections_of_one_rule_get_distinct_stable_ids() -> None:
    """Two detections of one rule get distinct ids, stable on redelivery; a rule seen once keeps `id:ruleId`."""
    first, second = decode_doc(copy.deepcopy(SECOPS))
    assert first.id != second.id
    assert [e.id for e in decode_doc(copy.deepcopy(SECOPS))] == [first.id, second.id]
    assert first.id.startswith("de_1:ru_a")
    other = copy.deepcopy(SECOPS)
    other["detection"][1]["ruleId"] = "ru_b"
    assert [e.id for e in decode_doc(other)] == ["de_1:ru_a", "de_1:ru_b"]


def test_a_lone_detection_without_a_rule_id_still_decodes() -> None:
    """A record of one detection naming no `ruleId` still decodes, its id the record's own."""
    lone = copy.deepcopy(SECOPS)
    del lone["detection"][1]
    del lone["detection"][0]["ruleId"]
    [event] = decode_doc(lone)
    assert (event.id, event.type) == ("de_1", "Model registry tampering")


async def test_the_second_detection_of_a_rule_is_no_repeat() -> None:
    """Through the pipeline a rule's second detection joins its incident as a new event; a redelivery is a repeat."""
    value = orjson.dumps(SECOPS)
    joined = await _joined("google-secops", value, value)
    assert [j["repeat"] for j in joined] == [False, True, True]


def _run(**context: Any) -> bytes:
    return orjson.dumps({**REPORT, **context})


@pytest.mark.parametrize("context", [
    {"ProcessingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:processing-job/model-monitoring-{}"},
    {"processing_job_name": "model-monitoring-{}"},
    {"CreationTime": "2026-11-25T1{}:05:00Z"},
    {"report_uri": "s3://monitor/fraud-scorer-prod/2026/11/25/1{}/constraint_violations.json"},
])
async def test_a_violation_of_the_next_run_is_no_repeat(context: dict[str, str]) -> None:
    """The next monitoring run's violation, named by job, execution time or report uri, is a new event."""
    runs = [_run(**{k: v.format(n) for k, v in context.items()}) for n in (0, 1)]
    joined = await _joined("sagemaker-model-monitor", runs[0], runs[1], runs[1])
    assert [j["repeat"] for j in joined] == [False, True]


async def test_a_bare_report_of_the_next_run_is_no_repeat() -> None:
    """A bare report's runs are told apart by broker time: the next run's violation is new, a redelivery a repeat."""
    value = _run()
    hour = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp() * 1000)
    joined = await _joined("sagemaker-model-monitor", value, value, value, received=[hour, hour + 3_600_000,
                                                                                      hour + 3_600_000])
    assert [j["repeat"] for j in joined] == [False, True]
