"""A replica outside fleet mode that shares its consumer group with other members says so loudly: an error line
(`group_shared_without_fleet`), the gauge `responder_group_shared_without_fleet` and a `/readyz` warning.
Before, two such replicas (the chart's and compose's defaults) ran silently, approvals landing on the wrong one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from structlog.testing import capture_logs

from responder.service import Service
from responder.settings import Settings
from tests.consumer_kit import AssignmentConsumer
from tests.fakes import FakeIam

GAUGE = "responder_group_shared_without_fleet"
ALL = [TopicPartition("a", p) for p in range(3)]


class _Consumer(AssignmentConsumer):
    """A group member whose metadata knows three partitions of topic `a`."""

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1, 2} if topic == "a" else None


def _service(tmp_path: Path, timeline: str = "t.jsonl", **extra: Any) -> Service:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / timeline, topics=["a"], **extra)
    service = Service(settings, aws=FakeIam(), runbooks=[])
    service.ingest.consumer = _Consumer()  # type: ignore[assignment]
    return service


async def test_a_partial_assignment_outside_a_fleet_is_an_error_a_gauge_and_a_readyz_warning(tmp_path) -> None:
    """Given one of three partitions without a changelog: error line, gauge 1, /readyz warning; all three: cleared."""
    service = _service(tmp_path)
    with capture_logs() as logs:
        await service._on_assigned(ALL[:1])
    [line] = [e for e in logs if e["event"] == "group_shared_without_fleet"]
    assert line["log_level"] == "error"
    assert line["others"] == ["a:1", "a:2"]
    assert service.metrics.value(GAUGE) == 1
    warning = service.warning()
    assert warning is not None
    assert "RESPONDER_CHANGELOG_TOPIC" in warning
    await service._on_revoked(ALL[:1])
    await service._on_assigned(ALL)  # the other member left: this one holds every partition again
    assert service.metrics.value(GAUGE) == 0
    assert service.warning() is None


async def test_a_whole_assignment_outside_a_fleet_is_quiet(tmp_path) -> None:
    """A single instance given every partition of its topics reports nothing."""
    service = _service(tmp_path)
    with capture_logs() as logs:
        await service._on_assigned(ALL)
    assert not [e for e in logs if e["event"] == "group_shared_without_fleet"]
    assert service.metrics.value(GAUGE) == 0
    assert service.warning() is None


async def test_a_fleet_member_or_a_manual_assignment_is_never_reported(tmp_path) -> None:
    """Sharing the group is what a fleet does; a manual assignment has no group: neither is reported."""
    for n, extra in enumerate(({"changelog_topic": "changelog"}, {"kafka_manual_assignment": True})):
        service = _service(tmp_path, f"t{n}.jsonl", **extra)
        service._note_sharing(ALL[:1])
        assert service.metrics.value(GAUGE) == 0, extra
        assert service.group_shared is None, extra
