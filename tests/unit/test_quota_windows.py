"""Quota windows keep every run a configured quota can count (a weekly quota counts a week), and no more."""

from __future__ import annotations

import pytest

from responder.engine.guards import GuardPolicy
from responder.engine.partitions import merge
from responder.engine.quotas import QuotaRun, QuotaWindows
from responder.engine.state import EngineState
from responder.models.runbook import Quota
from responder.models.step import StepIntent
from tests.kit import ECHO, make_kit

DAY = 86400.0


def _keys(n: int) -> list[tuple[str, str]]:
    return [(f"AKIAABCDEFGHIJKLMNO{i}", f"user-{i}") for i in range(n)]


@pytest.mark.parametrize("restart", [False, True])
async def test_a_weekly_quota_counts_runs_older_than_two_days(tmp_path, restart):
    """A max 2 per 7d quota filled on days 0 and 3 asks a human for a run on day 4, also after a restart rebuild."""
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="guards: {quotas: [{actuator: test.*, max: 2, window: 7d}]}")})
    (k0, u0), (k1, u1), (k2, u2) = _keys(3)
    await kit.send(key=k0, user=u0)
    kit.clock.now += 3 * DAY
    await kit.send(key=k1, user=u1)
    kit.clock.now += DAY
    if restart:
        kit.start()  # the windows are rebuilt from the timeline, before the runbooks (and their quotas) are loaded
    await kit.send(key=k2, user=u2)
    assert [p.target for p in kit.echo.applied] == [u0, u1]
    assert kit.entries("guard.tripped")[0]["guard"] == "quota"


async def test_a_short_quota_does_not_erase_the_runs_a_longer_one_counts(tmp_path):
    """A runbook's quotas of 10 a minute and 1 per 36h on one actuator: a run 30 h after the first asks a human."""
    guards = "guards: {quotas: [{actuator: test.*, max: 10, window: 1m}, {actuator: test.*, max: 1, window: 36h}]}"
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards=guards)})
    (k0, u0), (k1, u1) = _keys(2)
    await kit.send(key=k0, user=u0)
    kit.clock.now += 30 * 3600
    await kit.send(key=k1, user=u1)
    assert [p.target for p in kit.echo.applied] == [u0]


async def test_two_global_quotas_with_different_windows_share_their_runs(tmp_path):
    """Global quotas of 10 a minute and 1 per 36h (one `*` window of runs): a run 30 h after the first asks a human."""
    policy = GuardPolicy(quotas=[Quota(actuator="test.*", max=10, window=60), Quota(actuator="test.*", max=1,
                                                                                     window=36 * 3600)])
    kit = make_kit(tmp_path, {"rb": ECHO.format(guards="")}, policy=policy)
    (k0, u0), (k1, u1) = _keys(2)
    await kit.send(key=k0, user=u0)
    kit.clock.now += 30 * 3600
    await kit.send(key=k1, user=u1)
    assert [p.target for p in kit.echo.applied] == [u0]
    assert kit.entries("guard.tripped")[0]["detail"].startswith("global")


def test_counting_drops_no_run_whatever_the_order_runs_were_recorded_in():
    """Counting a short window leaves the runs a long one counts; a run recorded late (out of order) counts."""
    windows = QuotaWindows()
    windows.configure([Quota(actuator="a.*", max=1, window=60), Quota(actuator="a.*", max=9, window=7 * DAY)], {})
    for at in (0.0, 3 * DAY, 2 * DAY):  # the last one's intent was stamped before the one recorded before it
        windows.record("rb", "a.b", at)
    assert windows.count("*", "a.*", 60, 4 * DAY) == 0
    assert windows.count("*", "a.*", 7 * DAY, 4 * DAY) == 3
    assert windows.count("*", "a.*", 2.5 * DAY, 4 * DAY) == 2


def test_windows_keep_runs_only_as_long_as_a_configured_quota_looks_back():
    """Windows keep runs only as long as the longest quota looks back, at least 2 days; eviction drops unused ones."""
    windows = QuotaWindows()
    windows.configure([Quota(actuator="a.*", max=5, window=2 * DAY)], {"rb": [Quota(actuator="a.b", max=1,
                                                                                     window=7 * DAY)]})
    for day in range(30):
        windows.record("rb", "a.b", day * DAY)
        windows.record("rb", "x.y", day * DAY)  # no quota counts it
    held = {(r.runbook, r.actuator): len(r.times) for r in windows.runs()}
    assert held == {("rb", "a.b"): 8, ("*", "a.b"): 3, ("rb", "x.y"): 3, ("*", "x.y"): 3}
    windows.prune(40 * DAY)
    assert windows.runs() == []


def test_runs_recorded_before_the_quotas_are_known_are_kept_until_they_are():
    """A replay before the runbooks are loaded keeps every run; configuring drops those no quota (nor 2 days) keeps."""
    windows = QuotaWindows()
    for day in range(10):
        windows.record("rb", "a.b", day * DAY)
    assert windows.count("rb", "a.*", 30 * DAY, 9 * DAY) == 10
    windows.configure([], {"rb": [Quota(actuator="a.*", max=1, window=3 * DAY)]})
    assert [len(r.times) for r in windows.runs() if r.runbook == "rb"] == [4]
    assert [r for r in windows.runs() if r.runbook == "*"] == [QuotaRun("*", "a.b", (7 * DAY, 8 * DAY, 9 * DAY))]


def test_a_quota_lengthened_after_a_restore_from_slices_counts_the_last_two_days():
    """A restored fleet replica's quota lengthened from an hour to a day still counts a run 3 hours old."""
    old = QuotaWindows()
    old.configure([], {"rb": [Quota(actuator="a.*", max=1, window=3600)]})
    old.record("rb", "a.b", 0.0)
    old.record("rb", "a.b", 10_800.0 - 1)  # a later run prunes by the old, short window
    new = QuotaWindows()
    new.load(old.runs())
    new.configure([], {"rb": [Quota(actuator="a.*", max=1, window=DAY)]})
    assert new.count("rb", "a.*", DAY, 10_800.0) == 2


def test_a_weekly_quota_s_runs_travel_in_snapshots_and_changelog_slices():
    """Runs older than two days that a weekly quota counts survive snapshot → restore and a partition's merge."""
    quotas = {"rb": [Quota(actuator="a.*", max=2, window=7 * DAY)]}
    state = EngineState()
    state.windows.configure([], quotas)
    for i, at in enumerate((0.0, 3 * DAY)):
        intent = StepIntent(step="s", actuator="a.b", target=f"t{i}", key=f"k{i}", params={}, runbook="rb")
        state.intend(intent, None, at)
    restored, merged = EngineState(), EngineState()
    for other in (restored, merged):
        other.windows.configure([], quotas)
    restored.restore(state.snapshot())
    merge(merged, [state.snapshot()])
    for other in (restored, merged):
        assert other.windows.count("rb", "a.*", 7 * DAY, 4 * DAY) == 2
