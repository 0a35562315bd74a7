"""A replica whose changelog transaction failed for good (TransactionFailed: aiokafka's producer died when a broker was
killed) rejoins in-process as a fenced one does, within the same hourly budget; a restore's ChangelogError does not
(responder/service/rejoin.py, CI 2026-12-06: the 3-broker leader-kill test's replica exited 1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import TimelineError
from responder.errors_kafka import ChangelogError, ReplicaFenced, TransactionFailed
from responder.service import rejoin_reason, serve_rejoining
from tests.rejoin_kit import (
    DIED,
    fenced_error,
    fenced_service,
    lane_failed,
    readyz_while_rejoining,
    stand_in_builder,
    stopped_while_failing,
)


def _bare() -> BaseException:
    return TransactionFailed(DIED)


def _barrier() -> BaseException:
    """As a loop that flushes raises it: a TimelineError from the changelog barrier, raised from the failure."""
    try:
        try:
            raise TransactionFailed(DIED)
        except TransactionFailed as exc:
            raise TimelineError("state changelog write failed") from exc
    except TimelineError as exc:
        return ExceptionGroup("run", [ExceptionGroup("approvals", [exc])])


def test_a_failed_transaction_is_told_from_a_fence_and_from_other_failures():
    """`rejoin_reason` is transaction_failed when all leaves are TransactionFailed, fenced with a fence, else none."""
    assert [rejoin_reason(e()) for e in (_bare, lane_failed, _barrier)] == ["transaction_failed"] * 3
    assert rejoin_reason(fenced_error()) == "fenced"
    # a zombie: the stronger reason
    assert rejoin_reason(ExceptionGroup("run", [lane_failed(), fenced_error()])) == "fenced"
    assert rejoin_reason(ChangelogError("changelog c[0] is unreadable")) is None  # a restore's: it must not loop
    assert rejoin_reason(ExceptionGroup("run", [lane_failed(), TimelineError("disk full")])) is None


@pytest.mark.parametrize("failure", [_bare, lane_failed, _barrier])
async def test_a_service_whose_transaction_failed_is_replaced_by_a_new_one(failure):
    """A service ending in a TransactionFailed, bare or nested, is rebuilt and logs `replica_rejoining`."""
    build, built = stand_in_builder([failure(), None])
    with capture_logs() as logs:
        await serve_rejoining(build, rejoins=3, backoff=0.01)
    assert len(built) == 2
    [rejoining] = [e for e in logs if e["event"] == "replica_rejoining"]
    assert (rejoining["reason"], rejoining["rejoin"]) == ("transaction_failed", 1)
    assert "Unexpected error during batch delivery" in rejoining["error"]


async def test_a_restore_failure_still_ends_serving():
    """After a rejoin for a failed transaction, the next service's plain ChangelogError (a restore) ends serving."""
    build, built = stand_in_builder([lane_failed(), ChangelogError("changelog c[0] is unreadable"), None])
    with pytest.raises(ChangelogError, match="unreadable") as raised:
        await serve_rejoining(build, rejoins=3, backoff=0.01)
    assert type(raised.value) is ChangelogError
    assert len(built) == 2


@pytest.mark.parametrize(("outcomes", "kind", "event", "said"), [
    ([fenced_error, lane_failed, _barrier], TransactionFailed, "replica_transaction_failed_exiting",
     "fenced 1 time and stopped by a failed changelog transaction 2 times"),
    ([lane_failed, fenced_error, fenced_error], ReplicaFenced, "replica_fenced_exiting",
     "fenced 2 times and stopped by a failed changelog transaction 1 time"),
])
async def test_the_budget_counts_both_kinds_and_ends_with_the_last(outcomes, kind, event, said):
    """Fences and failed transactions share `rejoins` (2 here): the third ends serving with the kind it was."""
    build, built = stand_in_builder([o() for o in outcomes] + [None])
    with capture_logs() as logs, pytest.raises(kind, match=said) as raised:
        await serve_rejoining(build, rejoins=2, backoff=0.001)
    assert type(raised.value) is kind
    assert len(built) == 3
    assert [e.get("reason") for e in logs if e["event"] == "replica_rejoining"] == [
        "fenced" if o is fenced_error else "transaction_failed" for o in outcomes[:2]]
    assert logs[-1]["event"] == event


async def test_a_stop_asked_for_while_a_transaction_fails_ends_cleanly():
    """A SIGTERM while the service fails with a TransactionFailed ends serving without an error, building nothing."""
    built, events = await stopped_while_failing(lane_failed())
    assert built == 1
    assert "replica_transaction_failed_while_stopping" in events


def test_readyz_says_a_failed_transaction_is_why_it_rejoins(tmp_path):
    """Between two services /readyz names the failed changelog transaction, not a fence."""
    said = readyz_while_rejoining(tmp_path, "transaction_failed")
    assert "rejoining after a failed changelog transaction (1 of 5 rejoins this hour)" in said


def test_run_exits_75_when_failed_transactions_used_up_the_rejoins(monkeypatch):
    """`responder run` turns a final TransactionFailed into one red line and exit 75 (EX_TEMPFAIL), no traceback."""
    async def failed_for_good(build: Any, *, rejoins: int) -> None:
        raise TransactionFailed("this replica was stopped by a failed changelog transaction 6 times within 3600 s")

    monkeypatch.setattr("responder.service.serve_rejoining", failed_for_good)
    monkeypatch.setenv("RESPONDER_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 75, result.output
    assert "transaction 6 times" in result.output
    assert "Traceback" not in result.output


async def test_a_stray_cancellation_in_the_teardown_does_not_hide_a_failed_transaction(tmp_path, monkeypatch):
    """run() raises a TransactionFailed despite a stray CancelledError in teardown, so the replica rejoins."""
    async def stray_stop() -> None:
        raise asyncio.CancelledError

    service = fenced_service(tmp_path, monkeypatch, stray_stop)

    async def loops_failed() -> None:
        async def alerts() -> None:
            await asyncio.sleep(0)
            raise TransactionFailed(DIED)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(alerts())
            tg.create_task(asyncio.sleep(60))

    monkeypatch.setattr(service, "_consume_until_stopped", loops_failed)
    with capture_logs() as logs, pytest.raises(Exception) as raised:  # noqa: PT011 - a group: rejoin_reason reads it
        await service.run()
    assert rejoin_reason(raised.value) == "transaction_failed"
    assert [e["error"] for e in logs if e["event"] == "service_close_failed"] == ["CancelledError: "]
    await service.approvals.consumer.stop()
