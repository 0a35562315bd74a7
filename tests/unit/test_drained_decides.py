"""A `Drained` failure (a dead letter not sent, then what ended its drain) is decided by its later errors: the rejoin
(`rejoin_reason`), the line said (`error_line`), and `responder run`'s exit 3 (responder/cli/app.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiokafka.errors import NodeNotReadyError
from typer.testing import CliRunner

from responder.cli.app import app
from responder.errors import TimelineError
from responder.errors_kafka import ReplicaFenced
from responder.exception_groups import Drained
from responder.service.rejoinreasons import error_line, rejoin_reason


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
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "RUNBOOKS_DIR": str(tmp_path),
                        "TIMELINE_PATH": str(tmp_path / "t.jsonl"), "DRY_RUN": "true"}.items():
        monkeypatch.setenv(f"RESPONDER_{name}", value)

    async def serve_rejoining(*args: Any, **kwargs: Any) -> None:
        raise _drained(TimelineError("the timeline's disk is full"))

    monkeypatch.setattr("responder.service.serve_rejoining", serve_rejoining)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 3, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == ["✗ the timeline's disk is full"]
