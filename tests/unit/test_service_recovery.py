"""Partition assignment rebuilds the engine's in-flight state from the durable timeline."""

from __future__ import annotations

from aiokafka import TopicPartition

from responder.models.step import StepResult, StepStatus
from responder.service import Service
from responder.settings import Settings


async def test_assignment_flushes_and_rebuilds_inflight(tmp_path):
    """An intent appended but not yet flushed is durable and in flight after the rebalance listener runs."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl",
                        runbooks_dir=tmp_path, topics=["a"])
    service = Service(settings, runbooks=[])
    service.recorder.append("step.intent", {"key": "k1", "step": "s", "actuator": "a", "target": "t"}, "inc")
    service.engine.state.finish(StepResult(step="s", actuator="a", key="stale", status=StepStatus.OK), None)
    await service.ingest._listener.on_partitions_assigned([TopicPartition("a", 0)])
    assert [intent.key for intent in service.engine.state.inflight()] == ["k1"]
    assert service.engine.state.result("stale") is None
    assert [e.kind for e in service.recorder.entries()] == ["step.intent"]
    await service.close_unstarted()


async def test_static_membership_ids_reach_every_consumer_group(tmp_path):
    """kafka_group_instance_id gives the alerts, approvals and operator consumers stable, distinct instance ids."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl",
                        kafka_group_instance_id="responder-0")
    service = Service(settings, runbooks=[])
    assert service.ingest.consumer._group_instance_id == "responder-0"
    assert service.approvals.consumer._group_instance_id == "responder-0.approvals"
    assert service.operator_ingest is not None  # a dynamic member here made a restart wait out the dead session
    assert service.operator_ingest.consumer._group_instance_id == "responder-0.operator"
    dynamic = Service(settings.model_copy(update={"kafka_group_instance_id": None,  # one writer per timeline
                                                   "timeline_path": tmp_path / "t2.jsonl"}), runbooks=[])
    assert dynamic.ingest.consumer._group_instance_id is None
    assert dynamic.operator_ingest is not None
    assert dynamic.operator_ingest.consumer._group_instance_id is None
    for svc in (service, dynamic):
        await svc.close_unstarted()
