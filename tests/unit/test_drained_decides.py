"""A `Drained` failure (a dead letter not sent, then what ended its drain) is decided by its later errors: the rejoin
(`rejoin_reason`), the line said (`error_line`), and `responder run`'s exit 3 (responder/cli/app.py)."""

from __future__ import annotations

from pathlib import Path

from aiokafka.errors import NodeNotReadyError

from responder.errors import TimelineError
from responder.errors_kafka import ReplicaFenced
from responder.exception_groups import Drained
from responder.service.rejoinreasons import error_line, rejoin_reason
from tests.rejoin_kit import run_failing


def _drained(later: Exception) -> Drained:
    """A dead letter not sent (as its chunk raises it), whose drain `later` ended."""
    return Drained("lanes failed", [ExceptionGroup("dead letters not sent", [NodeNotReadyError("node 1")]), later])


def test_a_fence_that_ended_a_drain_rejoins_and_is_the_line_said() -> None:
    """Drained(dead letter, fence): the fence decides, a rejoin, and its line is the one said."""
    drained = _drained(ReplicaFenced("partition 0 is replica b's"))
    assert rejoin_reason(drained) == "fenced"
    assert error_line(drained) == "ReplicaFenced: partition 0 is replica b's"


def test_a_bug_that_ended_a_drain_is_no_rejoin() -> None:
    """Drained(dead letter, bug): the bug decides, the service is not rebuilt."""
    assert rejoin_reason(_drained(RuntimeError("a bug")), rebuilt=True) is None


def test_run_failing_with_a_drain_a_timeline_error_ended_exits_3_with_its_line(monkeypatch, tmp_path: Path) -> None:
    """`responder run` failing with Drained(dead letter, TimelineError) exits 3, saying the TimelineError."""
    result = run_failing(monkeypatch, tmp_path, _drained(TimelineError("the timeline's disk is full")))
    assert result.exit_code == 3, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == ["✗ the timeline's disk is full"]
