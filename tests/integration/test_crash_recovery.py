"""SIGKILL the service at random points while it runs runbooks: every action happens exactly once, none is lost."""

from __future__ import annotations

import os

import pytest

from responder.timeline.archive import read_archive
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import compare_with_copy, verify_lines
from tests.faults.table import FaultRow, record
from tests.integration.crash import CrashStats, crash_run
from tests.timeline_builders import PUBLIC

pytestmark = pytest.mark.integration


def _row(stats: CrashStats) -> FaultRow:
    """The run as a fault-table row: effects counted in moto; time to recover is the median restart (consuming) →
    first timeline entry of the workers."""
    keys = stats.keys
    first = sorted(stats.first_entry_s)[len(stats.first_entry_s) // 2] if stats.first_entry_s else None
    return record(FaultRow(
        fault=f"service: SIGKILL at {stats.kills} random points", events=len(keys), expected=len(keys),
        done=sum(stats.effects[k] > 0 for k in keys), duplicates=sum(max(0, stats.effects[k] - 1) for k in keys),
        lost=sum(stats.effects[k] == 0 for k in keys), recover_s=first,
        note=f"{stats.mid_step} kills inside a step, {stats.recovered} recovered by verify(); time: median restart "
             "(consuming) to first timeline entry"))


def _assert_exactly_once(stats: CrashStats, kills: int) -> None:
    _row(stats)
    assert stats.kills >= kills
    assert set(stats.effects) == set(stats.keys), "an intended action is missing (or an unexpected one exists)"
    doubled = {k: n for k, n in stats.effects.items() if n != 1}
    assert not doubled, f"applied more than once: {doubled}"
    result = verify_lines(stats.lines, Checker.from_text(PUBLIC))
    assert result.unsigned_tail == 0
    assert stats.archive is not None
    assert compare_with_copy(stats.lines, read_archive(stats.archive)) == len(stats.lines)


async def _kill_at(kills: int, kafka_bootstrap, aws, topics, unique, tmp_path) -> CrashStats:
    """`kills` SIGKILLs during runbook execution, checked: one S3 effect per finding, timeline verifies."""
    stats = await crash_run(kafka_bootstrap, aws, topics["alerts"], topics["deadletter"], unique, tmp_path, kills=kills)
    print(f"crash test: {stats.kills} kills, {stats.mid_step} inside a step of the killed worker, "
          f"{len(stats.keys)} findings, {len(stats.lines)} timeline entries, {stats.recovered} recovered by "
          f"verify(), {stats.already_done} skipped as already done; consuming→first entry median "
          f"{sorted(stats.first_entry_s)[len(stats.first_entry_s) // 2]:.3f}s")
    _assert_exactly_once(stats, kills)
    assert stats.mid_step >= 5, "too few kills landed inside a step to exercise recovery"
    return stats


@pytest.mark.timeout(900)  # about a minute alone; more on a loaded 2-core machine
async def test_sigkill_at_20_random_points_acts_exactly_once(kafka_bootstrap, aws, topics, unique, tmp_path):
    """20 SIGKILLs during runbook execution: one S3 effect per finding, all findings acted on, timeline verifies."""
    await _kill_at(20, kafka_bootstrap, aws, topics, unique, tmp_path)


@pytest.mark.soak
@pytest.mark.timeout(900)  # about 3 minutes alone
async def test_sigkill_at_50_random_points_acts_exactly_once(kafka_bootstrap, aws, topics, unique, tmp_path):
    """The same at 50 kill points (`make test` runs 20; about 70 % of kills land inside a step): `make soak`."""
    await _kill_at(50, kafka_bootstrap, aws, topics, unique, tmp_path)


@pytest.mark.soak
@pytest.mark.timeout(7200)
async def test_soak_sigkill_1000_points(kafka_bootstrap, aws, topics, unique, tmp_path):
    """The same crash test at RESPONDER_SOAK_KILLS (default 1,000) kill points: `make soak`."""
    kills = int(os.environ.get("RESPONDER_SOAK_KILLS", "1000"))
    stats = await crash_run(kafka_bootstrap, aws, topics["alerts"], topics["deadletter"], unique, tmp_path,
                            kills=kills)
    print(f"soak: {stats.kills} kills, {stats.mid_step} inside a step, {len(stats.keys)} findings, "
          f"{len(stats.lines)} entries, {stats.recovered} recovered by verify(), {stats.already_done} already done")
    _assert_exactly_once(stats, kills)
