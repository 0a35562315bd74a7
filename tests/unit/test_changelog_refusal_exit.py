"""A changelog write refused for good outside the barrier ends `responder run` as one line and exit 3, as inside it."""

from __future__ import annotations

import pytest

from responder.errors_kafka import ChangelogError, ReplicaFenced
from tests.rejoin_kit import run_failing

REFUSED = ChangelogError("changelog c[0]: TopicAuthorizationFailedError: the ACL refuses WRITE")


@pytest.mark.parametrize("error", [REFUSED, ExceptionGroup("loops", [REFUSED])], ids=["alone", "in-a-group"])
def test_a_changelog_refusal_outside_the_barrier_exits_3_with_one_line(monkeypatch, tmp_path, error) -> None:
    """A ChangelogError (an eviction's tombstones, an offsets commit refused) is one line and exit 3, no traceback."""
    result = run_failing(monkeypatch, tmp_path, error)
    assert result.exit_code == 3, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [f"✗ {REFUSED}"]


def test_a_fence_that_reaches_the_command_still_exits_75(monkeypatch, tmp_path) -> None:
    """A ReplicaFenced, also a ChangelogError, is still the supervisor's exit 75 (rejoins ran out), not exit 3."""
    result = run_failing(monkeypatch, tmp_path, ReplicaFenced("fenced 6 times within 3600 s"))
    assert result.exit_code == 75, result.output
