"""A fleet member's graceful stop makes its state durable while it is still a member of its group, then leaves."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from responder.errors import TimelineError
from responder.service import Service
from responder.settings import Settings
from responder.timeline import FileStore


def _service(tmp_path: Any, *, fleet: bool = True) -> Service:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", timeline_path=tmp_path / "t.jsonl", runbooks_dir=tmp_path,
                        topics=["a"], changelog_topic="changelog" if fleet else None)
    return Service(settings, runbooks=[])


def _record(service: Service, monkeypatch: pytest.MonkeyPatch, calls: list[str], *,
            flush_error: Exception | None = None) -> None:
    """Each teardown step of interest appends its name to `calls` (the flush raising `flush_error`)."""
    async def flush() -> None:
        calls.append("flush")
        if flush_error is not None:
            raise flush_error

    def stopping(name: str, client: Any) -> None:
        close = client.stop  # the real one still runs: the unstarted clients are closed

        async def stop() -> None:
            calls.append(name)
            await close()
        monkeypatch.setattr(client, "stop", stop)

    monkeypatch.setattr(service.recorder, "flush", flush)
    stopping("alerts.stop", service.ingest)
    stopping("approvals.stop", service.approvals)
    stopping("publisher.stop", service.publisher)


async def test_a_fleet_member_flushes_before_its_alert_consumer_leaves_the_group(tmp_path, monkeypatch):
    """The stop's flush runs before the alert consumer's stop (its leave), and once more after the clients stopped."""
    service, calls = _service(tmp_path), []
    _record(service, monkeypatch, calls)
    await service._close_started([])
    assert calls == ["flush", "alerts.stop", "approvals.stop", "publisher.stop", "flush"]
    FileStore(service.settings.timeline_path).close()  # TimelineLocked if the lock were still held


async def test_the_refusals_summary_is_flushed_after_the_clients_stopped(tmp_path, monkeypatch):
    """The counted refusals' summary, written once the clients stopped, is made durable by the second flush."""
    service, calls = _service(tmp_path), []
    _record(service, monkeypatch, calls)
    monkeypatch.setattr(service.engine.decisions.refusals, "close", lambda: calls.append("refusals.close"))
    await service._close_started([])
    assert calls.index("refusals.close") > calls.index("publisher.stop")
    assert calls[calls.index("refusals.close") + 1] == "flush"
    FileStore(service.settings.timeline_path).close()


async def test_a_failed_flush_as_a_member_is_raised_once_and_the_clients_still_stop(tmp_path, monkeypatch):
    """When the flush as a member fails, the clients stop, no second flush runs, and that failure is what is raised."""
    service, calls = _service(tmp_path), []
    _record(service, monkeypatch, calls, flush_error=TimelineError("state changelog write failed"))
    with capture_logs() as logs, pytest.raises(TimelineError, match="changelog write failed"):
        await service._close_started([])
    assert calls == ["flush", "alerts.stop", "approvals.stop", "publisher.stop"]
    assert "service_close_step_failed" not in [e["event"] for e in logs]
    FileStore(service.settings.timeline_path).close()


async def test_a_single_replica_stop_does_not_flush_through_the_fleet_steps(tmp_path, monkeypatch):
    """Without a changelog the teardown stops the clients and closes the timeline, with no fleet flush."""
    service, calls = _service(tmp_path, fleet=False), []
    _record(service, monkeypatch, calls)
    await service._close_started([])
    assert calls == ["alerts.stop", "approvals.stop", "publisher.stop"]
    FileStore(service.settings.timeline_path).close()

