"""A child the tests or benchmarks start dies with the process that started it, however that one dies (SIGKILL)."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

import pytest

from responder.sandbox import lifeline
from tests import process_kit

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(lifeline.die_with_parent() is None, reason="Linux only (PR_SET_PDEATHSIG)")]
ROOT = Path(__file__).resolve().parents[2]


def _orphan_outlives_killed_parent(how: str, tmp: Path) -> bool:
    """Start `orphan_parent HOW`, read its child's pid, SIGKILL the parent: whether the child still runs after a
    generous poll (a survivor is killed then)."""
    parent = lifeline.popen([sys.executable, "-m", "tests.integration.orphan_parent", how, str(tmp)], cwd=ROOT,
                            stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 60)  # a pid that never comes fails, not hangs
        line = parent.stdout.readline() if ready else b""
        assert line.strip().isdigit(), f"the parent wrote no child pid in 60 s (exit {parent.poll()}): {line!r}"
        child = int(line)
        since = process_kit.started(child)
        assert since is not None, "the child was not running before its parent was killed"
        assert parent.poll() is None, "the parent ended before it was killed"
        parent.kill()
        parent.wait(30)
        return process_kit.outlived(child, since)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(30)
        parent.stdout.close()


def test_a_standby_crash_worker_dies_with_the_killed_process_that_spawned_it(tmp_path):
    """A crash worker from `Workers.spawn`, waiting for its go file, is gone once its parent is SIGKILLed."""
    assert not _orphan_outlives_killed_parent("crash-worker", tmp_path), "the worker outlived its parent by 60 s"


@pytest.mark.parametrize("how", ["thread", "async", "run"])
def test_a_child_from_any_spawn_path_dies_with_its_killed_parent(how, tmp_path):
    """A child from lifeline.popen on an ended worker thread, exec_async or run is gone once its parent is SIGKILLed."""
    assert not _orphan_outlives_killed_parent(how, tmp_path), "the child outlived its parent by 60 s"
