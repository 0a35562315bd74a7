"""`ResponderEscalationFailed` fires on every escalation failure of its window, also one after a restart whose label set
existed before it: its PromQL, evaluated here by a small model of the few operators it uses (no Prometheus binary)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import yaml

from responder.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
WINDOW, LOOKBACK, SCRAPE = 900.0, 300.0, 30.0  # the rule's 15m, Prometheus' staleness lookback, a scrape interval
ROSE = "sum by (runbook, actuator) (increase(responder_escalation_failures_total[15m])) > 0"
NEW = ("sum by (runbook, actuator) (responder_escalation_failures_total "
       "unless responder_escalation_failures_total offset 15m) > 0")
SINCE_START = ("sum by (runbook, actuator) (responder_escalation_failures_total > 0 "
               "and ignoring (runbook, actuator) (time() - responder_start_time_seconds < 900)) > 0")
"""The rule's clauses (joined by `or`, whitespace folded), each evaluated by `_clause` below."""

Samples = list[tuple[float, float]]


def _rule() -> dict[str, str]:
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r["alert"] == "ResponderEscalationFailed")


def _instant(samples: Samples, at: float) -> float | None:
    """An instant selector: the last sample within the lookback before `at`, else none."""
    found = [v for t, v in samples if at - LOOKBACK < t <= at]
    return found[-1] if found else None


def _increase(samples: Samples, at: float) -> float | None:
    """increase(...[15m]) without extrapolation: the rise over the window's samples, counting resets; none with
    fewer than two samples (why a series first scraped at 1 is invisible to it)."""
    window = [v for t, v in samples if at - WINDOW < t <= at]
    if len(window) < 2:
        return None
    return sum(b - a if b >= a else b for a, b in pairwise(window))


def _clause(text: str, failures: Samples, started: Samples, at: float) -> bool:
    """One clause of the rule for one label set of one target: the counter's and the start-time gauge's samples."""
    now, before, up = _instant(failures, at), _instant(failures, at - WINDOW), _instant(started, at)
    if text == ROSE:
        return (_increase(failures, at) or 0) > 0
    if text == NEW:
        return now is not None and before is None and now > 0
    assert text == SINCE_START, f"a clause this model does not evaluate: {text}"
    return now is not None and now > 0 and up is not None and at - up < WINDOW


def _fires(failures: Samples, started: Samples, at: float) -> bool:
    """The rule as alerts.yml holds it: any of its clauses."""
    return any(_clause(text, failures, started, at) for text in " ".join(_rule()["expr"].split()).split(" or "))


def _scrapes(start: float, end: float, value: float) -> Samples:
    return [(start + n * SCRAPE, value) for n in range(int((end - start) // SCRAPE) + 1)]


def test_the_rule_has_the_clauses_evaluated_here_and_names_the_start_time_gauge() -> None:
    """alerts.yml's rule is the three clauses this model evaluates, and responder exports the start-time gauge."""
    assert " ".join(_rule()["expr"].split()).split(" or ") == [ROSE, NEW, SINCE_START]
    assert Metrics().value("responder_start_time_seconds") > 0


def test_a_failure_after_a_restart_fires_although_its_label_set_existed_before() -> None:
    """A failure after a restart fires the escalation alert although its label set existed before the restart."""
    restart = 10_000.0
    failures = _scrapes(restart - 3600, restart - SCRAPE, 1.0) + _scrapes(restart + SCRAPE, restart + 3600, 1.0)
    started = _scrapes(restart - 3600, restart - SCRAPE, restart - 7200) + \
        _scrapes(restart + SCRAPE, restart + 3600, restart)
    for minutes in (1, 5, 14):
        at = restart + minutes * 60
        assert _increase(failures, at) == 0  # what the rule missed before
        assert _instant(failures, at - WINDOW) is not None
        assert _fires(failures, started, at), minutes
    assert not _fires(failures, started, restart + 20 * 60)  # the failure is older than the window now


def test_quiet_series_and_rises_in_a_long_running_process() -> None:
    """A counter that stays put does not fire; a rise, or a label set first seen at 1, in a long-running one does."""
    started = _scrapes(0, 20_000, 0.0)
    steady = _scrapes(0, 20_000, 3.0)
    assert not _fires(steady, started, 20_000)
    risen = _scrapes(0, 10_000, 3.0) + _scrapes(10_000 + SCRAPE, 20_000, 4.0)
    assert _fires(risen, started, 10_000 + 300)
    assert not _fires(risen, started, 10_000 + 1200)
    appeared = _scrapes(10_000, 20_000, 1.0)
    assert _fires(appeared, started, 10_000 + 300)
