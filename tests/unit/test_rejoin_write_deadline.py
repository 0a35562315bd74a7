"""A fleet changelog write outside transactions not acknowledged within its deadline (ChangelogWriteTimedOut: Kafka
cut off after it was reached) rejoins as a failed transaction does, `kafka_unreachable`, and `responder run` exits 75
once the rejoins run out; until 2026-12-07 it was exit 3, a bad setting (responder/service/rejoinreasons.py)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from responder.errors import TimelineError, TopicRefused
from responder.errors_kafka import ChangelogWriteTimedOut, StillUnreachable
from responder.service import rejoin_reason, serve_rejoining
from tests.rejoin_kit import fenced_error, lane_failed, run_rejoining, stand_in_builder, stopped_while_failing

_LATE = "changelog c[0]: the write was not acknowledged within its deadline (45s from the flush's first write)"


def _barrier() -> BaseException:
    """As a flush's changelog barrier fails on it: a TimelineError caused by the timeout, in the run's task groups."""
    try:
        try:
            raise ChangelogWriteTimedOut(_LATE)
        except ChangelogWriteTimedOut as exc:
            raise TimelineError(f"state changelog write failed: {exc}") from exc
    except TimelineError as exc:
        return ExceptionGroup("run", [ExceptionGroup("alerts", [exc])])


def _eviction() -> BaseException:
    """As an eviction's tombstones (written outside the barrier) fail on it: the timeout itself, in the loops."""
    return ExceptionGroup("run", [ExceptionGroup("loops", [ChangelogWriteTimedOut(_LATE)])])


@pytest.mark.parametrize("rebuilt", [False, True], ids=["first-service", "rebuilt"])
@pytest.mark.parametrize("failure", [_barrier, _eviction, lambda: ChangelogWriteTimedOut(_LATE)],
                         ids=["barrier", "eviction", "alone"])
def test_a_write_past_its_deadline_is_kafka_unreachable(failure, rebuilt):
    """A ChangelogWriteTimedOut, through a barrier's TimelineError or alone, is `kafka_unreachable` for any service."""
    assert rejoin_reason(failure(), rebuilt=rebuilt) == "kafka_unreachable"


def test_a_fence_or_failed_transaction_beside_it_decides_and_another_error_ends_serving():
    """Beside a write past its deadline a fence is `fenced`, a failed transaction wins too; a bad setting: None."""
    assert rejoin_reason(ExceptionGroup("run", [_barrier(), fenced_error()])) == "fenced"
    assert rejoin_reason(ExceptionGroup("run", [_eviction(), lane_failed()])) == "transaction_failed"
    assert rejoin_reason(ExceptionGroup("run", [_barrier(), TopicRefused("acl")])) is None


async def test_a_service_whose_write_passed_its_deadline_is_rebuilt():
    """A service failing on a write past its deadline is dropped and a new one built, which serves once Kafka is up."""
    build, built = stand_in_builder([_barrier(), _eviction(), None])
    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=3, backoff=0.001)
    assert len(built) == 3
    rejoining = [e for e in logs if e["event"] == "replica_rejoining"]
    assert [(e["reason"], e["rejoin"]) for e in rejoining] == [("kafka_unreachable", 1), ("kafka_unreachable", 2)]
    assert all(e["error"] == f"ChangelogWriteTimedOut: {_LATE}" for e in rejoining)


async def test_writes_past_their_deadline_through_every_rejoin_end_in_still_unreachable():
    """Writes past their deadline through every rejoin use up the budget and end with StillUnreachable (exit 75)."""
    build, built = stand_in_builder([_barrier(), _barrier(), None])
    with pytest.raises(StillUnreachable, match="cut off from Kafka after reaching it 2 times") as raised:
        await serve_rejoining(build, rejoins=1, backoff=0.001)
    assert _LATE in str(raised.value)
    assert len(built) == 2


def test_run_exits_75_not_3_when_writes_stay_past_their_deadline(monkeypatch):
    """`responder run` whose changelog writes keep passing their deadline exits 75 with one line, not 3."""
    result, built = run_rejoining(monkeypatch, [_barrier(), _eviction(), None])
    assert result.exit_code == 75, result.output
    assert "cut off from Kafka after reaching it 2 times" in result.output
    assert "Traceback" not in result.output
    assert len(built) == 2


async def test_a_stop_asked_for_while_a_write_passes_its_deadline_ends_cleanly():
    """A SIGTERM while a write passes its deadline ends serving cleanly (nothing of it acted), no second service."""
    built, events = await stopped_while_failing(_barrier())
    assert built == 1
    assert "replica_unreachable_while_stopping" in events
